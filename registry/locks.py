"""A database lock per model name, so promotions and rollbacks run one at a time.

MLflow moves aliases one call at a time; two promotions interleaving could leave
``previous`` pointing at a version that never served. Holding a row lock in the project
database for the whole move (row lock on PostgreSQL, the write lock on SQLite) makes
the second promotion read the first one's result.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Column, DateTime, MetaData, String, Table, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from boltit.db import Database
from boltit.schema import utcnow

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
    with database.session() as session:
        # The UPDATE itself takes the lock: a row lock on PostgreSQL, the database write
        # lock on SQLite; a second holder waits here until this session ends.
        session.execute(
            update(registry_locks)
            .where(registry_locks.c.name == model_name)
            .values(holder=holder[:128], acquired_at=utcnow())
        )
        yield session
