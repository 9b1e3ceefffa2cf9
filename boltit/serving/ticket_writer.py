"""The ticket store writers: group commit, so concurrent requests share one transaction.

A request hands its rows to the writer and awaits a future that is resolved after the
commit, so a 200 is only sent for a committed row. Two writers, chosen by database:

- SQLite commits on the event loop itself. Its commit is local and short, while a writer
  thread would need the GIL back several times per transaction (begin, each row, commit),
  and each time may wait a whole switch interval behind the busy event loop.
- Server databases (PostgreSQL) commit from one thread, which releases the GIL while it
  waits on the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from sqlalchemy import Connection, Dialect, insert
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool

from boltit.core.db import Database
from boltit.core.schema import ShadowPrediction, Ticket

log = logging.getLogger(__name__)

_STOP = object()
_INSERT_TICKETS = insert(Ticket)

AfterCommit = Callable[[list[dict[str, Any]]], None]

# The keys of a ticket row as the service builds it (ServingService._decide).
TICKET_ROW_KEYS = (
    "id",
    "text",
    "category",
    "priority",
    "confidence",
    "model_name",
    "model_version",
    "served_by",
    "latency_ms",
    "auto_applied",
    "reason",
    "created_at",
)

# A group with more ticket text than this (a big batch of long tickets: up to ~5 MB) is
# committed from a worker thread: copying it into SQLite would stall the event loop for
# 100 ms or more. Ordinary groups stay on the loop (see LoopTicketWriter).
THREAD_COMMIT_CHARS = 200_000


@dataclass(slots=True)
class _Pending:
    rows: list[dict[str, Any]]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


class StoreUnavailableError(Exception):
    """The ticket store could not commit; the caller answers 503."""


class TicketWriter(Protocol):
    """What the service needs from a ticket writer."""

    commits: int
    rows_written: int

    def start(self) -> None: ...

    def stop(self) -> None: ...

    async def write(self, rows: list[dict[str, Any]]) -> None: ...


def ticket_writer(database: Database, *, after_commit: AfterCommit | None = None) -> TicketWriter:
    """The writer suited to ``database``: on the event loop for SQLite, a thread otherwise."""
    if database.is_sqlite:
        return LoopTicketWriter(database, after_commit=after_commit)
    return ThreadTicketWriter(database, after_commit=after_commit)


class _Committer:
    """One transaction for a group of rows, and the bookkeeping both writers share."""

    def __init__(self, database: Database, after_commit: AfterCommit | None) -> None:
        self._database = database
        self._after_commit = after_commit
        self.commits = 0
        self.rows_written = 0

    def _commit(self, rows: list[dict[str, Any]]) -> StoreUnavailableError | None:
        """One transaction for ``rows`` on a pooled connection; the error, if any."""
        try:
            # Core insert on one connection: no ORM unit of work.
            with self._database.write_lock(), self._database.engine.begin() as connection:
                connection.execute(_INSERT_TICKETS, rows)
        except Exception as exc:
            log.exception("ticket store commit failed for %d rows", len(rows))
            return StoreUnavailableError(f"the ticket store could not commit: {exc}")
        self._committed(rows)
        return None

    def _committed(self, rows: list[dict[str, Any]]) -> None:
        self.commits += 1
        self.rows_written += len(rows)
        if self._after_commit is not None:
            try:
                self._after_commit(rows)
            except Exception:
                log.exception("after-commit hook failed")


class LoopTicketWriter(_Committer):
    """Group commit on the event loop: everything queued in one loop pass, one transaction.

    The flush is scheduled with ``call_soon``, so it runs after every request that became
    ready in the same pass has added its rows. The group goes straight to the writer's own
    SQLite connection as one prepared ``executemany``, with SQLAlchemy's own bind
    processors, and the write lock is taken through a descriptor the writer keeps open: the
    SQLAlchemy statement path and a lock object per commit cost more than the insert. The
    connection never checkpoints the write-ahead log itself: copying the log into the
    database file would stall the event loop for milliseconds, so a background thread does
    it instead. Serves one event loop at a time.
    """

    def __init__(
        self,
        database: Database,
        *,
        after_commit: AfterCommit | None = None,
        checkpoint_seconds: float = 0.5,
    ) -> None:
        super().__init__(database, after_commit)
        self._rows: list[dict[str, Any]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._connection: Connection | None = None
        self._insert = TicketInsert(database.engine.dialect)
        lock_path = database.write_lock_path
        self._lock = HeldFileLock(lock_path) if lock_path is not None else None
        self._checkpoint_seconds = checkpoint_seconds
        self._stopping = threading.Event()
        self._checkpointer: threading.Thread | None = None

    def start(self) -> None:
        """Start the checkpoint thread."""
        self._stopping.clear()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_until_stopped, name="wal-checkpointer", daemon=True
        )
        self._checkpointer.start()

    def stop(self) -> None:
        """Stop checkpointing, checkpoint once more and close the connection.

        Nothing is left to flush: every write awaits its own commit.
        """
        self._stopping.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=30)
            self._checkpointer = None
        self._close()
        if self._lock is not None:
            self._lock.close()
        with contextlib.suppress(Exception):
            self._database.checkpoint()

    async def write(self, rows: list[dict[str, Any]]) -> None:
        """Queue ticket rows and return once they are committed.

        Raises:
            StoreUnavailableError: the transaction failed; nothing of it was kept.
        """
        if sum(len(row["text"]) for row in rows) > THREAD_COMMIT_CHARS:
            error = await run_in_threadpool(self._commit, rows)
            if error is not None:
                raise error
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if not self._waiters:
            loop.call_soon(self._flush)
        self._rows.extend(rows)
        self._waiters.append(future)
        await future

    def _flush(self) -> None:
        rows, waiters = self._rows, self._waiters
        self._rows, self._waiters = [], []
        _resolve(waiters, self._commit_group(rows))

    def _commit_group(self, rows: list[dict[str, Any]]) -> StoreUnavailableError | None:
        """One transaction for ``rows`` on the writer's connection; the error, if any."""
        try:
            parameters = self._insert.parameters(rows)
            with self._lock or contextlib.nullcontext():
                dbapi = self._dbapi_connection()
                try:
                    dbapi.executemany(self._insert.sql, parameters)
                    dbapi.commit()
                except BaseException:
                    dbapi.rollback()
                    raise
        except Exception as exc:
            log.exception("ticket store commit failed for %d rows", len(rows))
            self._close()  # the next group starts on a fresh connection
            return StoreUnavailableError(f"the ticket store could not commit: {exc}")
        self._committed(rows)
        return None

    def _dbapi_connection(self) -> sqlite3.Connection:
        if self._connection is None:
            # Out of the pool for good: its no-checkpoint setting must not reach other users.
            connection = self._database.engine.connect()
            connection.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
            connection.commit()
            connection.detach()
            self._connection = connection
        dbapi = self._connection.connection.dbapi_connection
        assert isinstance(dbapi, sqlite3.Connection)
        return dbapi

    def _close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None

    def _checkpoint_until_stopped(self) -> None:
        while not self._stopping.wait(self._checkpoint_seconds):
            try:
                self._database.checkpoint()
            except Exception:
                log.exception("write-ahead log checkpoint failed")


