"""The core: settings, migrations on SQLite and PostgreSQL, flags and audit."""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import pytest
from sqlalchemy import inspect

from boltit.core import audit, flags
from boltit.core.db import Database
from boltit.core.settings import Settings, load_settings
from boltit.core.vocabulary import AUTO_APPLY_FLAG


def test_defaults_live_in_the_state_folder(settings: Settings) -> None:
    assert settings.model_name == "ticket-classifier"
    assert settings.auto_apply_threshold == 0.75
    assert settings.tracking_uri.startswith("sqlite:///")
    assert settings.tracking_uri.endswith("state/mlflow.db")
    assert settings.database_url.endswith("state/boltit.db")


def test_environment_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    monkeypatch.setenv("BOLTIT_DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("AUTO_APPLY_ENABLED", "false")
    monkeypatch.setenv("BOLTIT_AUTO_APPLY_THRESHOLD", "0.9")
    loaded = load_settings()
    assert loaded.tracking_uri == "http://127.0.0.1:5000"
    assert loaded.registry_uri == "http://127.0.0.1:5000"
    assert loaded.database_url == "postgresql+psycopg://u@h/db"
    assert loaded.auto_apply_enabled is False
    assert loaded.auto_apply_threshold == 0.9


def test_bad_threshold_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOLTIT_AUTO_APPLY_THRESHOLD", "1.5")
    with pytest.raises(ValueError, match="BOLTIT_AUTO_APPLY_THRESHOLD"):
        load_settings()


def _check_flags_and_audit(database: Database) -> None:
    tables = set(inspect(database.engine).get_table_names())
    assert {"tickets", "audit_events", "feature_flags", "incidents", "alembic_version"} <= tables
    flags.seed_flag(database, AUTO_APPLY_FLAG, value=True, actor="environment")
    flags.seed_flag(database, AUTO_APPLY_FLAG, value=False, actor="environment")  # no-op
    with database.session() as session:
        assert flags.read_flag(session, AUTO_APPLY_FLAG, default=False) is True
        assert flags.set_flag(session, AUTO_APPLY_FLAG, enabled=False, actor="alice") is True
    with database.session() as session:
        assert flags.read_flag(session, AUTO_APPLY_FLAG, default=True) is False
        events = audit.history(session)
    assert [e.action for e in events] == ["flag_seed", "flag_change"]
    assert events[-1].actor == "alice"
    assert events[-1].details == {"flag": AUTO_APPLY_FLAG, "from": True, "to": False}
    assert events[-1].at.tzinfo is not None


def test_schema_flags_and_audit_on_sqlite(database: Database) -> None:
    _check_flags_and_audit(database)


@pytest.mark.postgres
def test_schema_flags_and_audit_on_postgres(postgres_url: str) -> None:
    database = Database(postgres_url)
    try:
        _check_flags_and_audit(database)
    finally:
        database.dispose()


def _hold_write_lock(url: str, held: Any, release: Any) -> None:
    database = Database(url, migrate_schema=False)
    with database.write_lock():
        held.set()
        release.wait(30)


@pytest.mark.e2e
def test_sqlite_write_lock_excludes_other_processes(settings: Settings) -> None:
    url = settings.database_url
    Database(url).dispose()
    context = multiprocessing.get_context("spawn")
    held, release = context.Event(), context.Event()
    other = context.Process(target=_hold_write_lock, args=(url, held, release))
    other.start()
    try:
        assert held.wait(60), "the other process never took the lock"
        database = Database(url, migrate_schema=False)
        acquired = threading.Event()

        def take() -> None:
            with database.write_lock():
                acquired.set()

        taker = threading.Thread(target=take)
        taker.start()
        assert not acquired.wait(0.5)  # queued behind the other process
        release.set()
        assert acquired.wait(10)  # handed over once it lets go
        taker.join()
    finally:
        release.set()
        other.join(30)


def test_postgres_needs_no_write_lock(postgres_url: str) -> None:
    database = Database(postgres_url, migrate_schema=False)
    try:
        with database.write_lock(), database.write_lock():  # would deadlock if it were a lock
            pass
    finally:
        database.dispose()
