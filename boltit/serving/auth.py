"""Who may call which route: bearer tokens of named clients, checked per scope.

Open to anyone: ``/health``, ``/ready``, ``/metrics``, ``/model/version``,
``GET /admin/feature-flags`` and the OpenAPI docs (no ticket text, nothing that changes state).
``/webhooks/mlflow`` has its own HMAC signature. Everything else needs a client token with the
route's scope; with ``BOLTIT_INSECURE_OPEN=true`` callers without a token may classify, send
feedback and export too (never admin), and their feedback never reaches the monitor.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from boltit.core.clients import Client, ClientRegistry, Scope
from boltit.core.errors import BoltitError
from boltit.core.settings import Settings
from boltit.serving.security import AuthError

# Declares the scheme in OpenAPI; the header itself is parsed below, to name each problem.
bearer_scheme = HTTPBearer(
    auto_error=False,
    description="A client token from `boltit token create NAME --scope ...`.",
)


class InsecureStartError(BoltitError):
    """The service would start with feedback and exports open to anyone."""


class ServiceAuth:
    """The accepted clients and the open-or-not decision, built once per app."""

    def __init__(self, settings: Settings) -> None:
        self.registry = ClientRegistry(settings)
        self.insecure_open = settings.insecure_open
        self.clients_path = settings.clients_path

    def check_startup(self) -> None:
        """Refuse to serve with no client configured unless openness was asked for.

        Raises:
            InsecureStartError: no client token and no ``BOLTIT_INSECURE_OPEN=true``.
        """
        if self.registry.clients or self.insecure_open:
            return
        raise InsecureStartError(
            f"no client token is configured ({self.clients_path} has none and "
            "BOLTIT_ADMIN_TOKEN is not set), so feedback and exports would be open to anyone: "
            "create one with 'boltit token create NAME --scope classify --scope feedback' "
            "or set BOLTIT_INSECURE_OPEN=true to run open on purpose"
        )

    def authorize(self, authorization: str | None, scope: Scope) -> Client | None:
        """The client allowed to use ``scope``; None for an anonymous caller of an open service.

        Raises:
            AuthError: 401 without usable credentials, 403 for an unknown token, a token
                without the scope, or a scope no client holds.
        """
        if not authorization:
            if self.insecure_open and scope is not Scope.admin:
                return None
            if not self.registry.any_with(scope):
                raise AuthError(403, _disabled(scope))
            raise AuthError(401, f"this route needs 'Authorization: Bearer <token>' ({scope})")
        if not self.registry.any_with(scope):
            raise AuthError(403, _disabled(scope))
        kind, _, token = authorization.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise AuthError(401, "Authorization header must be 'Bearer <token>'")
        client = self.registry.authenticate(token.strip())
        if client is None:
            raise AuthError(403, "token is not recognised (wrong, or revoked)")
        if not client.allows(scope):
            held = ", ".join(sorted(s.value for s in client.scopes))
            raise AuthError(
                403, f"client {client.name!r} lacks scope {scope.value!r} (it has: {held})"
            )
        return client


def client_name(client: Client | None) -> str | None:
    """What a feedback row records as its sender: None for an anonymous caller."""
    return client.name if client is not None else None


def _disabled(scope: Scope) -> str:
    if scope is Scope.admin:
        return (
            "admin writes are disabled: no client has scope 'admin' (set BOLTIT_ADMIN_TOKEN "
            "or run 'boltit token create NAME --scope admin')"
        )
    return f"no client has scope {scope.value!r}; create one with 'boltit token create'"


async def get_auth(request: Request) -> ServiceAuth:
    auth: ServiceAuth = request.app.state.auth
    return auth


def require(scope: Scope) -> object:
    """A dependency that admits callers with ``scope`` and yields their client (or None)."""

    async def dependency(
        request: Request,
        auth: Annotated[ServiceAuth, Depends(get_auth)],
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    ) -> Client | None:
        return auth.authorize(request.headers.get("authorization"), scope)

    return Depends(dependency)


ClassifyClient = Annotated[Client | None, require(Scope.classify)]
FeedbackClient = Annotated[Client | None, require(Scope.feedback)]
ReadClient = Annotated[Client | None, require(Scope.read)]
AdminClient = Annotated[Client | None, require(Scope.admin)]
