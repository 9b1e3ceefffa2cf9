"""The hot path: a loaded ticket classifier called directly, without pyfunc overhead."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from boltit.core.model_contract import ModelContractError, TicketClassifierLike, load_classifier

WARM_UP_TICKETS = (
    "my laptop does not turn on after the update",
    "please give me access to the finance shared drive",
    "payroll shows the wrong amount this month",
)


# A batch is predicted in slices of about this many characters. Each slice's vectorising
# and sparse algebra are single C calls that hold the GIL; on a whole 256 x 20,000-character
# batch those run for hundreds of milliseconds in which the event loop cannot answer even
# /ready. Rows are independent, so slicing changes no answer.
PREDICT_SLICE_CHARS = 100_000


class ModelLoadError(Exception):
    """A model version that cannot be loaded or does not answer like a ticket classifier."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """One ticket's answer."""

    category: str
    confidence: float
    priority: str | None


class Predictor:
    """Calls the unwrapped classifier; one text or many, same answers."""

    def __init__(self, classifier: TicketClassifierLike) -> None:
        self._classifier = classifier
        # TicketClassifier.predict_one skips pandas and scipy for a single ticket.
        self._predict_one = getattr(classifier, "predict_one", None)

    @property
    def categories(self) -> frozenset[str]:
        """The categories this model can answer (what feedback may name without being new)."""
        return frozenset(str(c) for c in getattr(self._classifier, "categories", ()) or ())

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Predict categories, confidences and priorities for ``texts``, in order."""
        if len(texts) == 1 and self._predict_one is not None:
            answer = self._predict_one(texts[0])
            priority = answer.get("priority")
            return [
                Prediction(
                    category=str(answer["category"]),
                    confidence=float(answer["confidence"]),
                    priority=None if priority is None else str(priority),
                )
            ]
        categories: list[Any] = []
        confidences: list[Any] = []
        priorities: list[Any] = []
        for piece in _slices(texts):
            frame = self._classifier.predict_frame(piece)
            categories += frame["category"].tolist()
            confidences += frame["confidence"].tolist()
            priorities += (
                frame["priority"].tolist() if "priority" in frame.columns else [None] * len(piece)
            )
        return [
            Prediction(
                category=str(category),
                confidence=float(confidence),
                priority=None if priority is None or priority != priority else str(priority),
            )
            for category, confidence, priority in zip(
                categories, confidences, priorities, strict=True
            )
        ]

    def probabilities(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Each text's probability per category; for the review page, never the hot path."""
        if not texts:
            return []
        frame = self._classifier.predict_frame(list(texts), probabilities=True)
        columns = [c for c in frame.columns if str(c).startswith("proba_")]
        return [
            {str(c).removeprefix("proba_"): float(row[c]) for c in columns}
            for _, row in frame[columns].iterrows()
        ]

    def warm(self) -> None:
        """Answer a few tickets so the first real request pays no first-call costs.

        Raises:
            ModelLoadError: the model cannot classify the warm-up tickets.
        """
        try:
            answers = self.predict(WARM_UP_TICKETS)
            single = self.predict(WARM_UP_TICKETS[:1])
        except Exception as exc:
            raise ModelLoadError(f"warm-up prediction failed: {exc}") from exc
        if len(answers) != len(WARM_UP_TICKETS) or len(single) != 1:
            raise ModelLoadError("warm-up returned the wrong number of predictions")
        if single[0].category != answers[0].category:
            raise ModelLoadError("single-ticket and batch predictions disagree")
        for answer in answers:
            if not 0.0 <= answer.confidence <= 1.0:
                raise ModelLoadError(f"warm-up confidence {answer.confidence} is not in [0, 1]")


def _slices(texts: Sequence[str]) -> list[list[str]]:
    """Consecutive runs of ``texts`` of at most ``PREDICT_SLICE_CHARS`` (one text at least)."""
    slices: list[list[str]] = [[]]
    size = 0
    for text in texts:
        if slices[-1] and size + len(text) > PREDICT_SLICE_CHARS:
            slices.append([])
            size = 0
        slices[-1].append(text)
        size += len(text)
    return slices


def load_predictor(model_uri: str) -> Predictor:
    """Load a registered version and unwrap its classifier; warmed before it is returned.

    Raises:
        ModelLoadError: the artifact is missing or broken, or it is not a ticket classifier.
    """
    try:
        classifier = load_classifier(model_uri)
    except ModelContractError as exc:
        raise ModelLoadError(str(exc)) from exc
    predictor = Predictor(classifier)
    predictor.warm()
    return predictor
