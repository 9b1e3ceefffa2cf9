"""Engine, sessions and schema migrations for the project database."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from filelock import FileLock
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from boltit.core.errors import BoltitError
from boltit.core.settings import normalise_database_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL and a busy timeout so replicas can share the file."""
    url = normalise_database_url(url)
    if url.startswith("sqlite"):
        _ensure_sqlite_folder(url)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _ensure_sqlite_folder(url: str) -> None:
    path = _sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def _sqlite_file(url: str) -> Path | None:
    if not url.startswith("sqlite") or "///" not in url:  # ``sqlite://`` is in memory
        return None
    path = url.split("///", 1)[-1].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


# One advisory-lock key for creating or migrating any store of the project on PostgreSQL
# (advisory locks are scoped to one database, so stores in other databases do not share it).
_INITIALISATION_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"boltit store initialisation").digest()[:8], "big", signed=True
)


def initialisation_lock(url: str) -> AbstractContextManager[None]:
    """Exclusive lock for creating or migrating the database at ``url``, across processes.

    The first process to open a fresh store migrates it while the others wait here, then
    find it migrated: migrations run side by side break the store (issue 13). A file lock
    beside a SQLite file, an advisory lock on PostgreSQL, nothing for other databases and
    in-memory SQLite.
    """
    url = normalise_database_url(url)
    path = _sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        return _file_lock(path.with_name(f"{path.name}.init-lock"))
    if url.startswith("postgresql"):
        return _advisory_lock(url)
    return nullcontext()


@contextmanager
def _advisory_lock(url: str) -> Iterator[None]:
    # A connection of its own, closed afterwards: closing releases the lock even when the
    # unlock is never reached.
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            key = {"key": _INITIALISATION_LOCK_KEY}
            connection.execute(text("SELECT pg_advisory_lock(:key)"), key)
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
    finally:
        engine.dispose()


# Waiting writers retry this often: ticket commits queue on the write lock, so the time between
# one writer's release and the next one's try adds to every queued commit.
_WRITE_LOCK_POLL_SECONDS = 0.001


@contextmanager
def _file_lock(
    path: Path, *, timeout: float | None = None, poll_seconds: float = 0.05
) -> Iterator[None]:
    # A lock object per acquisition: the OS lock belongs to the open file, so threads of one
    # process sharing one object would not exclude each other.
    lock = FileLock(
        path, timeout=-1 if timeout is None else timeout, mode=0o600, poll_interval=poll_seconds
    )
    with lock:
        yield


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def head_revision() -> str:
    """The newest migration's revision, read from the scripts without importing Alembic.

    Every migration file sets ``revision`` and ``down_revision``; the head is the revision
    no other script revises (tests/test_schema_check.py checks it against Alembic's own).
    """
    return _head_revision(MIGRATIONS_DIR / "versions")


@functools.cache
def _head_revision(folder: Path) -> str:
    revisions: set[str] = set()
    revised: set[str] = set()
    for script in folder.glob("*.py"):
        source = script.read_text(encoding="utf-8")
        found = re.search(r"^revision\s*(?::[^=]+)?=\s*[\"']([^\"']+)[\"']", source, re.M)
        if found is None:
            continue
        revisions.add(found.group(1))
        down = re.search(r"^down_revision\s*(?::[^=]+)?=\s*[\"']([^\"']+)[\"']", source, re.M)
        if down is not None:
            revised.add(down.group(1))
    heads = revisions - revised
    if len(heads) != 1:
        raise BoltitError(f"migrations in {folder} have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def schema_is_current(engine: Engine) -> bool:
    """True when the database already stands at the newest revision (one small query).

    Every open used to run Alembic's upgrade, which costs an Alembic import and a script
    scan even when there is nothing to do; that check is now paid once, by the first open.
    """
    try:
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except (OperationalError, ProgrammingError):  # a fresh database: no version table yet
        return False
    return [row[0] for row in stored] == [head_revision()]


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision, one process at a time."""
    if schema_is_current(engine):
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        with (
            initialisation_lock(engine.url.render_as_string(hide_password=False)),
            engine.begin() as connection,
        ):
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise BoltitError(
            f"cannot reach the project database {engine.url.render_as_string()}: {exc.orig}"
        ) from exc


class Database:
    """The project database: one engine, a session factory, migrated on open."""

    def __init__(self, url: str, *, migrate_schema: bool = True, **engine_kwargs: Any) -> None:
        self.engine = create_db_engine(url, **engine_kwargs)
        self._sqlite_file = _sqlite_file(self.engine.url.render_as_string())
        self._write_lock_path = self._lock_path("write")  # taken on every ticket commit
        if migrate_schema:
            migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A session for frequent writes: queued behind other writers, then as ``session()``."""
        with self.write_lock(), self.session() as session:
            yield session

    def write_lock(self) -> AbstractContextManager[None]:
        """Queue this writer behind other writers (threads or processes) on a SQLite file.

        SQLite's busy handler retries a locked database with sleeps of up to 100 ms, which
        is where two replicas sharing one file lose their tail latency; this file lock is
        retried every millisecond, so the next writer starts within a millisecond of the
        other's commit.
        Not reentrant. PostgreSQL needs nothing here.
        """
        if self._write_lock_path is None:
            return nullcontext()
        return _file_lock(self._write_lock_path, poll_seconds=_WRITE_LOCK_POLL_SECONDS)

    def file_lock(self, name: str, *, timeout: float | None = None) -> AbstractContextManager[None]:
        """An exclusive lock called ``name`` beside a SQLite file, across threads and processes.

        Not reentrant. A no-op for PostgreSQL and in-memory SQLite, which need other means.

        Raises:
            filelock.Timeout: ``timeout`` seconds passed before the lock was free.
        """
        path = self._lock_path(name)
        return nullcontext() if path is None else _file_lock(path, timeout=timeout)

    def _lock_path(self, name: str) -> Path | None:
        if self._sqlite_file is None:
            return None
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        return self._sqlite_file.with_name(f"{self._sqlite_file.name}.{safe}-lock")

    @property
    def has_file_locks(self) -> bool:
        """True when ``file_lock`` really locks (a SQLite file)."""
        return self._sqlite_file is not None

    @property
    def write_lock_path(self) -> Path | None:
        """The file ``write_lock`` flocks (None without one), for a writer that keeps it open."""
        return self._write_lock_path

    @property
    def is_sqlite(self) -> bool:
        """True for a SQLite database (file or memory)."""
        return self.engine.dialect.name == "sqlite"

    def checkpoint(self) -> None:
        """Copy SQLite's write-ahead log into the database file without blocking writers.

        Writers that turn off automatic checkpoints (``PRAGMA wal_autocheckpoint=0``) call
        this from a background thread instead; it does nothing on other databases.
        """
        if not self.is_sqlite:
            return
        with self.engine.connect() as connection:
            # The bulk of the copy runs beside the writers; the few frames they append
            # meanwhile are copied with writers held back, so the log is copied to its end
            # and the next write starts it again from the beginning instead of growing it.
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            with self.write_lock():
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def dispose(self) -> None:
        self.engine.dispose()
