"""Training end to end against a real SQLite MLflow store: log, register, reload elsewhere."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from boltit.core.audit import history
from boltit.core.db import Database
from boltit.core.errors import GateFailedError
from boltit.core.settings import Settings
from boltit.core.tracking import configure_mlflow
from boltit.training.data import TicketDataset, from_generator, validate_frame
from boltit.training.generator import generate_tickets
from boltit.training.model import ModelConfig
from boltit.training.train import TrainConfig, TrainRequest, TrainResult, train
from tests.training.conftest import run_to_success, settings_under

FAST = TrainConfig(model=ModelConfig(seed=3), latency_samples=50)


@dataclass
class Trained:
    settings: Settings
    client: MlflowClient
    database: Database
    dataset: TicketDataset
    result: TrainResult


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """One registered version, trained once for every test of this module."""
    settings = settings_under(tmp_path_factory.mktemp("train") / "state")
    client = configure_mlflow(settings)
    database = Database(settings.database_url)
    dataset = from_generator(2000, seed=11)
    result = train(
        TrainRequest(dataset=dataset, config=FAST),
        settings=settings,
        client=client,
        database=database,
    )
    return Trained(settings, client, database, dataset, result)


def test_registers_a_described_tagged_version(trained: Trained) -> None:
    result = trained.result
    assert result.model_version == "1"
    assert result.model_uri == "models:/ticket-classifier/1"
    version = trained.client.get_model_version("ticket-classifier", "1")
    assert version.run_id == result.run_id
    assert version.tags["data_hash"] == trained.dataset.digest
    assert version.tags["rows"] == "2000"
    assert version.tags["source"] == "cli"
    assert len(version.tags["git_commit"]) >= 7
    assert "data_checks_overridden" not in version.tags
    assert version.description is not None
    assert f"accuracy {result.metrics['accuracy']:.4f}" in version.description
    assert "macro-F1" in version.description


def test_run_logs_metrics_params_and_lineage(trained: Trained) -> None:
    run = trained.client.get_run(trained.result.run_id)
    metrics = run.data.metrics
    for name in (
        "accuracy",
        "macro_f1",
        "log_loss",
        "expected_calibration_error",
        "auto_apply_coverage",
        "auto_apply_precision",
        "auto_apply_coverage_at_0_9",
        "auto_apply_precision_at_0_9",
        "fit_seconds",
        "predict_latency_p50_ms",
        "predict_latency_p95_ms",
        "predict_cpu_p95_ms",
        "data_checks_seconds",
        "recall_Hardware",
        "precision_Administrative_rights",
        "f1_HR_Support",
        "priority_accuracy",
    ):
        assert name in metrics, name
    assert 0.75 <= metrics["accuracy"] <= 0.99
    assert run.data.params["data_rows"] == "2000"
    assert run.data.params["priority_head"] == "True"
    assert run.data.tags["data_hash"] == trained.dataset.digest
    assert run.inputs is not None
    inputs = {}
    for dataset_input in run.inputs.dataset_inputs:
        tags = {t.key: t.value for t in dataset_input.tags}
        inputs[tags["mlflow.data.context"]] = tags
    assert set(inputs) == {"training", "evaluation"}
    assert inputs["training"]["given_data_hash"] == trained.dataset.digest
    assert inputs["evaluation"]["content_hash"] == trained.result.evaluation_digest


def test_run_logs_evaluation_artifacts(trained: Trained, tmp_path: Path) -> None:
    run_id = trained.result.run_id
    names = {a.path for a in trained.client.list_artifacts(run_id, "evaluation")}
    assert {
        "evaluation/confusion_matrix.png",
        "evaluation/classification_report.txt",
        "evaluation/label_distribution.json",
        "evaluation/eval_split.parquet",
    } <= names
    local = mlflow.artifacts.download_artifacts(
        run_id=run_id,
        artifact_path="evaluation/eval_split.parquet",
        dst_path=str(tmp_path),
        tracking_uri=trained.settings.tracking_uri,
    )
    split = pd.read_parquet(local)
    assert {"text", "category", "priority", "predicted_category", "confidence"} <= set(
        split.columns
    )
    assert len(split) == 400
    accuracy = (split["category"] == split["predicted_category"]).mean()
    assert accuracy == pytest.approx(trained.result.metrics["accuracy"])
    checks = mlflow.artifacts.load_dict(f"runs:/{run_id}/data_checks/training_data.json")
    assert checks["suite"] == "training_data"
    assert checks["success"] is True


def test_model_has_signature_and_input_example(trained: Trained) -> None:
    info = mlflow.models.get_model_info("models:/ticket-classifier/1")
    assert info.signature.inputs.input_names() == ["text"]
    assert info.signature.params.to_dict()[0]["name"] == "probabilities"
    assert info.saved_input_example_info is not None


def test_train_is_recorded_in_the_audit_history(trained: Trained) -> None:
    with trained.database.session() as session:
        (event,) = history(session, actions=["train"])
    assert event.to_version == "1"
    assert event.model_name == "ticket-classifier"
    assert event.details is not None
    assert event.details["run_id"] == trained.result.run_id


LOAD_SCRIPT = """
import json, sys
import mlflow.pyfunc
import pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
frame = pd.DataFrame({"text": ["my laptop screen is broken", "please reset my vpn password"]})
plain = model.predict(frame)
proba = model.predict(frame, params={"probabilities": True})
inner = model.unwrap_python_model().classifier
print(json.dumps({
    "columns": list(plain.columns),
    "categories": plain["category"].tolist(),
    "priorities": plain["priority"].tolist(),
    "proba_columns": [c for c in proba.columns if c.startswith("proba_")],
    "inner": type(inner).__name__,
    "one": inner.predict_one("my laptop screen is broken")["category"],
}))
"""


@pytest.mark.e2e
def test_version_loads_and_predicts_in_a_fresh_process(trained: Trained, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": trained.settings.tracking_uri,
        "MLFLOW_REGISTRY_URI": trained.settings.registry_uri,
    }
    command = [sys.executable, "-c", LOAD_SCRIPT, "models:/ticket-classifier/1"]
    completed = run_to_success(command, env=env, cwd=tmp_path, timeout=240)
    answer = json.loads(completed.stdout.strip().splitlines()[-1])
    assert answer["columns"] == ["category", "confidence", "priority"]
    assert answer["categories"] == ["Hardware", "Access"]
    assert all(p in {"P1", "P2", "P3", "P4"} for p in answer["priorities"])
    assert len(answer["proba_columns"]) == 8
    assert answer["inner"] == "TicketClassifier"
    assert answer["one"] == "Hardware"


def _duplicated(rows: int, *, with_priority: bool) -> TicketDataset:
    # Every ticket twice: the training_data suite's duplicate-rate check fails.
    frame = generate_tickets(rows, seed=4)
    if not with_priority:
        frame = frame.drop(columns=["priority"])
    return validate_frame(pd.concat([frame, frame], ignore_index=True), source="dup", name="dup")


def test_failing_data_is_refused_and_nothing_is_written(
    settings: Settings, mlflow_client: MlflowClient
) -> None:
    with pytest.raises(GateFailedError, match="duplicate_rate") as exc:
        train(
            TrainRequest(dataset=_duplicated(600, with_priority=True)),
            settings=settings,
            client=mlflow_client,
        )
    assert "--allow-failing-data" in str(exc.value)
    assert mlflow_client.search_registered_models() == []
    experiment = mlflow_client.get_experiment_by_name(settings.experiment_name)
    if experiment is not None:
        assert mlflow_client.search_runs([experiment.experiment_id]) == []


def test_override_trains_without_priority_and_is_recorded(
    settings: Settings, mlflow_client: MlflowClient
) -> None:
    result = train(
        TrainRequest(
            dataset=_duplicated(800, with_priority=False),
            config=FAST,
            source="test",
            allow_failing_data=True,
        ),
        settings=settings,
        client=mlflow_client,
    )
    assert result.data_checks_passed is False
    assert result.model_version is not None
    version = mlflow_client.get_model_version(settings.model_name, result.model_version)
    assert version.tags["data_checks_overridden"] == "true"
    assert version.tags["source"] == "test"
    run = mlflow_client.get_run(result.run_id)
    assert run.data.tags["data_checks_overridden"] == "true"
    assert "priority_accuracy" not in run.data.metrics
    model = mlflow.pyfunc.load_model(result.model_uri)
    predicted = model.predict(pd.DataFrame({"text": ["the shared drive is full"]}))
    assert predicted["priority"].isna().all()
