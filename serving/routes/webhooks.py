"""``/webhooks/mlflow``: MLflow registry webhooks, HMAC-verified, wake the alias follower."""

from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException, Request

from serving.deps import ServiceDep
from serving.schemas import WebhookAck
from serving.security import DELIVERY_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, check_webhook

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
    try:
        event = json.loads(body)
        entity, action, data = event["entity"], event["action"], event.get("data") or {}
    except (ValueError, KeyError, TypeError) as exc:
        raise HTTPException(422, f"webhook body is not an MLflow event: {exc}") from None
    relevant = (
        entity == "model_version_alias"
        and action in ALIAS_ACTIONS
        and data.get("name") == service.settings.model_name
    )
    if relevant:
        service.follower.wake()
    return WebhookAck(accepted=relevant, action=f"{entity}.{action}")
