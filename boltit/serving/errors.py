"""HTTP answers for bad input, unavailable parts and model failures, always JSON naming the
problem; a 500 also carries the request id (body and ``X-Request-ID`` header)."""

from __future__ import annotations

import logging
import os
import socket
from contextlib import suppress
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from boltit.core import audit
from boltit.core.vocabulary import PREDICTION_ERROR
from boltit.serving.bounds import MAX_JSON_DEPTH
from boltit.serving.contract import allowed_methods
from boltit.serving.security import AuthError
from boltit.serving.service import NoModelError, PredictionFailedError
from boltit.serving.ticket_writer import StoreUnavailableError

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"


def too_long(field: str, size: int, limit: int, *, unit: str = "characters") -> HTTPException:
    """422 for a text or batch over its limit."""
    return HTTPException(422, f"{field} is too long: {size} {unit}, the limit is {limit}")


def _describe(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    kind = error.get("type", "")
    message = str(error.get("msg", "invalid"))
    if kind == "json_invalid":
        detail = (error.get("ctx") or {}).get("error", "")
        return f"request body is not valid JSON ({detail})" if detail else "body is not JSON"
    if kind == "missing":
        return f"{location or 'body'}: field required"
    if kind == "extra_forbidden":
        return f"{location}: unknown field"
    return f"{location or 'body'}: {message}"


def install_error_handlers(app: FastAPI) -> None:
    """Turn every known failure into one clear JSON message."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        problems = [_describe(error) for error in errors]
        return JSONResponse(
            status_code=422,
            content={
                "detail": "; ".join(problems) or "invalid request",
                "errors": [
                    {"loc": list(e.get("loc", ())), "type": e.get("type"), "msg": e.get("msg")}
                    for e in errors
                ],
            },
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        headers = exc.headers
        if exc.status_code == 405:
            # Starlette names only the first route's methods; a path has one route per method.
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            if isinstance(exc.__cause__, RecursionError):
                # Only reachable when the streaming depth cap is off or raised.
                detail = f"request body JSON is nested deeper than {MAX_JSON_DEPTH} levels"
            else:
                # FastAPI's other non-JSONDecodeError body failure is undecodable bytes.
                detail = "request body could not be decoded: it must be UTF-8 encoded JSON"
        return JSONResponse(
            status_code=exc.status_code, content={"detail": detail}, headers=headers
        )

    @app.exception_handler(AuthError)
    async def _auth(_request: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(
            status_code=exc.status, content={"detail": exc.message}, headers=headers
        )

    @app.exception_handler(NoModelError)
    async def _no_model(request: Request, exc: NoModelError) -> JSONResponse:
        await _record_prediction_error(request, str(exc), kind="no_model")
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.exception_handler(StoreUnavailableError)
    async def _store(request: Request, exc: StoreUnavailableError) -> JSONResponse:
        await _record_prediction_error(request, str(exc), kind="store_unavailable")
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.exception_handler(PredictionFailedError)
    async def _model_error(request: Request, exc: PredictionFailedError) -> JSONResponse:
        await _record_prediction_error(
            request, str(exc), kind="model_error", model_version=exc.version
        )
        return _server_error(request, str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette's outermost layer calls this (and re-raises, so the traceback is logged);
        # the caller gets JSON and an id to quote instead of a plain-text 500.
        await _record_prediction_error(request, f"{type(exc).__name__}: {exc}", kind="unexpected")
        return _server_error(request, f"internal error ({type(exc).__name__})")


def request_id(request: Request) -> str:
    """The id the request middleware gave this request."""
    return str(getattr(request.state, "request_id", "") or "unknown")


def _server_error(request: Request, detail: str) -> JSONResponse:
    rid = request_id(request)
    return JSONResponse(
        status_code=500,
        content={"detail": detail, "request_id": rid},
        headers={REQUEST_ID_HEADER: rid},
    )


async def _record_prediction_error(
    request: Request, error: str, *, kind: str, model_version: str | None = None
) -> None:
    """Count a failed classify request in the history (the monitor's error-rate rule reads
    it) and on ``/metrics``."""
    if not request.url.path.startswith("/classify"):
        return
    service = request.app.state.service
    service.metrics.observe_prediction_error(kind)
    rid = request_id(request)
    if kind in ("model_error", "unexpected"):
        log.error("prediction failed (request %s): %s", rid, error)

    def write() -> None:
        with service.database.session() as session:
            audit.record(
                session,
                action=PREDICTION_ERROR,
                actor=f"serving@{socket.gethostname()}:{os.getpid()}",
                model_name=service.settings.model_name,
                to_version=model_version,
                reason=error[:500],
                details={"path": request.url.path, "kind": kind, "request_id": rid},
            )

    # Best effort: when the store itself is down, the per-process error counter still counts it.
    with suppress(Exception):
        await run_in_threadpool(write)
