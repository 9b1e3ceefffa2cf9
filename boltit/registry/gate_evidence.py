"""What the gates look at, computed from one model's predictions on the held-out tickets.

Every figure comes from ``boltit.core.evaluation`` (the numbers a training run logs). The
per-row truth and predictions are kept too, so the drop gates can compare candidate and
champion row by row (a paired test); they stay in memory, never in tags or reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from boltit.core.errors import BadInputError
from boltit.core.evaluation import (
    auto_apply,
    category_scores,
    correct_predictions,
    expected_calibration_error,
)

# Per-row arrays: for the paired comparison only, too large for a report.
_ROW_FIELDS = ("truth", "predicted")


@dataclass(frozen=True)
class ModelEvaluation:
    """One version's scores on the shared evaluation tickets.

    ``truth`` and ``predicted`` are the per-row categories behind the scores (empty when
    only the figures are known); ``latency_p95_ms`` is 0 when nothing was timed.
    """

    version: str
    rows: int
    accuracy: float
    macro_f1: float
    recall_by_category: dict[str, float]
    ece: float
    auto_apply_threshold: float
    auto_apply_precision: float | None
    auto_apply_coverage: float
    latency_p95_ms: float
    size_bytes: int
    extra: dict[str, Any] = field(default_factory=dict)
    truth: np.ndarray = field(
        default_factory=lambda: np.array([], dtype=object), repr=False, compare=False
    )
    predicted: np.ndarray = field(
        default_factory=lambda: np.array([], dtype=object), repr=False, compare=False
    )

    @property
    def has_rows(self) -> bool:
        """True when the per-row predictions are known (a paired comparison is possible)."""
        return len(self.truth) == self.rows > 0 and len(self.predicted) == self.rows

    def to_dict(self) -> dict[str, Any]:
        """The figures, without the per-row arrays."""
        return {
            f.name: dict(value) if isinstance(value, dict) else value
            for f in fields(self)
            if f.name not in _ROW_FIELDS
            for value in [getattr(self, f.name)]
        }

    def with_latency(self, latency_p95_ms: float) -> ModelEvaluation:
        """A copy with the p95 single-prediction latency measured elsewhere."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["latency_p95_ms"] = float(latency_p95_ms)
        return type(self)(**values)


def score_predictions(
    *,
    version: str,
    true_categories: Sequence[str],
    predicted_categories: Sequence[str],
    confidence: Sequence[float],
    auto_apply_threshold: float,
    latencies_ms: Sequence[float] = (),
    size_bytes: int,
) -> ModelEvaluation:
    """Accuracy, macro-F1, per-category recall, ECE, auto-apply figures, p95 latency."""
    y_true = np.asarray(true_categories, dtype=object).astype(str)
    y_pred = np.asarray(predicted_categories, dtype=object).astype(str)
    conf = np.asarray(confidence, dtype=float)
    if len(y_true) == 0 or len(y_true) != len(y_pred) or len(y_pred) != len(conf):
        raise BadInputError(
            "predictions, confidences and true categories must be non-empty and align "
            f"(got {len(y_true)} true, {len(y_pred)} predicted, {len(conf)} confidences)"
        )
    correct = correct_predictions(y_true, y_pred)
    scores = category_scores(y_true, y_pred)
    applied = auto_apply(confidence=conf, correct=correct, threshold=auto_apply_threshold)
    return ModelEvaluation(
        version=str(version),
        rows=len(y_true),
        accuracy=float(correct.mean()),
        macro_f1=scores.macro_f1,
        recall_by_category=scores.recall_by_category(),
        ece=expected_calibration_error(confidence=conf, correct=correct),
        auto_apply_threshold=auto_apply_threshold,
        auto_apply_precision=applied.precision,
        auto_apply_coverage=applied.coverage,
        latency_p95_ms=float(np.percentile(latencies_ms, 95)) if len(latencies_ms) else 0.0,
        size_bytes=int(size_bytes),
        truth=y_true,
        predicted=y_pred,
    )
