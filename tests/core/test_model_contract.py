"""``boltit.core.model_contract``: the ``/model/version`` shape and unwrapping a classifier."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow import MlflowClient
from pydantic import ValidationError

from boltit.core.model_contract import (
    EVAL_SPLIT_ARTIFACT,
    EvalSplitMissingError,
    EvalSplitUnreadableError,
    ModelNotLoadableError,
    NotATicketClassifierError,
    ServedVersion,
    load_classifier,
    read_eval_split,
)
from boltit.serving.follower import LoadedModel
from boltit.serving.predictor import ModelLoadError, Predictor, load_predictor


class EchoModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """A real pyfunc that is not a ticket classifier (it has no ``classifier``)."""

    def predict(self, context: Any, model_input: list[str], params: Any = None) -> list[str]:
        return model_input


def test_served_version_is_the_model_version_answer() -> None:
    loaded = LoadedModel(
        name="ticket-classifier",
        version="7",
        alias="Production",
        run_id=None,
        loaded_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        predictor=Predictor(classifier=object()),  # type: ignore[arg-type]
    )

    answer = ServedVersion.model_validate(loaded).model_dump(mode="json")

    assert answer == {
        "name": "ticket-classifier",
        "version": "7",
        "alias": "Production",
        "run_id": None,
        "loaded_at": "2026-12-01T09:30:00Z",
    }
    assert ServedVersion.model_validate(answer).version == "7"  # how a caller reads it back


def test_another_shape_is_refused_not_guessed() -> None:
    with pytest.raises(ValidationError):
        ServedVersion.model_validate({"model_version": "7"})


def test_a_missing_model_is_not_loadable(tmp_path: Path) -> None:
    with pytest.raises(ModelNotLoadableError, match="cannot load"):
        load_classifier(str(tmp_path / "nothing-here"))


def test_a_pyfunc_without_a_classifier_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "echo"
    # Given requirements, MLflow starts no pip process to infer them.
    mlflow.pyfunc.save_model(str(folder), python_model=EchoModel(), pip_requirements=["mlflow"])

    with pytest.raises(NotATicketClassifierError, match="not a BoltIT ticket classifier"):
        load_classifier(str(folder))
    # Serving refuses the same model for the same reason.
    with pytest.raises(ModelLoadError, match="not a BoltIT ticket classifier"):
        load_predictor(str(folder))


def test_the_eval_split_is_read_back_or_refused_with_why(
    mlflow_client: MlflowClient, tmp_path: Path
) -> None:
    split = pd.DataFrame({"text": ["vpn locked"], "category": ["Access"]})
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    split.to_parquet(tmp_path / "good" / Path(EVAL_SPLIT_ARTIFACT).name)
    (tmp_path / "bad" / Path(EVAL_SPLIT_ARTIFACT).name).write_bytes(b"PAR1 not parquet")
    folder = str(Path(EVAL_SPLIT_ARTIFACT).parent)
    runs = {}
    for name in ("good", "bad", "none"):
        with mlflow.start_run() as run:
            if name != "none":
                mlflow.log_artifacts(str(tmp_path / name), folder)
        runs[name] = run.info.run_id

    pd.testing.assert_frame_equal(read_eval_split(mlflow_client, runs["good"]), split)
    with pytest.raises(EvalSplitUnreadableError, match="cannot read"):
        read_eval_split(mlflow_client, runs["bad"])
    with pytest.raises(EvalSplitMissingError, match="has no logged"):
        read_eval_split(mlflow_client, runs["none"])
