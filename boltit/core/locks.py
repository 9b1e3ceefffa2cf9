"""Locks per model, held across processes: a model's registry moves, and its monitor passes.

MLflow moves aliases one call at a time; two promotions interleaving could leave
``previous`` pointing at a version that never served. Holding the model's registry lock for
the whole move makes the second promotion read the first one's result. Likewise a second
monitor acting on the same alert would open a second incident and could roll back again, onto
the version that just regressed, so a monitor pass holds the model's monitor lock.

Each lock is a row of ``registry_locks`` keyed ``<kind>:<model name>`` that records its holder.
On PostgreSQL the row lock itself excludes; on a SQLite file a file lock of its own does,
because holding SQLite's database write lock across MLflow calls would stop every ticket
commit (and a service that commits on its event loop) until the move ended.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from enum import StrEnum

from filelock import Timeout
from sqlalchemy import text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from boltit.core.db import Database
from boltit.core.errors import BoltitError
from boltit.core.schema import RegistryLock, utcnow

_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE when lock_timeout expires


class LockKind(StrEnum):
    """What a lock keeps to one holder at a time, for one model."""

    registry = "registry"  # moves of the model's aliases: promote, rollback, sync
    monitor = "monitor"  # a monitor pass: one incident and one response per alert


class LockTimeoutError(BoltitError):
    """Someone else held the lock for longer than the caller would wait."""


def lock_key(kind: LockKind, model_name: str) -> str:
    """The lock's row key: its kind, then the model it is for."""
    return f"{kind.value}:{model_name}"


@contextmanager
def hold(
    database: Database,
    kind: LockKind,
    *,
    model_name: str,
    holder: str,
    timeout: float | None = None,
) -> Iterator[Session]:
    """Hold ``model_name``'s lock of ``kind``; the yielded session commits (and releases) on exit.

    Audit events written through the yielded session land atomically with the release. Not
    reentrant.

    Args:
        timeout: seconds to wait for the lock; ``None`` waits as long as it takes.

    Raises:
        LockTimeoutError: the lock stayed held for ``timeout`` seconds.
    """
    key = lock_key(kind, model_name)
    _ensure_lock_row(database, key)
    mark_holder = (
        update(RegistryLock)
        .where(RegistryLock.name == key)
        .values(holder=holder[:128], acquired_at=utcnow())
    )
    if database.has_file_locks:
        with ExitStack() as held:
            try:
                held.enter_context(database.file_lock(key, timeout=timeout))
            except Timeout:
                raise _timed_out(key, timeout) from None
            with database.session() as session:
                session.execute(mark_holder)  # committed at once: who holds it, for the record
            with database.session() as session:
                yield session
        return
    with database.session() as session:
        # The UPDATE itself takes the row lock; a second holder waits here until this
        # session ends.
        if timeout is not None:
            session.execute(
                text("SELECT set_config('lock_timeout', :wait, true)"),
                {"wait": f"{max(1, round(timeout * 1000))}ms"},
            )
        try:
            session.execute(mark_holder)
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
                raise _timed_out(key, timeout) from None
            raise
        if timeout is not None:
            session.execute(text("RESET lock_timeout"))  # the holder's own work may wait
        yield session


def _ensure_lock_row(database: Database, key: str) -> None:
    with database.session() as session:
        # Read first: on PostgreSQL an INSERT that meets a row someone holds waits for them,
        # which would wait past the caller's timeout.
        if session.get(RegistryLock, key) is not None:
            return
        insert = pg_insert if database.engine.dialect.name == "postgresql" else sqlite_insert
        session.execute(insert(RegistryLock).values(name=key).on_conflict_do_nothing())


def _timed_out(key: str, timeout: float | None) -> LockTimeoutError:
    waited = "the database's lock_timeout" if timeout is None else f"{timeout:g} s"
    return LockTimeoutError(f"lock {key!r} is still held by someone else after {waited}")
