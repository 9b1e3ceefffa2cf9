"""Fresh stores opened by several processes at once are created and migrated once (issue 13).

Each child imports everything first and then waits for one start signal, so they all
reach the empty store in the same instant, as processes started together by a shell do.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import traceback
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from boltit.core.db import Database
from boltit.core.settings import Settings

pytestmark = pytest.mark.e2e

PROCESSES = 4


def _open_project_database(url: str, go: Any, errors: Any) -> None:
    try:
        go.wait(60)
        Database(url).dispose()
    except BaseException:  # reported to the test, which shows it
        errors.put(traceback.format_exc())


def _open_mlflow_store(state_dir: str, tracking_uri: str | None, go: Any, errors: Any) -> None:
    try:
        from boltit.core.settings import load_settings
        from boltit.core.tracking import configure_mlflow

        settings = load_settings(state_dir=Path(state_dir), tracking_uri_override=tracking_uri)
        go.wait(60)
        client = configure_mlflow(settings)
        client.search_experiments()
        client.search_registered_models()
    except BaseException:  # reported to the test, which shows it
        errors.put(traceback.format_exc())


def _run_together(target: Any, *args: Any) -> list[str]:
    """Start PROCESSES copies of ``target(*args, go, errors)`` at once; their tracebacks."""
    context = multiprocessing.get_context("spawn")
    go, errors = context.Event(), context.Queue()
    children = [context.Process(target=target, args=(*args, go, errors)) for _ in range(PROCESSES)]
    for child in children:
        child.start()
    go.set()
    for child in children:
        child.join(180)
    assert [child.exitcode for child in children] == [0] * PROCESSES
    found = []
    while not errors.empty():
        found.append(errors.get())
    return found


def _project_revision(database: Database) -> list[str]:
    with database.engine.connect() as connection:
        return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())


def test_a_fresh_sqlite_project_database_is_migrated_once(settings: Settings) -> None:
    assert _run_together(_open_project_database, settings.database_url) == []
    database = Database(settings.database_url, migrate_schema=False)
    try:
        assert len(_project_revision(database)) == 1
    finally:
        database.dispose()


@pytest.mark.postgres
def test_a_fresh_postgres_project_database_is_migrated_once(postgres_url: str) -> None:
    assert _run_together(_open_project_database, postgres_url) == []
    database = Database(postgres_url, migrate_schema=False)
    try:
        assert len(_project_revision(database)) == 1
    finally:
        database.dispose()


@pytest.mark.slow  # processes racing to create MLflow's store: 14-55 s
def test_a_fresh_sqlite_mlflow_store_is_created_once(settings: Settings) -> None:
    assert _run_together(_open_mlflow_store, str(settings.state_dir), None) == []
    with sqlite3.connect(settings.state_dir / "mlflow.db") as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master")]
        revisions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    assert [t for t in tables if t.startswith("_alembic_tmp_")] == []
    assert len(revisions) == 1


@pytest.mark.postgres
@pytest.mark.slow  # processes racing to create MLflow's store: 21 s measured
def test_a_fresh_postgres_mlflow_store_is_created_once(
    settings: Settings, postgres_url: str
) -> None:
    assert _run_together(_open_mlflow_store, str(settings.state_dir), postgres_url) == []
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            revisions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
            leftovers = connection.execute(
                text("SELECT tablename FROM pg_tables WHERE tablename LIKE '\\_alembic\\_tmp\\_%'")
            ).all()
    finally:
        engine.dispose()
    assert len(revisions) == 1 and leftovers == []
