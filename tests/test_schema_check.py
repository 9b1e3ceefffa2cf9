"""The project database's schema check is paid once: an open at head runs no Alembic."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from boltit.core.db import MIGRATIONS_DIR, Database, create_db_engine, head_revision
from boltit.core.settings import Settings


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _stored_revisions(database: Database) -> list[str]:
    with database.engine.connect() as connection:
        return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())


def test_head_revision_is_alembics_own() -> None:
    assert head_revision() == ScriptDirectory.from_config(_alembic_config()).get_current_head()


def test_an_older_database_is_still_migrated(settings: Settings) -> None:
    engine = create_db_engine(settings.database_url)
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
    engine.dispose()

    database = Database(settings.database_url)

    assert _stored_revisions(database) == [head_revision()]
    database.dispose()


def _opened_in_child(url: str) -> dict[str, object]:
    code = (
        "import json, sys\n"
        "from boltit.core.db import Database\n"
        f"database = Database({url!r})\n"
        "with database.session() as session: pass\n"
        "print(json.dumps({'alembic': 'alembic' in sys.modules}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    found: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.e2e
def test_a_database_at_head_opens_without_alembic(settings: Settings) -> None:
    url = settings.database_url
    assert _opened_in_child(url) == {"alembic": True}  # a fresh database: migrated
    assert _opened_in_child(url) == {"alembic": False}  # at head: one query, no Alembic


@pytest.mark.e2e
@pytest.mark.postgres
def test_a_postgres_database_at_head_opens_without_alembic(postgres_url: str) -> None:
    assert _opened_in_child(postgres_url) == {"alembic": True}
    assert _opened_in_child(postgres_url) == {"alembic": False}
