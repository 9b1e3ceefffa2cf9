"""HTTP answers for bad input and unavailable parts: always a 4xx/503 naming the problem."""

from __future__ import annotations

import os
import socket
from contextlib import suppress
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from boltit import audit
from boltit.names import PREDICTION_ERROR
from serving.security import AuthError
from serving.service import NoModelError
from serving.store import StoreUnavailableError


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
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            # FastAPI's only non-JSONDecodeError body failure here is undecodable bytes.
            detail = "request body could not be decoded: it must be UTF-8 encoded JSON"
        return JSONResponse(
            status_code=exc.status_code, content={"detail": detail}, headers=exc.headers
        )

    @app.exception_handler(AuthError)
    async def _auth(_request: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(
            status_code=exc.status, content={"detail": exc.message}, headers=headers
        )

    @app.exception_handler(NoModelError)
    async def _no_model(request: Request, exc: NoModelError) -> JSONResponse:
        await _record_prediction_error(request, str(exc))
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.exception_handler(StoreUnavailableError)
    async def _store(request: Request, exc: StoreUnavailableError) -> JSONResponse:
        await _record_prediction_error(request, str(exc))
        return JSONResponse(status_code=503, content={"detail": str(exc)})


async def _record_prediction_error(request: Request, error: str) -> None:
    """Count a failed classify request in the history: the monitor's error-rate rule reads it."""
    if not request.url.path.startswith("/classify"):
        return
    service = request.app.state.service

    def write() -> None:
        with service.database.session() as session:
            audit.record(
                session,
                action=PREDICTION_ERROR,
                actor=f"serving@{socket.gethostname()}:{os.getpid()}",
                model_name=service.settings.model_name,
                reason=error[:500],
                details={"path": request.url.path},
            )

    # Best effort: when the store itself is down, the per-process error counter still counts it.
    with suppress(Exception):
        await run_in_threadpool(write)
