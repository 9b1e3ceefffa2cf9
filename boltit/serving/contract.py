"""The OpenAPI document says every status a route can answer, with the one error body it has.

Every error the service answers is ``ErrorPublic``: a ``detail`` line, plus ``errors`` (one
per field) on a 422 and ``request_id`` on a 500. The codes are added here, after FastAPI
builds the document: those every route can answer (413 body limit, 500), those that follow
from how a route is built (401/403 with a client token, 422 with parameters or a body, 400
with a JSON body) and the few a route raises itself (``ROUTE_ERRORS``). The schemathesis test
holds the document to what the service does.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

JSON = "application/json"


class FieldErrorPublic(BaseModel):
    """One problem with one part of the request."""

    loc: list[str | int]
    type: str | None = None
    msg: str | None = None


class ErrorPublic(BaseModel):
    """Every error body: one line naming the problem."""

    detail: str = Field(description="What is wrong, in one line.")
    errors: list[FieldErrorPublic] | None = Field(
        None, description="422 only: each invalid field, where and why."
    )
    request_id: str | None = Field(
        None, description="500 only: quote it; the service log has the traceback."
    )


WHY = {
    400: "The body is not UTF-8 JSON, or its JSON is nested too deep.",
    401: "No bearer token, or an Authorization header that is not 'Bearer <token>'.",
    403: "The token is unknown or revoked, lacks this route's scope, or no client has it.",
    404: "Not found.",
    413: "The request body is over the size limit.",
    422: "The request does not match the schema; `detail` names each problem.",
    500: "An internal or model error; `request_id` finds it in the log.",
    503: "No model version is loaded, or the ticket store is unavailable.",
}

# Codes a route raises itself, beyond those that follow from its shape.
ROUTE_ERRORS: dict[tuple[str, str], tuple[int, ...]] = {
    ("post", "/classify"): (503,),
    ("post", "/classify/batch"): (503,),
    ("post", "/tickets/{ticket_id}/feedback"): (404, 503),
    ("put", "/tickets/{ticket_id}/feedback"): (404, 503),
    ("get", "/model/version"): (503,),
    ("post", "/webhooks/mlflow"): (401, 403, 422),
}

# Alternatives to JSON for a 200, by route.
EXTRA_CONTENT: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/tickets"): {
        "text/csv": {
            "schema": {"type": "string"},
            "example": "id,text,category,...\n",
        }
    },
}


def install_contract(app: FastAPI) -> None:
    """Make ``app.openapi()`` declare every error the service answers, as ``ErrorPublic``."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            declare_errors(build())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def declare_errors(document: dict[str, Any]) -> None:
    """Add the error responses to every operation of ``document`` (changed in place)."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorPublic.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(error_schema.pop("$defs", {}))
    components["ErrorPublic"] = error_schema
    reference = {"$ref": "#/components/schemas/ErrorPublic"}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for code in _codes(path, method, operation):
                declared = responses.get(str(code))
                if code == 422 or declared is None:
                    responses[str(code)] = {
                        "description": WHY[code],
                        "content": {JSON: {"schema": reference}},
                    }
            extra = EXTRA_CONTENT.get((method, path))
            if extra and "200" in responses:
                responses["200"].setdefault("content", {}).update(extra)
    # FastAPI's own 422 body (a list of errors in `detail`) is never sent.
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


def _codes(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    codes = {413, 500, *ROUTE_ERRORS.get((method, path), ())}
    if operation.get("security"):
        codes |= {401, 403}
    if operation.get("parameters") or operation.get("requestBody"):
        codes.add(422)
    if operation.get("requestBody"):
        codes.add(400)
    return sorted(codes)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers on this request's path (for ``Allow``)."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, APIRoute) and route.path_regex.match(request.url.path):
            methods |= route.methods or set()
    return sorted(methods)
