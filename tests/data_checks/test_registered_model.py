"""Drift and prediction-log checks against a really trained and registered model version."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from boltit.core.db import Database
from boltit.core.settings import Settings
from boltit.data_checks.drift import Verdict, detect_drift, vocabulary_from_model
from tests.data_checks.conftest import CliResult, store_tickets
from tests.data_checks.test_drift import NEW_WORDS, _shifted

Cli = Callable[..., CliResult]


@pytest.fixture
def registered(settings: Settings, mlflow_client: MlflowClient) -> tuple[str, str]:
    """(run id, version) of a small model trained on generated tickets."""
    from boltit.training.data import from_generator
    from boltit.training.train import TrainRequest, train

    result = train(
        TrainRequest(dataset=from_generator(1500, seed=61)), settings=settings, client=mlflow_client
    )
    assert result.model_version is not None
    return result.run_id, result.model_version


def test_registered_version_vocabulary_run_split_and_categories(
    registered: tuple[str, str],
    settings: Settings,
    run_cli: Cli,
    database: Database,
    tmp_path: Path,
    good_tickets: pd.DataFrame,
) -> None:
    # One test, because training the version is the expensive part.
    run_id, version = registered
    vocabulary = vocabulary_from_model(f"models:/{settings.model_name}/{version}")
    baseline, current = good_tickets.iloc[::2], good_tickets.iloc[1::2]

    calm = detect_drift(baseline, current, vocabulary=vocabulary)
    shifted = detect_drift(baseline, _shifted(current, new=150), vocabulary=vocabulary)

    assert "laptop" in vocabulary.words and not set(NEW_WORDS) & vocabulary.words
    assert calm.signal("vocabulary").verdict is Verdict.OK
    assert shifted.signal("vocabulary").verdict is Verdict.CRITICAL
    assert shifted.vocabulary_source == f"vectorizer of models:/{settings.model_name}/{version}"

    shifted_csv = tmp_path / "shifted.csv"
    _shifted(good_tickets, new=200).to_csv(shifted_csv, index=False)

    drift = run_cli(
        "drift",
        "--baseline-run",
        run_id,
        "--current-data",
        str(shifted_csv),
        "--model-version",
        version,
    )
    assert drift.exit_code == 1, drift.output + drift.error
    assert "vocabulary" in drift.error

    now = datetime.now(UTC)
    log = good_tickets.head(100).assign(confidence=0.8)
    store_tickets(
        database,
        log,
        model_version=version,
        start=now - timedelta(hours=3),
        spacing=timedelta(minutes=1),
    )
    known = run_cli("check-data", "--from-store", "--days", "1", "--suite", "prediction_log")
    assert known.exit_code == 0, known.output + known.error

    store_tickets(
        database,
        log.head(1).assign(category="Security"),
        model_version=version,
        start=now - timedelta(minutes=5),
        prefix="new",
    )
    unknown = run_cli("check-data", "--from-store", "--days", "1", "--suite", "prediction_log")
    assert unknown.exit_code == 1
    assert f"{version}, Security" in unknown.output
