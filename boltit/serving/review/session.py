"""Who is reviewing: the login token's client in a signed cookie, and each form's CSRF token.

The cookie holds the client's name, the SHA-256 of the token it logged in with, a CSRF token
and an expiry, signed by itsdangerous (HMAC-SHA256). It is checked against the clients file on every
request, so revoking the token (``boltit token revoke``) ends the session at once. A visitor
who has not logged in gets a cookie with a CSRF token only, so the login form is protected too.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeSerializer

from boltit.core.clients import Client, ClientRegistry, Scope
from boltit.core.errors import BoltitError
from boltit.core.settings import Settings

COOKIE = "boltit_review"
SESSION_SECONDS = 12 * 3600
SECRET_FILE = "review-secret"


class ReviewSecretError(BoltitError):
    """The session secret file exists but cannot be used."""


def session_secret(settings: Settings) -> bytes:
    """``BOLTIT_REVIEW_SECRET``, or a random secret kept in the state folder (made once).

    Raises:
        ReviewSecretError: the secret file is unreadable or too short.
    """
    if settings.review_secret is not None and settings.review_secret.get_secret_value():
        return settings.review_secret.get_secret_value().encode()
    path = Path(settings.state_dir) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    # Exclusive create: replicas starting together agree on the first one written.
    with contextlib.suppress(FileExistsError):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "w", encoding="ascii") as stream:
            stream.write(secrets.token_hex(32))
    for _ in range(50):  # another replica may be between its create and its write
        try:
            secret = path.read_text(encoding="ascii").strip()
        except OSError as exc:
            raise ReviewSecretError(
                f"cannot read the review session secret {path}: {exc}"
            ) from None
        if len(secret) >= 32:
            return secret.encode()
        time.sleep(0.01)
    raise ReviewSecretError(
        f"the review session secret {path} holds fewer than 32 characters; delete it to make "
        "a new one (every reviewer logs in again) or set BOLTIT_REVIEW_SECRET"
    )


@dataclass(frozen=True)
class SessionData:
    """What the cookie says: a CSRF token always, a reviewer once logged in."""

    csrf: str
    client: str | None = None
    token_sha256: str | None = None
    expires: float = 0.0


@dataclass(frozen=True)
class Reviewer:
    """A logged-in reviewer: the client name is what their labels record."""

    name: str
    csrf: str


class SessionCodec:
    """Signs and reads session cookies with one secret (itsdangerous, HMAC-SHA256)."""

    def __init__(self, secret: bytes) -> None:
        self._serializer = URLSafeSerializer(
            secret, salt="boltit review session", signer_kwargs={"digest_method": hashlib.sha256}
        )

    def encode(self, data: SessionData) -> str:
        fields = {"c": data.csrf, "u": data.client, "t": data.token_sha256, "e": data.expires}
        return self._serializer.dumps(fields)

    def decode(self, cookie: str | None, *, now: float | None = None) -> SessionData | None:
        """The cookie's data, or None when it is missing, forged or expired."""
        if not cookie:
            return None
        try:
            raw = self._serializer.loads(cookie)
            data = SessionData(
                csrf=str(raw["c"]),
                client=None if raw["u"] is None else str(raw["u"]),
                token_sha256=None if raw["t"] is None else str(raw["t"]),
                expires=float(raw["e"]),
            )
        except (BadSignature, ValueError, KeyError, TypeError):
            return None
        if data.client is not None and data.expires < (time.time() if now is None else now):
            return None
        return data


def new_visitor() -> SessionData:
    """A session with only a CSRF token: what the login form is checked against."""
    return SessionData(csrf=secrets.token_urlsafe(24))


def logged_in(client: Client, *, now: float | None = None) -> SessionData:
    """A fresh session for ``client`` (a new CSRF token, so none from before login is valid)."""
    return SessionData(
        csrf=secrets.token_urlsafe(24),
        client=client.name,
        token_sha256=client.token_sha256,
        expires=(time.time() if now is None else now) + SESSION_SECONDS,
    )


def reviewer_of(data: SessionData | None, registry: ClientRegistry) -> Reviewer | None:
    """The reviewer a session belongs to, if its client still holds the review scope."""
    if data is None or data.client is None or data.token_sha256 is None:
        return None
    registry.refresh()
    for client in registry.clients:
        if (
            client.name == data.client
            and hmac.compare_digest(client.token_sha256, data.token_sha256)
            and client.allows(Scope.review)
        ):
            return Reviewer(name=client.name, csrf=data.csrf)
    return None


def csrf_matches(data: SessionData | None, presented: str | None) -> bool:
    """Whether a form's CSRF token is the session's."""
    if data is None or not presented:
        return False
    return hmac.compare_digest(data.csrf.encode(), presented.encode())
