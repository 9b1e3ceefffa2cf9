"""``/webhooks/mlflow``: MLflow registry webhooks, HMAC-verified, wake the alias follower."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from boltit.serving.deps import ServiceDep
from boltit.serving.schemas import WebhookAck
from boltit.serving.security import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    check_webhook,
)

router = APIRouter(tags=["webhooks"])

ALIAS_ACTIONS = {"created", "deleted"}


@router.post("/webhooks/mlflow", response_model=WebhookAck)
async def mlflow_webhook(request: Request, service: ServiceDep) -> WebhookAck:
    """Receive a signed registry event; an alias change on our model triggers a check now."""
    body = await request.body()
    secret = service.settings.webhook_secret
    check_webhook(
        secret=secret.get_secret_value() if secret else None,
        signature=request.headers.get(SIGNATURE_HEADER),
        timestamp=request.headers.get(TIMESTAMP_HEADER),
        delivery_id=request.headers.get(DELIVERY_ID_HEADER),
        body=body,
    )
    entity, action, data = _parse_event(body)
    relevant = (
        entity == "model_version_alias"
        and action in ALIAS_ACTIONS
        and data.get("name") == service.settings.model_name
    )
    if relevant:
        service.follower.wake()
    return WebhookAck(accepted=relevant, action=f"{entity}.{action}")


def _parse_event(body: bytes) -> tuple[str, str, dict[str, Any]]:
    """``entity``, ``action`` and ``data`` of an MLflow event; 422 for anything else.

    The body is signed, so it came from whoever holds the secret, yet its shape is still
    checked: a signed but malformed delivery is a client error, never a 500.
    """
    try:
        event = json.loads(body)
    except RecursionError:
        # Only without a JSON content type: BodyLimits caps the depth of JSON bodies (400).
        raise HTTPException(422, "webhook body is not an MLflow event: nested too deep") from None
    except ValueError as exc:  # JSONDecodeError and undecodable bytes
        raise HTTPException(422, f"webhook body is not an MLflow event: not JSON ({exc})") from None
    if not isinstance(event, dict):
        raise HTTPException(
            422,
            f"webhook body is not an MLflow event: a JSON object expected, got "
            f"{type(event).__name__}",
        )
    entity, action, data = event.get("entity"), event.get("action"), event.get("data")
    if not isinstance(entity, str) or not isinstance(action, str):
        raise HTTPException(
            422, "webhook body is not an MLflow event: 'entity' and 'action' must be strings"
        )
    if data is not None and not isinstance(data, dict):
        raise HTTPException(422, "webhook body is not an MLflow event: 'data' must be an object")
    return entity, action, data or {}