class TicketInsert:
    """``INSERT INTO tickets`` as one prepared statement for the DBAPI's ``executemany``.

    Values pass through the same bind processors SQLAlchemy applies to the ``Ticket``
    columns (UTC timestamps as SQLite text, booleans as integers), so the stored rows are
    the ones the ORM and Core inserts write.
    """

    def __init__(self, dialect: Dialect) -> None:
        if dialect.paramstyle != "qmark":
            raise ValueError(
                f"{dialect.name}: expected the qmark paramstyle, not {dialect.paramstyle}"
            )
        table = Ticket.__table__
        quote = dialect.identifier_preparer.quote
        self.sql = (
            f"INSERT INTO {quote(Ticket.__tablename__)} "
            f"({', '.join(quote(key) for key in TICKET_ROW_KEYS)}) "
            f"VALUES ({', '.join('?' for _ in TICKET_ROW_KEYS)})"
        )
        processors = (
            table.c[key].type.dialect_impl(dialect).bind_processor(dialect)
            for key in TICKET_ROW_KEYS
        )
        self._processors = [
            (index, process) for index, process in enumerate(processors) if process is not None
        ]

    def parameters(self, rows: list[dict[str, Any]]) -> list[list[Any]]:
        """Each row's values in column order, as the DBAPI takes them."""
        ordered = []
        for row in rows:
            values = [row[key] for key in TICKET_ROW_KEYS]
            for index, process in self._processors:
                values[index] = process(values[index])
            ordered.append(values)
        return ordered


