"""A real HTTP receiver on loopback standing in for Slack and PagerDuty: it records every
request and answers from a per-path script of status codes."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from boltit.core.ports import free_port


@dataclass
class Receiver:
    """What the receiver got, and how it will answer."""

    url: str
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=dict)
    """Path -> status codes to answer in turn; the last one repeats. Default 202."""
    before_answer: Callable[[str], None] | None = None
    """Called (on the server's thread) before each answer, e.g. to hold it back."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for where, body in self.requests if where == path]

    def _status(self, path: str) -> int:
        with self.lock:
            codes = self.script.get(path)
            if not codes:
                return 202
            return codes.pop(0) if len(codes) > 1 else codes[0]


@contextmanager
def receiver() -> Iterator[Receiver]:
    """Serve on 127.0.0.1 in a thread for the duration of the block."""
    port = free_port()
    state = Receiver(url=f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            with state.lock:
                state.requests.append((self.path, body))
            if state.before_answer is not None:
                state.before_answer(self.path)
            status = state._status(self.path)
            payload = json.dumps({"status": "success" if status < 300 else "error"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
