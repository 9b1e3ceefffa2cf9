"""MLflow webhook signatures, compared in constant time (client tokens: ``boltit.serving.auth``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
MAX_WEBHOOK_AGE_SECONDS = 300


class AuthError(Exception):
    """Refused; ``status`` is 401 (no credentials) or 403 (wrong or not allowed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def webhook_signature(*, secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The ``v1,<base64>`` signature MLflow sends for this delivery."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def check_webhook(
    *,
    secret: str | None,
    signature: str | None,
    timestamp: str | None,
    delivery_id: str | None,
    body: bytes,
    now: float | None = None,
) -> None:
    """Accept a webhook delivery only when MLflow's HMAC signature matches and it is fresh.

    Raises:
        AuthError: webhooks are not configured, a header is missing, the delivery is
            stale, or the signature does not match.
    """
    if not secret:
        raise AuthError(403, "webhooks are disabled: BOLTIT_WEBHOOK_SECRET is not set")
    if not signature or not timestamp or not delivery_id:
        raise AuthError(
            401, f"missing {SIGNATURE_HEADER}, {TIMESTAMP_HEADER} or {DELIVERY_ID_HEADER}"
        )
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise AuthError(403, f"{TIMESTAMP_HEADER} is not a unix timestamp") from None
    if abs((now if now is not None else time.time()) - sent_at) > MAX_WEBHOOK_AGE_SECONDS:
        raise AuthError(403, "webhook delivery is too old (replay refused)")
    expected = webhook_signature(
        secret=secret, delivery_id=delivery_id, timestamp=timestamp, body=body
    )
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        raise AuthError(403, "webhook signature does not match")
