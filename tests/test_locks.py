"""The core's locks: one kind per purpose, a row that says what it is, waits that can end."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from boltit.core.db import Database
from boltit.core.locks import LockKind, LockTimeoutError, hold
from boltit.core.schema import RegistryLock

MODEL = "ticket-classifier"


def _holders(database: Database) -> dict[str, str | None]:
    with database.session() as session:
        return {row.name: row.holder for row in session.scalars(select(RegistryLock))}


def _check_kinds_and_timeouts(database: Database) -> None:
    with hold(database, LockKind.registry, model_name=MODEL, holder="promoting"):
        # A monitor pass over the same model is another lock: it does not wait.
        with hold(database, LockKind.monitor, model_name=MODEL, holder="monitor", timeout=5):
            pass
        started = time.monotonic()
        with (
            pytest.raises(LockTimeoutError, match=f"'registry:{MODEL}' is still held"),
            hold(database, LockKind.registry, model_name=MODEL, holder="second", timeout=0.3),
        ):
            pass
        assert 0.25 <= time.monotonic() - started < 10
    # Released on exit, so a bounded wait now succeeds at once.
    with hold(database, LockKind.registry, model_name=MODEL, holder="later", timeout=5):
        pass
    assert _holders(database) == {f"registry:{MODEL}": "later", f"monitor:{MODEL}": "monitor"}


def test_kinds_are_separate_rows_and_a_wait_can_time_out_on_sqlite(database: Database) -> None:
    _check_kinds_and_timeouts(database)


@pytest.mark.postgres
def test_kinds_are_separate_rows_and_a_wait_can_time_out_on_postgres(postgres_url: str) -> None:
    database = Database(postgres_url)
    try:
        _check_kinds_and_timeouts(database)
    finally:
        database.dispose()
