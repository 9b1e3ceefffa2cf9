"""A training run shows its search, its baselines and a calibrated model on any class mix."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from boltit.core.db import Database
from boltit.core.settings import Settings
from boltit.registry.gate_config import parse_gate_config
from boltit.registry.validate import validate
from boltit.training.baseline import BASELINE_COLUMN
from boltit.training.data import validate_frame
from boltit.training.model import ModelConfig
from boltit.training.selection import load_search_space
from boltit.training.shapes import skewed_teams
from boltit.training.train import (
    EVAL_SPLIT_ARTIFACT,
    SEARCH_ARTIFACT,
    TrainConfig,
    TrainRequest,
    train,
)


def test_a_run_on_64_skewed_classes_with_singletons_logs_search_and_baselines(
    settings: Settings,
    mlflow_client: MlflowClient,
    database: Database,
    recwarn: pytest.WarningsRecorder,
) -> None:
    frame = skewed_teams(2500, n_classes=64, singletons=3, seed=2)
    dataset = validate_frame(frame, source="generator:skewed-teams", name="skewed-teams")
    result = train(
        TrainRequest(
            dataset=dataset,
            config=TrainConfig(model=ModelConfig(seed=3), latency_samples=20),
            allow_failing_data=True,
        ),
        settings=settings,
        client=mlflow_client,
        database=database,
    )
    assert result.model_version == "1"
    sklearn_warnings = [
        w
        for w in recwarn
        if "sklearn" in (w.filename or "") or w.category.__module__.startswith("sklearn")
    ]
    assert sklearn_warnings == [], [str(w.message) for w in sklearn_warnings]

    metrics = result.metrics
    assert metrics["expected_calibration_error"] <= 0.05
    assert 0 < metrics["baseline_majority_accuracy"] < metrics["baseline_tfidf_svm_accuracy"]
    assert metrics["baseline_margin"] == pytest.approx(
        metrics["accuracy"] - metrics["baseline_tfidf_svm_accuracy"]
    )
    assert metrics["accuracy"] >= metrics["baseline_tfidf_svm_accuracy"] - 0.01

    run = mlflow_client.get_run(result.run_id)
    space = load_search_space()
    assert run.data.params["search_candidates"] == str(len(space.candidates))
    assert float(run.data.params["chosen_c"]) in {c.c for c in space.candidates}
    assert "cv_accuracy" in run.data.metrics
    assert "left out of calibration" in run.data.tags["calibration_note"]

    folder = Path(mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path=""))
    table = json.loads((folder / SEARCH_ARTIFACT).read_text(encoding="utf-8"))
    candidates = pd.DataFrame(table["data"], columns=table["columns"])
    assert len(candidates) == len(space.candidates)
    assert candidates["chosen"].sum() == 1
    # The logged choice is the candidate the table marks, and the best by CV accuracy.
    (chosen,) = candidates[candidates["chosen"]].itertuples()
    assert (run.data.params["chosen_class_weight"], float(run.data.params["chosen_c"])) == (
        chosen.class_weight,
        chosen.c,
    )
    # The best CV accuracy among the reference (the plain baseline's configuration) and
    # the candidates that beat it by more than min_gain_se standard errors.
    clear = candidates[
        candidates["reference"]
        | (candidates["gain_over_reference"] > space.min_gain_se * candidates["gain_se"])
    ]
    assert chosen.cv_accuracy == clear["cv_accuracy"].max()
    assert run.data.params["search_reference"] == space.reference.name
    logged = pd.read_parquet(folder / EVAL_SPLIT_ARTIFACT)
    # The baseline's per-row predictions travel with the run, for the beats_baseline gate.
    baseline_accuracy = (logged[BASELINE_COLUMN] == logged["category"]).mean()
    assert baseline_accuracy == pytest.approx(metrics["baseline_tfidf_svm_accuracy"])

    # Validation reads those predictions back and judges beats_baseline on the same rows.
    checked = validate(
        client=mlflow_client,
        database=database,
        name=settings.model_name,
        version="1",
        actor="test",
        settings=settings,
        min_accuracy=0.5,
        mark=False,
    )
    gate = next(r for r in checked.report.results if r.name == "beats_baseline")
    assert gate.observed == pytest.approx(-metrics["baseline_margin"])
    assert gate.passed is True
    assert gate.interval is not None

    # The singletons it kept (--allow-failing-data, no --min-class-rows) fail the
    # min_class_rows gate, which names them and the option that folds them.
    trained = json.loads((folder / "evaluation/label_distribution.json").read_text())["train"]
    rare = sorted(c for c, n in trained.items() if n < 2)
    assert rare
    rows_gate = next(r for r in checked.report.results if r.name == "min_class_rows")
    assert rows_gate.blocking and rows_gate.observed == 1.0
    assert all(repr(c) in rows_gate.note for c in rare)
    assert "--min-class-rows 2" in rows_gate.note
    relaxed = validate(
        client=mlflow_client,
        database=database,
        name=settings.model_name,
        version="1",
        actor="test",
        settings=settings,
        min_accuracy=0.5,
        config=parse_gate_config({"gates": {"min_class_rows": {"rows": 0}}}),
        mark=False,
    )
    off = next(r for r in relaxed.report.results if r.name == "min_class_rows")
    assert off.passed is True and "off" in off.note
