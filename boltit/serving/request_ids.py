"""Request ids: the caller's own when it is short and plain, else a fresh random one."""

from __future__ import annotations

import os
import re

from starlette.types import Scope

# A caller's own request id is kept when it is short and plain, so logs can be joined.
_CALLER_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")


def new_request_id() -> str:
    """32 random hex digits (a uuid4's entropy without building a UUID object)."""
    return os.urandom(16).hex()


def caller_request_id(value: bytes | None) -> str | None:
    """The caller's ``X-Request-ID`` when it may be echoed into logs and headers."""
    if value is None or not _CALLER_REQUEST_ID.match(value):
        return None
    return value.decode()


def scope_request_id(scope: Scope) -> str:
    """The id of the request in ``scope``: the caller's plain one, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            return caller_request_id(value) or new_request_id()
    return new_request_id()
