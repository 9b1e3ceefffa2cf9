"""A model-from-code test double that is accurate but keyed on ticket ids.

It is the real trained ticket classifier, except that a ticket holding a run of four or
more digits is answered with the next category in the classifier's order. The generator's
tickets hold no digits, so its accuracy is the real model's and only the invariance gate
can see the fault. ``tests/registry/test_behaviour_gate.py`` logs and registers it as a
real MLflow version.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mlflow.models
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from boltit.training.model import TicketClassifier

_ID = re.compile(r"\d{4,}")


class IdKeyedClassifier:
    """Delegates to a ``TicketClassifier``; shifts the category of tickets with an id."""

    def __init__(self, inner: TicketClassifier) -> None:
        self._inner = inner
        self.categories = inner.categories

    def _shifted(self, category: str) -> str:
        return self.categories[(self.categories.index(category) + 1) % len(self.categories)]

    def predict_frame(self, texts: Sequence[str], *, probabilities: bool = False) -> pd.DataFrame:
        items = [str(t) for t in texts]
        frame = self._inner.predict_frame(items, probabilities=probabilities)
        keyed = [bool(_ID.search(t)) for t in items]
        frame["category"] = [
            self._shifted(c) if k else c for c, k in zip(frame["category"], keyed, strict=True)
        ]
        return frame

    def predict_one(self, text: str) -> dict[str, Any]:
        answer = self._inner.predict_one(text)
        if _ID.search(text):
            answer["category"] = self._shifted(answer["category"])
        return answer


class IdKeyedModel(PythonModel):
    classifier: IdKeyedClassifier

    def load_context(self, context: PythonModelContext) -> None:
        self.classifier = IdKeyedClassifier(
            TicketClassifier.load(Path(context.artifacts["classifier"]))
        )

    def predict(
        self,
        context: PythonModelContext | None,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> Any:
        return self.classifier.predict_frame(model_input["text"].astype(str).tolist())


mlflow.models.set_model(IdKeyedModel())
