"""A lock per model name, so promotions and rollbacks run one at a time.

MLflow moves aliases one call at a time; two promotions interleaving could leave
``previous`` pointing at a version that never served. Holding the lock for the whole move
makes the second promotion read the first one's result. On PostgreSQL it is a row lock;
on a SQLite file it is a file lock of its own, because holding SQLite's database write lock
across MLflow calls would stop every ticket commit (and a service that commits on its
event loop) until the move ended.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Column, DateTime, MetaData, String, Table, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from boltit.core.db import Database
from boltit.core.schema import utcnow

registry_locks = Table(
    "registry_locks",
    MetaData(),
    Column("name", String(256), primary_key=True),
    Column("holder", String(128)),
    Column("acquired_at", DateTime(timezone=True)),
)


def _ensure_lock_row(database: Database, model_name: str) -> None:
    dialect = database.engine.dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(registry_locks).values(name=model_name).on_conflict_do_nothing()
    with database.session() as session:
        session.execute(statement)


@contextmanager
def registry_lock(database: Database, *, model_name: str, holder: str) -> Iterator[Session]:
    """Hold the model's lock; the yielded session commits (and releases) on exit.

    Audit events written through the yielded session land atomically with the release.
    """
    _ensure_lock_row(database, model_name)
    mark_holder = (
        update(registry_locks)
        .where(registry_locks.c.name == model_name)
        .values(holder=holder[:128], acquired_at=utcnow())
    )
    if database.has_file_locks:
        with database.file_lock(f"registry-{model_name}"):
            with database.session() as session:
                session.execute(mark_holder)  # committed at once: who holds it, for the record
            with database.session() as session:
                yield session
        return
    with database.session() as session:
        # The UPDATE itself takes the row lock; a second holder waits here until this
        # session ends.
        session.execute(mark_holder)
        yield session
