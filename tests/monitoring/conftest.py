"""Registered model versions trained once per session and copied into each test's stores."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient

from boltit.core.db import Database
from boltit.core.settings import Settings, load_settings
from boltit.core.tracking import configure_mlflow
from tests.once import built_once


@dataclass(frozen=True)
class TrainedState:
    """A state folder holding v1 (good), v2 (trained on mostly wrong labels) and v3 (good)."""

    state_dir: Path
    accuracy: dict[str, float]


TRAINING_ROWS = 1600
# A clean pilot: few vague tickets, so the good versions validate well above the runbook's 0.90.
AMBIGUITY = 0.05


@pytest.fixture(scope="session")
def trained_state(tmp_path_factory: pytest.TempPathFactory) -> TrainedState:
    """Trained once per run (shared by xdist workers: tests/once.py)."""
    return built_once(tmp_path_factory, "monitoring-versions", _train_versions)


def _train_versions(folder: Path) -> TrainedState:
    from boltit.training.data import TicketDataset
    from boltit.training.generator import generate_tickets
    from boltit.training.train import TrainConfig, TrainRequest, train

    state_dir = folder / "state"
    settings = load_settings(
        state_dir=state_dir,
        tracking_uri_override=None,
        registry_uri_override=None,
        database_url_override=None,
    )
    client = configure_mlflow(settings)
    database = Database(settings.database_url)
    accuracy: dict[str, float] = {}
    try:
        for seed, noise in ((1, 0.0), (2, 0.9), (3, 0.0)):
            frame = generate_tickets(
                TRAINING_ROWS, seed=seed, label_noise=noise, ambiguity=AMBIGUITY
            )
            result = train(
                TrainRequest(
                    dataset=TicketDataset(frame, source=f"generator:seed={seed}", name="generated"),
                    config=TrainConfig(latency_samples=20),
                    allow_failing_data=True,
                    actor="test",
                ),
                settings=settings,
                client=client,
                database=database,
            )
            assert result.model_version is not None
            accuracy[result.model_version] = result.metrics["accuracy"]
    finally:
        database.dispose()
    assert list(accuracy) == ["1", "2", "3"]
    # The scenarios need two good versions and one clearly worse one.
    assert accuracy["1"] > 0.92 and accuracy["3"] > 0.92 and accuracy["2"] < 0.6, accuracy
    return TrainedState(state_dir=state_dir, accuracy=accuracy)


def _copy_sqlite(source: Path, target: Path) -> None:
    # The backup API copies a consistent database even with a WAL beside it.
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


@pytest.fixture
def trained(
    trained_state: TrainedState, settings: Settings
) -> Iterator[tuple[Settings, MlflowClient, Database, TrainedState]]:
    """This test's own registry and project database, starting from the trained versions.

    Artifacts stay in the session's folder (they are only read).
    """
    for name in ("mlflow.db", "boltit.db"):
        _copy_sqlite(trained_state.state_dir / name, settings.state_dir / name)
    client = configure_mlflow(settings)
    database = Database(settings.database_url)
    yield settings, client, database, trained_state
    database.dispose()


def force_promote(
    settings: Settings,
    client: MlflowClient,
    database: Database,
    version: str,
    *,
    reason: str | None = None,
) -> None:
    """Put ``version`` in Production as a human would, gates or not (``--force``)."""
    from boltit.registry.promote import promote

    promote(
        client=client,
        database=database,
        name=settings.model_name,
        version=version,
        actor="alice",
        reason=reason or f"test promotes v{version}",
        force=True,
        settings=settings,
    )
