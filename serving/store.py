"""The ticket store writer: group commit, so concurrent requests share one transaction.

Each request hands its row to a queue and awaits a future; one writer thread drains
everything pending, inserts it in a single transaction, commits, then resolves every
waiting future. A 200 is only sent after that commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert

from boltit.db import Database
from boltit.schema import ShadowPrediction, Ticket

log = logging.getLogger(__name__)

_STOP = object()
_INSERT_TICKETS = insert(Ticket)


@dataclass(slots=True)
class _Pending:
    rows: list[dict[str, Any]]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


class StoreUnavailableError(Exception):
    """The ticket store could not commit; the caller answers 503."""


class _GroupWorker:
    """One daemon thread that hands everything queued since its last pass to ``_handle``."""

    _thread_name = "group-worker"

    def __init__(self, *, max_group: int) -> None:
        self._max_group = max_group
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker thread."""
        self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Handle everything queued, then stop."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout=30)
        self._thread = None

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            group: list[Any] = []
            if first is _STOP:
                stopping = True
            else:
                group.append(first)
            # Everything that arrived while the last pass ran joins this one.
            while len(group) < self._max_group:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    continue
                group.append(item)
            if group:
                self._handle(group)

    def _handle(self, group: list[Any]) -> None:
        raise NotImplementedError


class TicketWriter(_GroupWorker):
    """One thread that commits tickets in groups."""

    _thread_name = "ticket-writer"

    def __init__(
        self,
        database: Database,
        *,
        max_group: int = 1024,
        after_commit: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        super().__init__(max_group=max_group)
        self._database = database
        self._after_commit = after_commit
        self.commits = 0
        self.rows_written = 0

    async def write(self, rows: list[dict[str, Any]]) -> None:
        """Queue ticket rows and return once they are committed.

        Raises:
            StoreUnavailableError: the transaction failed; nothing of it was kept.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Pending(rows=rows, loop=loop, future=future))
        await future

    def _handle(self, group: list[_Pending]) -> None:
        rows = [row for pending in group for row in pending.rows]
        error: Exception | None = None
        try:
            # Core insert on one connection: no ORM unit of work on the hot path.
            with self._database.engine.begin() as connection:
                connection.execute(_INSERT_TICKETS, rows)
            self.commits += 1
            self.rows_written += len(rows)
        except Exception as exc:
            log.exception("ticket store commit failed for %d rows", len(rows))
            error = StoreUnavailableError(f"the ticket store could not commit: {exc}")
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = defaultdict(list)
        for pending in group:
            by_loop[pending.loop].append(pending.future)
        for loop, futures in by_loop.items():
            # One wake-up per event loop, not one per request.
            with contextlib.suppress(RuntimeError):  # a closed loop has nobody waiting
                loop.call_soon_threadsafe(_resolve, futures, error)
        if error is None and self._after_commit is not None:
            try:
                self._after_commit(rows)
            except Exception:
                log.exception("after-commit hook failed")


def _resolve(futures: list[asyncio.Future[None]], error: Exception | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


class ShadowScorer(_GroupWorker):
    """Scores committed tickets with the challenger in its own thread; never on the request path."""

    _thread_name = "shadow-scorer"

    def __init__(
        self,
        database: Database,
        *,
        challenger: Callable[[], Any],
        max_group: int = 256,
    ) -> None:
        super().__init__(max_group=max_group)
        self._database = database
        self._challenger = challenger
        self.scored = 0

    def submit(self, rows: list[dict[str, Any]]) -> None:
        """Queue committed tickets served by Production for shadow scoring."""
        for row in rows:
            if row.get("served_by") == "production":
                self._queue.put((row["id"], row["text"]))

    def _handle(self, items: list[tuple[str, str]]) -> None:
        model = self._challenger()
        if model is None:
            return
        try:
            started = time.perf_counter()
            answers = model.predictor.predict([text for _, text in items])
            per_ticket_ms = (time.perf_counter() - started) * 1000 / len(items)
            with self._database.session() as session:
                session.execute(
                    insert(ShadowPrediction),
                    [
                        {
                            "ticket_id": ticket_id,
                            "model_version": model.version,
                            "category": answer.category,
                            "priority": answer.priority,
                            "confidence": answer.confidence,
                            "latency_ms": per_ticket_ms,
                        }
                        for (ticket_id, _), answer in zip(items, answers, strict=True)
                    ],
                )
            self.scored += len(items)
        except Exception:
            log.exception("shadow scoring failed for %d tickets", len(items))
