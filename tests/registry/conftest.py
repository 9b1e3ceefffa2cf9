"""Registry fixtures: one good and one shuffled-label version, trained once per session.

Training is the slow part, so a template MLflow store is trained once and each test
gets its own copy of the store's database (artifacts stay in the template folder, which
the copies only read from, apart from uniquely named validation reports).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from boltit.core.db import Database
from boltit.core.settings import Settings, load_settings
from boltit.core.tracking import configure_mlflow
from tests.conftest import PROJECT_ENV
from tests.console_script import Boltit, run_boltit
from tests.once import built_once
from tests.postgres import throwaway_database

# The generator's tickets are hard on purpose (a good small model scores ~0.8), so tests
# set limits that a real model passes and a shuffled-label one (~1/8 accuracy) fails.
GATES_FOR_TESTS = """\
gates:
  min_accuracy: {threshold: 0.6}
  max_ece: {max: 0.25}
  auto_apply_precision: {min: 0.75}
  # Timer noise on a shared 2-core machine must not decide a test.
  latency_p95: {mode: dry_run}
latency_samples: 10
"""
ENV_TO_CLEAR = (
    *PROJECT_ENV,
    "BOLTIT_ARTIFACT_BUCKET",
    "BOLTIT_ARTIFACT_ROOT",
    "BOLTIT_GATES_CONFIG",
    "MLFLOW_S3_ENDPOINT_URL",
)


@dataclass(frozen=True)
class TrainedVersions:
    """Where the template store lives and what it holds."""

    mlflow_db: Path
    good: str  # v1: trained on generated tickets
    bad: str  # v2: the same kind of tickets with the category column permuted


def shuffled_tickets(rows: int, *, seed: int) -> pd.DataFrame:
    """Generated tickets whose categories are permuted: a model that learns nothing."""
    from boltit.training.generator import generate_tickets

    frame = generate_tickets(rows, seed=seed)
    frame["category"] = np.random.default_rng(seed).permutation(frame["category"].to_numpy())
    return frame


def train_pair(settings: Settings, client: MlflowClient, *, rows: int = 1500) -> tuple[str, str]:
    """Train the good v1 and the shuffled-label v2 into the configured store."""
    from boltit.training.data import from_generator, validate_frame
    from boltit.training.train import TrainConfig, TrainRequest, train

    config = TrainConfig(latency_samples=20)
    good = train(
        TrainRequest(dataset=from_generator(rows, seed=1), config=config),
        settings=settings,
        client=client,
    )
    bad = train(
        TrainRequest(
            dataset=validate_frame(
                shuffled_tickets(rows, seed=2), source="shuffled", name="shuffled"
            ),
            config=config,
            allow_failing_data=True,
        ),
        settings=settings,
        client=client,
    )
    assert good.model_version and bad.model_version
    return good.model_version, bad.model_version


def write_test_gates(folder: Path) -> Path:
    path = folder / "gates.yaml"
    path.write_text(GATES_FOR_TESTS)
    return path


@contextmanager
def template_store(folder: Path) -> Iterator[tuple[Settings, MlflowClient]]:
    """Settings and a client on a store in ``folder``, away from the developer's shell."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ENV_TO_CLEAR:
            patch.delenv(name, raising=False)
        patch.chdir(folder)
        settings = load_settings(state_dir=folder / "state")
        yield settings, configure_mlflow(settings)


def copy_of_store(settings: Settings, template_db: Path) -> MlflowClient:
    """A client on a copy of a trained template store's database, in ``settings``' state."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template_db, settings.state_dir / "mlflow.db")
    return configure_mlflow(settings)


def _train_template(folder: Path) -> TrainedVersions:
    with template_store(folder) as (settings, client):
        good, bad = train_pair(settings, client)
    return TrainedVersions(mlflow_db=folder / "state" / "mlflow.db", good=good, bad=bad)


@pytest.fixture(scope="session")
def trained_versions(tmp_path_factory: pytest.TempPathFactory) -> TrainedVersions:
    """The template store, trained once per run (shared by xdist workers: tests/once.py)."""
    return built_once(tmp_path_factory, "registry-template", _train_template)


@pytest.fixture
def registry_settings(settings: Settings, tmp_path: Path) -> Settings:
    """Test settings plus the test gate config (latency gate in dry run)."""
    return settings.model_copy(update={"gates_config": write_test_gates(tmp_path)})


@pytest.fixture
def trained_client(registry_settings: Settings, trained_versions: TrainedVersions) -> MlflowClient:
    """A client on this test's own copy of the trained template store."""
    return copy_of_store(registry_settings, trained_versions.mlflow_db)


@pytest.fixture
def registry_db(database: Database) -> Database:
    """The project database (the registry settings differ only in their gate config)."""
    return database


@pytest.fixture
def target(
    registry_settings: Settings, trained_client: MlflowClient, registry_db: Database
) -> dict[str, Any]:
    """What every registry call of a test names: this test's stores, model and settings."""
    return {
        "client": trained_client,
        "database": registry_db,
        "name": registry_settings.model_name,
        "settings": registry_settings,
    }


@pytest.fixture
def broken(target: dict[str, Any], trained_versions: TrainedVersions, tmp_path: Path) -> str:
    """A registered version of the good run whose model folder is empty: it cannot load."""
    client, name = target["client"], target["name"]
    run_id = client.get_model_version(name, trained_versions.good).run_id
    empty = tmp_path / "deleted-model"
    empty.mkdir()
    return str(client.create_model_version(name, empty.as_uri(), run_id).version)


def serve_in_turn(target: dict[str, Any], *versions: str, reason: str = "setup") -> None:
    """Force each version into Production in turn: the history a test starts from."""
    from boltit.registry.promote import promote

    for version in versions:
        promote(**target, version=version, actor="alice", force=True, reason=reason)


def serve_validated(target: dict[str, Any], version: str) -> None:
    """The ordinary way into Production: ``version`` passes its gates, then is promoted."""
    from boltit.registry.promote import promote
    from boltit.registry.validate import validate

    result = validate(**target, version=version, actor="alice")
    assert result.passed, [r.describe() for r in result.failures]
    promote(**target, version=version, actor="alice")


def clone_version(client: MlflowClient, *, name: str, version: str) -> str:
    """Register the same model again as a new version (a loadable twin)."""
    mv = client.get_model_version(name, version)
    return str(client.create_model_version(name, mv.source, mv.run_id).version)


@pytest.fixture
def second_postgres_url(postgres_url: str) -> Iterator[str]:
    """Another throwaway PostgreSQL database beside ``postgres_url`` (MLflow and the
    project each keep an ``alembic_version`` table, so they need separate databases)."""
    from tests.conftest import POSTGRES_ADMIN_URL

    with throwaway_database(POSTGRES_ADMIN_URL) as url:
        yield url


@pytest.fixture
def boltit(
    registry_settings: Settings,
    trained_client: MlflowClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Boltit:
    """Run ``boltit ARGS`` in-process against this test's stores: (exit code, out, err)."""
    monkeypatch.setenv("BOLTIT_STATE_DIR", str(registry_settings.state_dir))
    monkeypatch.setenv("BOLTIT_GATES_CONFIG", str(registry_settings.gates_config))
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return partial(run_boltit, monkeypatch, capsys)
