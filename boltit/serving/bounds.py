"""Request bounds enforced while the body streams in: its size and its JSON nesting depth.

Both are counted chunk by chunk as the server receives them, so a chunked upload (no
``Content-Length``) is refused as soon as it passes a bound instead of after it was
buffered whole, and a JSON document nested thousands deep never reaches the parser.
"""

from __future__ import annotations

import json

import numpy as np
from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# MLflow's webhook deliveries are a few hundred bytes; nothing bigger is a real event.
WEBHOOK_MAX_BODY_BYTES = 1024 * 1024
# Our bodies are two levels deep ({"texts": [...]}, webhook events three or four); any
# document much deeper is not a request, and Python's JSON parser fails near 1,000 levels.
MAX_JSON_DEPTH = 32

_STEP = np.zeros(256, dtype=np.int8)
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1


class BodyTooLargeError(HTTPException):
    """The body passed its byte limit (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the {_size(limit)} limit")


class JsonTooDeepError(HTTPException):
    """The JSON body nests arrays/objects deeper than allowed (400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(400, f"request body JSON is nested deeper than {limit} levels")


class JsonDepthScanner:
    """Tracks the nesting depth of a JSON document fed in arbitrary chunks.

    Brackets inside strings do not count. It does not validate the JSON (the parser does);
    it only answers whether the depth ever passes ``limit``.
    """

    def __init__(self, limit: int = MAX_JSON_DEPTH) -> None:
        self.limit = limit
        self.depth = 0
        self._in_string = False
        self._escaped = False  # the chunk ended on a backslash inside a string

    def feed(self, chunk: bytes) -> bool:
        """Scan the next chunk; True once the depth has passed the limit."""
        position, size = 0, len(chunk)
        while position < size:
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                    position += 1
                    continue
                quote = chunk.find(b'"', position)
                end = size if quote < 0 else quote
                # A quote (or the chunk's end) after an odd run of backslashes is escaped.
                run = end - position - len(chunk[position:end].rstrip(b"\\"))
                if quote < 0:
                    self._escaped = run % 2 == 1
                    return False
                if run % 2 == 0:
                    self._in_string = False
                position = quote + 1
                continue
            quote = chunk.find(b'"', position)
            stop = size if quote < 0 else quote
            if self._passes_limit(chunk[position:stop]):
                return True
            if quote < 0:
                return False
            self._in_string = True
            position = quote + 1
        return False

    def _passes_limit(self, structure: bytes) -> bool:
        opens = structure.count(b"[") + structure.count(b"{")
        if self.depth + opens > self.limit:
            # Only now is the running maximum needed; vectorised, as the span may be huge.
            steps = _STEP[np.frombuffer(structure, dtype=np.uint8)]
            if self.depth + int(np.cumsum(steps, dtype=np.int64).max()) > self.limit:
                return True
        self.depth += opens - structure.count(b"]") - structure.count(b"}")
        return False


class BodyLimits:
    """Pure-ASGI middleware: refuses bodies over ``max_body_bytes`` (413) and JSON nested
    deeper than ``max_json_depth`` (400), counting as the bytes arrive.

    A declared ``Content-Length`` over the limit is refused before anything is read.
    """

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, max_json_depth: int = MAX_JSON_DEPTH
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth

    def limit_for(self, path: str) -> int:
        """The byte limit of a route."""
        if path.startswith("/webhooks/"):
            return min(self.max_body_bytes, WEBHOOK_MAX_BODY_BYTES)
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        headers = dict(scope.get("headers", ()))
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(send, BodyTooLargeError(limit))
            return
        scanner = JsonDepthScanner(self.max_json_depth) if _is_json(headers) else None
        received = 0
        started = False

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    raise BodyTooLargeError(limit)
                if scanner is not None and scanner.feed(chunk):
                    raise JsonTooDeepError(self.max_json_depth)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracking_send)
        except (BodyTooLargeError, JsonTooDeepError) as exc:
            # Normally FastAPI's handlers answer these; this covers a reader outside them.
            if started:
                raise
            await _refuse(send, exc)


def _is_json(headers: dict[bytes, bytes]) -> bool:
    # FastAPI parses a body without a content type as JSON too.
    content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
    return not content_type or content_type.endswith(b"json")


def _size(limit: int) -> str:
    mib = limit / (1024 * 1024)
    return f"{mib:g} MiB" if mib >= 1 and mib == int(mib) else f"{limit:,}-byte"


async def _refuse(send: Send, exc: HTTPException) -> None:
    body = json.dumps({"detail": exc.detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": exc.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
