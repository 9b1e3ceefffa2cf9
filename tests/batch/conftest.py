"""Batch-scoring fixtures: the registry suite's trained pair, tickets on disk, the CLI.

The registry's template store (v1 trained on generated tickets, v2 on the same kind of
tickets with permuted categories) is trained once per run and shared with the registry
suite under xdist (same ``built_once`` name); each test scores from its own copy.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from boltit.core.settings import Settings
from boltit.training.generator import generate_tickets
from tests.console_script import Boltit, point_cli_at, run_boltit
from tests.once import built_once
from tests.registry.conftest import TrainedVersions, _train_template, copy_of_store

GOOD, BAD = "1", "2"


@pytest.fixture(scope="session")
def trained_versions(tmp_path_factory: pytest.TempPathFactory) -> TrainedVersions:
    """v1 (good) and v2 (permuted labels), trained once per run (tests/once.py)."""
    return built_once(tmp_path_factory, "registry-template", _train_template)


@pytest.fixture
def scoring_client(settings: Settings, trained_versions: TrainedVersions) -> MlflowClient:
    """This test's copy of the trained store; Production is v1, challenger v2."""
    client = copy_of_store(settings, trained_versions.mlflow_db)
    client.set_registered_model_alias(settings.model_name, "Production", trained_versions.good)
    client.set_registered_model_alias(settings.model_name, "challenger", trained_versions.bad)
    return client


@pytest.fixture
def boltit(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Boltit:
    """``boltit ARGS`` in this process against this test's stores: (exit code, out, err)."""
    point_cli_at(settings, monkeypatch)
    monkeypatch.delenv("SPARK_MASTER", raising=False)
    return partial(run_boltit, monkeypatch, capsys)


def labelled_tickets(rows: int, *, seed: int) -> pd.DataFrame:
    """Generated tickets with an ``id`` column (``t<n>``) and their true ``category``."""
    frame = generate_tickets(rows, seed=seed)
    frame.insert(0, "id", [f"t{n}" for n in range(rows)])
    return frame


@pytest.fixture
def tickets_csv(tmp_path: Path) -> Path:
    """1,200 labelled tickets as CSV (id, text, category, priority, created_at)."""
    path = tmp_path / "tickets.csv"
    labelled_tickets(1200, seed=11).to_csv(path, index=False)
    return path
