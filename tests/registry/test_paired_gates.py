"""Honest drop and latency gates end to end: real training runs, a real MLflow store,
``boltit.registry.validate.validate`` on one evaluation set that no version trained on.

- v1: the champion, trained on generated tickets.
- v2: an equal-quality retrain (other tickets, same generator): passes the drop gates.
- v3: trained on the same tickets with 30% of the labels wrong: truly worse, fails them,
  and the verdict prints the interval.
- Ten validations of identical models pass ten times beside a CPU-burning process.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from boltit.core.db import Database
from boltit.core.evaluation_sets import row_digests
from boltit.core.settings import Settings
from boltit.core.vocabulary import TAG_VALIDATION_STATUS, VALIDATION_PASSED
from boltit.registry.validate import ValidationResult, validate
from tests.registry.conftest import clone_version, copy_of_store, template_store

NAME = "ticket-classifier"
TRAIN_ROWS = 1500
# The generator's tickets are hard (a good small model scores ~0.85): absolute limits
# a real model passes. The latency gate stays enabled with its packaged defaults.
GATES = """\
gates:
  min_accuracy: {threshold: 0.6}
  max_ece: {max: 0.25}
  auto_apply_precision: {min: 0.75}
"""
DROP_GATES = ("accuracy_drop", "macro_f1_drop", "category_recall_drop")


@dataclass(frozen=True)
class Versions:
    mlflow_db: Path
    champion: str
    retrain: str
    noisy: str
    evaluation: pd.DataFrame


def _evaluation_set(training: list[pd.DataFrame]) -> pd.DataFrame:
    """2,500 generated tickets, minus any text a version trained on (by row digest)."""
    from boltit.training.generator import generate_tickets

    frame = generate_tickets(2600, seed=99)[["text", "category"]]
    seen = {d for f in training for d in row_digests(f["text"])}
    keep = [d not in seen for d in row_digests(frame["text"])]
    return frame[keep].head(2500).reset_index(drop=True)


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Versions]:
    from boltit.training.data import validate_frame
    from boltit.training.generator import generate_tickets
    from boltit.training.train import TrainConfig, TrainRequest, train

    folder = tmp_path_factory.mktemp("paired-gates")
    clean = generate_tickets(TRAIN_ROWS, seed=1)
    # The first run holds out 20% as the model's evaluation set; later runs fit on all the
    # rows they get, so they get as many as v1 fitted on: only the labels differ.
    fitted_rows = int(TRAIN_ROWS * 0.8)
    other = generate_tickets(fitted_rows, seed=3)
    noisy = generate_tickets(fitted_rows, seed=1, label_noise=0.3)
    with template_store(folder) as (settings, client):
        config = TrainConfig(latency_samples=10)
        trained = [
            train(
                TrainRequest(
                    dataset=validate_frame(frame, source=source, name=source),
                    config=config,
                    allow_failing_data=True,
                ),
                settings=settings,
                client=client,
            ).model_version
            for frame, source in ((clean, "clean"), (other, "retrain"), (noisy, "noisy"))
        ]
    champion, retrain, worse = (str(v) for v in trained)
    yield Versions(
        mlflow_db=folder / "state" / "mlflow.db",
        champion=champion,
        retrain=retrain,
        noisy=worse,
        evaluation=_evaluation_set([clean, other, noisy]),
    )


@pytest.fixture
def gate_settings(settings: Settings, tmp_path: Path) -> Settings:
    path = tmp_path / "gates.yaml"
    path.write_text(GATES)
    return settings.model_copy(update={"gates_config": path})


@pytest.fixture
def client(gate_settings: Settings, versions: Versions) -> MlflowClient:
    """This test's own copy of the trained store."""
    return copy_of_store(gate_settings, versions.mlflow_db)


@pytest.fixture
def against_champion(
    client: MlflowClient, database: Database, gate_settings: Settings, versions: Versions
) -> Callable[[str], ValidationResult]:
    """Validate a version against v1 on the evaluation set no version trained on."""

    def run(candidate: str) -> ValidationResult:
        return validate(
            client=client,
            database=database,
            name=NAME,
            version=candidate,
            actor="test",
            data=versions.evaluation,
            settings=gate_settings,
            champion_version=versions.champion,
        )

    return run


def test_a_version_trained_on_noisy_labels_fails_the_drop_gates_with_its_interval(
    against_champion: Callable[[str], ValidationResult], client: MlflowClient, versions: Versions
) -> None:
    result = against_champion(versions.noisy)
    assert result.champion is not None
    # Both scored on the same 2,500 rows, which neither trained on.
    assert result.candidate.rows == result.champion.rows == len(versions.evaluation) == 2500
    results = {r.name: r for r in result.report.results}
    accuracy = results["accuracy_drop"]
    assert accuracy.passed is False, accuracy.describe()
    assert accuracy.interval is not None and accuracy.interval[0] > 0
    assert accuracy.observed == pytest.approx(result.champion.accuracy - result.candidate.accuracy)
    line = accuracy.describe()
    print("\n".join(r.describe() for r in result.report.results))  # shown with -s
    assert "[95% CI " in line and "limit: fails when > 0.01 and CI excludes 0" in line
    assert not result.passed
    version = client.get_model_version(NAME, versions.noisy)
    assert version.tags[TAG_VALIDATION_STATUS] == "failed"
    assert version.tags["gate.accuracy_drop"].startswith("failed")
    # The report artifact keeps the interval of every drop gate.
    (recorded,) = [r for r in result.report.to_dict()["results"] if r["name"] == "accuracy_drop"]
    assert tuple(recorded["interval"]) == accuracy.interval


def test_an_equal_quality_retrain_passes_the_drop_gates(
    against_champion: Callable[[str], ValidationResult], versions: Versions
) -> None:
    result = against_champion(versions.retrain)
    results = {r.name: r for r in result.report.results}
    print("\n".join(r.describe() for r in result.report.results))  # shown with -s
    for name in DROP_GATES:
        assert results[name].passed is True, results[name].describe()
        assert results[name].interval is not None
    assert result.passed, [r.describe() for r in result.failures]


@pytest.mark.slow
@pytest.mark.e2e
def test_ten_validations_of_the_same_model_pass_beside_a_cpu_burner(
    against_champion: Callable[[str], ValidationResult], client: MlflowClient, versions: Versions
) -> None:
    twin = clone_version(client, name=NAME, version=versions.champion)
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        verdicts = []
        for _ in range(10):
            result = against_champion(twin)
            latency = next(r for r in result.report.results if r.name == "latency_p95")
            verdicts.append((result.passed, latency.describe(), result.failures))
    finally:
        burner.kill()
        burner.wait(timeout=10)
    assert [passed for passed, _, _ in verdicts] == [True] * 10, verdicts
    assert client.get_model_version(NAME, twin).tags[TAG_VALIDATION_STATUS] == VALIDATION_PASSED
