"""Fixtures shared by every suite: real local stores, never mocks of MLflow or the database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import Pool

from boltit.core.db import Database
from boltit.core.ports import free_port
from boltit.core.settings import Settings, load_settings
from boltit.core.tracking import configure_mlflow
from tests.kinds import KindGuard, kind_of, mark_kinds

REAL_DATA = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "it_service_tickets.csv"
)
POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
# Each test is one kind (unit, integration, e2e): tests/kinds.py; running each: tests/README.md.
_guard = KindGuard()


def pytest_configure(config: pytest.Config) -> None:
    _guard.install()
    # Every connection SQLAlchemy opens, from any engine: a PostgreSQL one needs the marker.
    event.listen(Pool, "connect", _note_postgres)


_reached_postgres: list[bool] = []


def _note_postgres(dbapi_connection: object, _record: object) -> None:
    if type(dbapi_connection).__module__.startswith("psycopg"):
        _reached_postgres.append(True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark by what a test uses, so no marker is forgotten: `postgres` for every test that
    reaches PostgreSQL, `s3` for every test on moto, and exactly one kind for every test."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if "postgres_url" in used:
            item.add_marker(pytest.mark.postgres)
        if "moto_endpoint" in used:
            item.add_marker(pytest.mark.s3)
    mark_kinds(items)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _guard.start(kind_of(item))
    _reached_postgres.clear()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    # After the fixtures' own teardown, so what they did counts too.
    seen = _guard.stop()
    if _reached_postgres and not item.get_closest_marker("postgres"):
        # `-m "not postgres"` must deselect every test that needs the server.
        seen.append("connected to PostgreSQL: use the postgres_url fixture or mark it postgres")
    _reached_postgres.clear()
    if seen:
        pytest.fail(f"{item.nodeid} is {kind_of(item)} but " + "; ".join(dict.fromkeys(seen)))


@pytest.fixture(autouse=True)
def _isolated_mlflow_uris(monkeypatch: pytest.MonkeyPatch) -> None:
    """mlflow.set_tracking_uri/set_registry_uri write os.environ; undo that after every test."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)


# Settings a developer's shell may carry that would point tests at the wrong stores.
PROJECT_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "BOLTIT_DATABASE_URL",
    "BOLTIT_ADMIN_TOKEN",
    "BOLTIT_CLIENTS_FILE",  # tests write clients; never into a developer's real file
    "AUTO_APPLY_ENABLED",
    "BOLTIT_MODEL_NAME",
)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose every store lives under this test's tmp_path."""
    for name in PROJECT_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env or mlruns from the developer's folder
    return load_settings(state_dir=tmp_path / "state")


@pytest.fixture
def mlflow_client(settings: Settings) -> MlflowClient:
    """A client on a real SQLite MLflow store in tmp_path."""
    return configure_mlflow(settings)


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    """The project database (SQLite under tmp_path), migrated."""
    db = Database(settings.database_url)
    yield db
    db.dispose()


def _postgres_reachable() -> str | None:
    try:
        engine = create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure means: skip, with the reason
        return f"PostgreSQL not reachable on 127.0.0.1:5432 ({type(exc).__name__}: {exc})"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database of this test's own, dropped afterwards."""
    reason = _postgres_reachable()
    if reason:
        pytest.skip(reason)
    name = f"boltit_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto in server mode, reached over real HTTP on loopback."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def real_data_path() -> Path:
    """The shared real dataset; tests that need it skip where it is absent."""
    if not REAL_DATA.is_file():
        pytest.skip(f"real dataset not found at {REAL_DATA} (it lives in ../shared, not the repo)")
    return REAL_DATA
