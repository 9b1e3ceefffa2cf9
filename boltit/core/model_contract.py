"""What every stage agrees on about a registered ticket model.

Training logs a model and its artifacts, the registry scores and gates it, serving loads
and answers with it, data checks and monitoring read it back. They meet only through the
MLflow store and serving's HTTP answer, so the names and shapes they meet on live here:

- the artifact paths a training run logs and later stages read,
- how a ticket classifier is taken out of a logged pyfunc,
- the ``/model/version`` answer (``ServedVersion``), written by serving and read by
  monitoring when it checks that a rollback is being served.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

EVAL_SPLIT_ARTIFACT = "evaluation/eval_split.parquet"
"""The training run's held-out split (text, category, predictions): a drift baseline and
the fallback evaluation data of ``validate``."""
PREDICTED_CATEGORY_COLUMN = "predicted_category"
"""Eval-split column: the model's answer for the row (drift compares it with stored predictions)."""
BASELINE_COLUMN = "baseline_category"
"""Eval-split column: the reference baseline's answer for the row (a gate's yardstick)."""
EVALUATION_SET_ARTIFACT = "evaluation_set/evaluation_set.parquet"
"""A revision of a registered model's evaluation set, logged by the run that made it."""
ROW_DIGESTS_ARTIFACT = "training/row_digests.parquet"
"""The digests of the rows a run trained on (``boltit.core.evaluation_sets.row_digest``)."""


class TicketClassifierLike(Protocol):
    """What every stage needs from ``boltit.training.model.TicketClassifier``."""

    def predict_frame(self, texts: Sequence[str], *, probabilities: bool = False) -> Any: ...


class ModelContractError(Exception):
    """A logged model that does not keep the contract; the message says which part."""


class ModelNotLoadableError(ModelContractError):
    """MLflow cannot load the model (missing or broken artifacts, wrong flavour)."""


class NotATicketClassifierError(ModelContractError):
    """The model loads, but holds no ticket classifier to unwrap."""


class EvalSplitMissingError(ModelContractError):
    """The run does not exist or logged no evaluation split (runs from before it was logged)."""


class EvalSplitUnreadableError(ModelContractError):
    """The run's evaluation split is there but cannot be downloaded or read."""


def read_eval_split(client: MlflowClient, run_id: str) -> pd.DataFrame:
    """The held-out split a training run logged (``EVAL_SPLIT_ARTIFACT``).

    Raises:
        EvalSplitMissingError: no such run, or it logged no split.
        EvalSplitUnreadableError: the file cannot be downloaded or is not Parquet.
    """
    import pandas as pd
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="boltit-eval-split-") as folder:
        try:
            local = client.download_artifacts(run_id, EVAL_SPLIT_ARTIFACT, folder)
        except MlflowException as exc:
            raise EvalSplitMissingError(
                f"run {run_id} has no logged {EVAL_SPLIT_ARTIFACT} ({exc.message})"
            ) from exc
        except OSError as exc:
            raise EvalSplitUnreadableError(
                f"cannot download {EVAL_SPLIT_ARTIFACT} of run {run_id}: {exc}"
            ) from exc
        try:
            return pd.read_parquet(local)
        except Exception as exc:  # pyarrow raises many types for a damaged file
            raise EvalSplitUnreadableError(
                f"cannot read {EVAL_SPLIT_ARTIFACT} of run {run_id}: {exc}"
            ) from exc


def classifier_of(pyfunc_model: Any, *, model_uri: str) -> TicketClassifierLike:
    """The ticket classifier inside a loaded pyfunc (the model-from-code's ``classifier``).

    Every stage calls it directly: the pyfunc wrapper's ``predict`` converts frames on each
    call, which the serving hot path and a scoring run over thousands of rows cannot afford.

    Raises:
        NotATicketClassifierError: no ``classifier``, or one without ``predict_frame``.
    """
    try:
        classifier = pyfunc_model.unwrap_python_model().classifier
    except Exception as exc:  # any python model, or a non-python flavour, may be logged
        raise NotATicketClassifierError(
            f"{model_uri} is not a BoltIT ticket classifier (no unwrapped classifier): {exc}"
        ) from exc
    if not callable(getattr(classifier, "predict_frame", None)):
        raise NotATicketClassifierError(f"{model_uri} classifier has no predict_frame")
    return classifier  # type: ignore[no-any-return]


def load_classifier(model_uri: str) -> TicketClassifierLike:
    """Load ``model_uri`` (``models:/name/3``, ``runs:/...``, a local folder) and unwrap it.

    Raises:
        ModelNotLoadableError: MLflow cannot load it.
        NotATicketClassifierError: it loads but is not a ticket classifier.
    """
    import mlflow.pyfunc  # mlflow's import is slow; only callers that load a model pay it

    try:
        pyfunc_model = mlflow.pyfunc.load_model(model_uri)
    except Exception as exc:  # MLflow raises many types for a bad URI or artifact
        raise ModelNotLoadableError(f"cannot load {model_uri}: {exc}") from exc
    return classifier_of(pyfunc_model, model_uri=model_uri)


class ServedVersion(BaseModel):
    """The version a serving replica answers with: the ``/model/version`` body.

    Built from serving's loaded model (attributes of the same names) and parsed back by
    whoever asks a replica what it serves (``ServedVersion.model_validate(response.json())``).
    """

    model_config = ConfigDict(from_attributes=True)

    name: str
    version: str
    alias: str
    run_id: str | None
    loaded_at: datetime
