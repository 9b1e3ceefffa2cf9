"""A model-from-code test double: the real trained ticket classifier, except that it raises for
any ticket containing ``RAISE_MARKER`` (a version that loads and warms fine but fails on some
inputs). ``tests/serving/test_model_errors.py`` logs and registers it as a real MLflow version.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mlflow.models
from mlflow.pyfunc import PythonModel, PythonModelContext

from boltit.training.model import TicketClassifier

RAISE_MARKER = "zz-model-breaks-here"


class RaisingClassifier:
    """Delegates to a ``TicketClassifier``; raises on the marker, as a buggy model would."""

    def __init__(self, inner: TicketClassifier) -> None:
        self._inner = inner
        self.categories = inner.categories

    def predict_frame(self, texts: Sequence[str], *, probabilities: bool = False) -> Any:
        _check(texts)
        return self._inner.predict_frame(texts, probabilities=probabilities)

    def predict_one(self, text: str) -> dict[str, Any]:
        _check([text])
        return self._inner.predict_one(text)


def _check(texts: Sequence[str]) -> None:
    for text in texts:
        if RAISE_MARKER in text:
            raise ValueError(f"feature extraction failed on a ticket of {len(text)} characters")


class RaisingModel(PythonModel):
    classifier: RaisingClassifier

    def load_context(self, context: PythonModelContext) -> None:
        self.classifier = RaisingClassifier(
            TicketClassifier.load(Path(context.artifacts["classifier"]))
        )

    def predict(
        self,
        context: PythonModelContext | None,
        model_input: list[str],
        params: dict[str, Any] | None = None,
    ) -> Any:
        return self.classifier.predict_frame(list(model_input))


mlflow.models.set_model(RaisingModel())
