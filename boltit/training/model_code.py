"""The MLflow pyfunc around ``TicketClassifier``, logged as a model from code.

MLflow runs this file when the model loads, so the wrapper is never pickled; the fitted
scikit-learn parts arrive as skops artifacts. ``pyfunc.unwrap_python_model().classifier``
is the plain ``TicketClassifier`` (the serving layer's fast path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.models
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from boltit.training.model import TicketClassifier

# The artifact (a folder written by ``TicketClassifier.save``) ``train`` logs with the model.
ARTIFACT_KEY = "classifier"


class TicketClassifierModel(PythonModel):
    """Input: a DataFrame with ``text``. Output: ``category``, ``confidence``, ``priority``.

    ``params={"probabilities": True}`` adds one ``proba_<category>`` column per category.
    """

    classifier: TicketClassifier

    def load_context(self, context: PythonModelContext) -> None:
        self.classifier = TicketClassifier.load(Path(context.artifacts[ARTIFACT_KEY]))

    def predict(
        self,
        context: PythonModelContext | None,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Classify tickets; see the class docstring for input and output."""
        probabilities = bool((params or {}).get("probabilities", False))
        return self.classifier.predict_frame(ticket_texts(model_input), probabilities=probabilities)


def ticket_texts(model_input: Any) -> list[str]:
    """The ticket texts of a pyfunc input: a DataFrame with ``text``, a dict or a list."""
    if isinstance(model_input, pd.DataFrame):
        if "text" not in model_input.columns:
            raise ValueError(
                "input needs a 'text' column; got columns "
                + ", ".join(repr(str(c)) for c in model_input.columns)
            )
        column = model_input["text"]
    elif isinstance(model_input, dict) and "text" in model_input:
        column = pd.Series(model_input["text"])
    elif isinstance(model_input, (list, tuple, pd.Series)):
        column = pd.Series(list(model_input))
    else:
        raise ValueError("input must be a DataFrame with a 'text' column")
    if column.isna().any():
        raise ValueError("every ticket needs a text; got a missing value")
    return [str(t) for t in column]


mlflow.models.set_model(TicketClassifierModel())
