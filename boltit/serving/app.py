"""The app factory: one replica of the ticket-classification service."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from boltit.core.db import Database
from boltit.core.settings import Settings
from boltit.core.tracking import configure_mlflow
from boltit.serving.auth import ServiceAuth
from boltit.serving.bounds import BodyLimits
from boltit.serving.contract import install_contract
from boltit.serving.errors import REQUEST_ID_HEADER, install_error_handlers
from boltit.serving.fast_classify import ClassifyFastPath
from boltit.serving.prometheus import ServiceMetrics
from boltit.serving.request_ids import scope_request_id
from boltit.serving.review.routes import install_review_page
from boltit.serving.routes import admin, classify, flags, health, metrics, model, tickets, webhooks
from boltit.serving.service import CollectorFactory, ServingService


class ServingApp(FastAPI):
    """The FastAPI app, with ``POST /classify`` tried on the fast path first.

    A subclass rather than a middleware, so the fast path also skips Starlette's own
    middleware stack; every other request (and every request the fast path declines) goes
    through the full app.
    """

    fast_classify: ClassifyFastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_classify
        if fast is not None and fast.wants(scope):
            scope["app"] = self  # what the app's error handlers read, as Starlette sets it
            await fast(scope, receive, send, super().__call__)
            return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings, *, collectors: Sequence[CollectorFactory] = (), fast_path: bool = True
) -> ServingApp:
    """Build the service for ``settings``; the lifespan loads the model and starts followers.

    Args:
        collectors: builders of extra Prometheus collectors for ``/metrics``, each called
            with the service once it exists.
        fast_path: answer well-formed ``POST /classify`` requests below the router
            (``boltit.serving.fast_classify``); off, every request takes the FastAPI route.

    Raises:
        InsecureStartError: no client token is configured and ``BOLTIT_INSECURE_OPEN`` is off.
    """
    auth = ServiceAuth(settings)
    auth.check_startup()  # before anything opens: an open service must be asked for
    client = configure_mlflow(settings)
    database = Database(settings.database_url)
    service = ServingService(
        settings=settings, client=client, database=database, collectors=collectors
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(service.start)
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)
            database.dispose()

    app = ServingApp(
        title="BoltIT ticket classifier",
        summary="Classifies IT tickets with the Production model; follows the registry live.",
        version="1.0",
        lifespan=lifespan,
        # Metrics are ours (Prometheus on /metrics); FastAPI's native OpenTelemetry hooks
        # would otherwise look up global providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.service = service
    app.state.auth = auth
    install_error_handlers(app)
    install_contract(app)
    for router in (
        classify.router,
        model.router,
        health.router,
        metrics.router,
        flags.router,
        tickets.router,
        admin.router,
        webhooks.router,
    ):
        app.include_router(router)
    install_review_page(app, settings)
    # Added last = outermost: refusals by the body limits are counted too.
    app.add_middleware(BodyLimits, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=service.metrics)
    if fast_path:
        app.fast_classify = ClassifyFastPath(
            service=service,
            auth=auth,
            max_body_bytes=settings.max_body_bytes,
            error_handlers=app.exception_handlers,
        )
    return app


class RequestMetrics:
    """Counts requests, errors and latency per endpoint; gives every request an id.

    The id (the caller's ``X-Request-ID`` when plain, else a new one) is in
    ``request.state.request_id`` and in every response's ``X-Request-ID`` header.
    """

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = _endpoint(scope["path"])
        started = time.perf_counter()
        status = 500
        request_id = scope_request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (REQUEST_ID_HEADER.lower().encode(), request_id.encode())

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                if all(name.lower() != id_header[0] for name, _ in headers):
                    message = {**message, "headers": [*headers, id_header]}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self._observe(endpoint, status, started)

    def _observe(self, endpoint: str, status: int, started: float) -> None:
        self.metrics.observe_request(endpoint, status, time.perf_counter() - started)


_KNOWN = {
    "/classify",
    "/classify/batch",
    "/model/version",
    "/health",
    "/ready",
    "/metrics",
    "/admin/feature-flags",
    "/admin/reload",
    "/tickets",
    "/webhooks/mlflow",
}


def _endpoint(path: str) -> str:
    if path in _KNOWN:
        return path
    if path.startswith("/tickets/") and path.endswith("/feedback"):
        return "/tickets/{id}/feedback"
    return "other"  # unknown paths must not grow label cardinality