class HeldFileLock:
    """``Database.write_lock``'s file lock through one descriptor kept open between commits.

    The same ``flock`` on the same file, so other processes and this process's other
    writers (which open the file for each lock) queue behind it as before; only one writer
    uses the descriptor, so it never has to exclude itself. Retried every millisecond.
    """

    def __init__(self, path: Path, *, poll_seconds: float = 0.001) -> None:
        self._path = path
        self._poll_seconds = poll_seconds
        self._fd: int | None = None

    def __enter__(self) -> None:
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                time.sleep(self._poll_seconds)

    def __exit__(
        self,
        _kind: type[BaseException] | None,
        _error: BaseException | None,
        _trace: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the descriptor (releasing the lock if held)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


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


class ThreadTicketWriter(_Committer, _GroupWorker):
    """One thread that commits tickets in groups, for databases across the network.

    The thread keeps one connection instead of checking one out of the pool per group:
    the pool's liveness ping is a round trip of its own, a third of a group's time beside
    the insert and the commit. A connection found dead before the commit was sent is
    replaced and the group retried once, which is what the ping would have done.
    """

    _thread_name = "ticket-writer"

    def __init__(
        self,
        database: Database,
        *,
        max_group: int = 1024,
        after_commit: AfterCommit | None = None,
    ) -> None:
        _Committer.__init__(self, database, after_commit)
        _GroupWorker.__init__(self, max_group=max_group)
        self._connection: Connection | None = None

    def stop(self) -> None:
        """Commit everything queued, stop, and close the connection."""
        _GroupWorker.stop(self)
        self._drop_connection()

    def _commit_group(self, rows: list[dict[str, Any]]) -> StoreUnavailableError | None:
        """One transaction for ``rows`` on the thread's connection; the error, if any."""
        for attempt in range(2):
            try:
                if self._connection is None:
                    self._connection = self._database.engine.connect()
                connection = self._connection
                with self._database.write_lock():
                    transaction = connection.begin()
                    try:
                        connection.execute(_INSERT_TICKETS, rows)
                    except DBAPIError as exc:
                        self._drop_connection()
                        if exc.connection_invalidated and attempt == 0:
                            continue  # dead before anything was committed: once more
                        raise
                    transaction.commit()
            except Exception as exc:
                self._drop_connection()
                log.exception("ticket store commit failed for %d rows", len(rows))
                return StoreUnavailableError(f"the ticket store could not commit: {exc}")
            self._committed(rows)
            return None
        raise AssertionError("unreachable: the second attempt returns")

    def _drop_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None

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
        error = self._commit_group([row for pending in group for row in pending.rows])
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = defaultdict(list)
        for pending in group:
            by_loop[pending.loop].append(pending.future)
        for loop, futures in by_loop.items():
            # One wake-up per event loop, not one per request.
            with contextlib.suppress(RuntimeError):  # a closed loop has nobody waiting
                loop.call_soon_threadsafe(_resolve, futures, error)


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
            with self._database.write_session() as session:
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
