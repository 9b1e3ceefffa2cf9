"""``POST /classify`` for the ordinary request, answered below FastAPI's router.

Routing, ``Request`` objects, dependency solving and pydantic validation cost more per
request than predicting and storing a ticket (a do-nothing FastAPI endpoint tops out near
2,800 req/s on two cores). The fast path takes only the happy path: a JSON body with a
declared length within the limit, an accepted caller, and exactly ``{"text": <visible
string within the limit>}``. It calls the same ``ServingService.classify`` as the route,
answers with the same bytes and headers, and counts the request the same way.

Everything else is handed to the FastAPI app with the body it already read, so refusals,
validation errors and the OpenAPI contract keep one implementation (the route and the
app's error handlers). Failures inside the service are answered by the app's own
exception handlers.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from boltit.core.clients import Scope as ClientScope
from boltit.serving.auth import ServiceAuth
from boltit.serving.classification import classification_json
from boltit.serving.request_ids import caller_request_id, new_request_id
from boltit.serving.schemas import DEFAULT_MAX_TEXT_CHARS, is_blank
from boltit.serving.service import ServingService

log = logging.getLogger(__name__)

CLASSIFY_PATH = "/classify"
_JSON = b"application/json"
_JSON_TYPES = frozenset({_JSON, b"application/json; charset=utf-8"})


class ClassifyFastPath:
    """Answers well-formed single-ticket classify requests; hands the rest to ``fallback``.

    Args:
        service: the replica's service (predict, decide, store, metrics).
        auth: the app's client check, the same object its dependencies use.
        max_body_bytes: the body limit the ``BodyLimits`` middleware enforces.
        error_handlers: the FastAPI app's exception handlers (by exception class).
    """

    def __init__(
        self,
        *,
        service: ServingService,
        auth: ServiceAuth,
        max_body_bytes: int,
        error_handlers: Mapping[Any, Callable[..., Any]],
    ) -> None:
        self.service = service
        self.auth = auth
        self.max_body_bytes = max_body_bytes
        self.max_text_chars = min(service.settings.max_text_chars, DEFAULT_MAX_TEXT_CHARS)
        self.error_handlers = error_handlers
        self.answered = 0  # requests the fast path answered itself (tests and benches read it)

    @staticmethod
    def wants(scope: Scope) -> bool:
        """True for ``POST /classify``."""
        return (
            scope["type"] == "http" and scope["path"] == CLASSIFY_PATH and scope["method"] == "POST"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send, fallback: ASGIApp) -> None:
        started = time.perf_counter()
        content_type = length = authorization = request_id = None
        for name, value in scope["headers"]:
            if name == b"content-type" and content_type is None:
                content_type = value
            elif name == b"content-length" and length is None:
                length = value
            elif name == b"authorization" and authorization is None:
                authorization = value
            elif name == b"x-request-id" and request_id is None:
                request_id = value
            elif name in _UNUSUAL:
                await fallback(scope, receive, send)
                return
        if (
            content_type not in _JSON_TYPES
            or length is None
            or not length.isdigit()
            or not 0 < int(length) <= self.max_body_bytes
        ):
            await fallback(scope, receive, send)
            return
        try:
            self.auth.authorize(
                authorization.decode("latin-1") if authorization is not None else None,
                ClientScope.classify,
            )
        except Exception:  # AuthError, or a clients file that cannot be read
            await fallback(scope, receive, send)  # the route's dependency answers it
            return
        messages, body = await _read_body(receive, self.max_body_bytes)
        replay = _replaying(messages, receive)
        text = self._ticket_text(body)
        if text is None or self.service.production is None:
            await fallback(scope, replay, send)
            return
        rid = caller_request_id(request_id) or new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        rid_header = (b"x-request-id", rid.encode())
        try:
            (result,) = await self.service.classify([text])
        except Exception as exc:
            status = await self._answer_error(scope, replay, send, exc, rid_header)
            self.service.metrics.observe_request(
                CLASSIFY_PATH, status, time.perf_counter() - started
            )
            return
        answer = classification_json(result)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                # As the route's Response plus the request-id middleware would send them.
                "headers": [
                    (b"content-length", str(len(answer)).encode()),
                    (b"content-type", _JSON),
                    rid_header,
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})
        self.answered += 1
        self.service.metrics.observe_request(CLASSIFY_PATH, 200, time.perf_counter() - started)

    def _ticket_text(self, body: bytes) -> str | None:
        """The ticket text of a body that is exactly ``{"text": <valid text>}``, else None."""
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if type(document) is not dict or len(document) != 1:
            return None
        text = document.get("text")
        # orjson refuses unpaired surrogates and invalid UTF-8, so the text is valid Unicode;
        # one level deep, it is far within the JSON depth cap.
        if type(text) is not str or not 0 < len(text) <= self.max_text_chars or is_blank(text):
            return None
        return text

    async def _answer_error(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        exc: Exception,
        rid_header: tuple[bytes, bytes],
    ) -> int:
        """Answer ``exc`` with the app's own handler for it, as the route would; its status."""
        kinds = [kind for kind in type(exc).__mro__ if kind in self.error_handlers]
        if not kinds:
            raise exc
        if kinds[0] is Exception:  # Starlette would log this one's traceback too
            log.error("classify failed unexpectedly", exc_info=exc)
        handler = self.error_handlers[kinds[0]]
        response = handler(Request(scope, receive), exc)
        if inspect.isawaitable(response):
            response = await response
        assert isinstance(response, Response)
        if all(name != rid_header[0] for name, _ in response.raw_headers):
            response.raw_headers.append(rid_header)
        await response(scope, receive, send)
        return response.status_code


# Headers whose handling the framework owns: a chunked or compressed upload, a 100-continue.
_UNUSUAL = frozenset({b"transfer-encoding", b"content-encoding", b"expect"})


async def _read_body(receive: Receive, limit: int) -> tuple[list[Message], bytes]:
    """Every ``http.request`` message up to the end of the body (or past ``limit``)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, b""  # the client went away; the framework answers that
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return messages, b""  # more than declared: BodyLimits refuses it
        if not message.get("more_body", False):
            return messages, chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out ``messages`` again, then the connection's own."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
