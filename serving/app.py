"""The app factory: one replica of the ticket-classification service."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from boltit.db import Database
from boltit.settings import Settings, load_settings
from boltit.tracking import configure_mlflow
from serving.errors import install_error_handlers
from serving.metrics import ServiceMetrics
from serving.routes import admin, classify, flags, health, metrics, model, tickets, webhooks
from serving.service import ServingService

# Ceiling on any request body: a full batch of maximal texts, JSON-escaped.
MAX_BODY_BYTES = 32 * 1024 * 1024


def create_app(settings: Settings) -> FastAPI:
    """Build the service for ``settings``; the lifespan loads the model and starts followers."""
    client = configure_mlflow(settings)
    database = Database(settings.database_url)
    service = ServingService(settings=settings, client=client, database=database)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(service.start)
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)
            database.dispose()

    app = FastAPI(
        title="BoltIT ticket classifier",
        summary="Classifies IT tickets with the Production model; follows the registry live.",
        version="1.0",
        lifespan=lifespan,
        # Metrics are ours (Prometheus on /metrics); FastAPI's native OpenTelemetry hooks
        # would otherwise look up global providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.service = service
    install_error_handlers(app)
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
    app.add_middleware(RequestMetrics, metrics=service.metrics)
    return app


def app_from_environment() -> FastAPI:
    """Uvicorn's ``--factory`` entry: settings from the environment, built when called."""
    return create_app(load_settings())


class RequestMetrics:
    """Counts requests, errors and latency per endpoint; refuses oversized bodies early."""

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
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY_BYTES:
                await _refuse_large(send)
                self._observe(endpoint, 413, started)
                return

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
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


async def _refuse_large(send: Send) -> None:
    body = b'{"detail":"request body is larger than the 32 MiB limit"}'
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
