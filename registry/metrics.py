"""What the gates look at, computed from one model's predictions on the held-out tickets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, recall_score


@dataclass(frozen=True)
class ModelEvaluation:
    """One version's scores on the shared evaluation tickets."""

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def expected_calibration_error(
    correct: np.ndarray, confidence: np.ndarray, *, bins: int = 10
) -> float:
    """Weighted gap between confidence and accuracy over equal-width confidence bins."""
    if len(correct) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Confidence 1.0 belongs to the last bin, not past it.
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


def score_predictions(
    *,
    version: str,
    true_categories: Sequence[str],
    predicted_categories: Sequence[str],
    confidence: Sequence[float],
    auto_apply_threshold: float,
    latencies_ms: Sequence[float],
    size_bytes: int,
) -> ModelEvaluation:
    """Accuracy, macro-F1, per-category recall, ECE, auto-apply precision, p95 latency."""
    y_true = np.asarray(true_categories, dtype=object)
    y_pred = np.asarray(predicted_categories, dtype=object)
    conf = np.asarray(confidence, dtype=float)
    if len(y_true) == 0 or len(y_true) != len(y_pred) or len(y_pred) != len(conf):
        raise ValueError("predictions, confidences and true categories must be non-empty and align")
    labels = sorted(set(y_true.tolist()))
    recalls = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    correct = (y_true == y_pred).astype(float)
    applied = conf >= auto_apply_threshold
    return ModelEvaluation(
        version=str(version),
        rows=len(y_true),
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_f1=float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        recall_by_category={label: float(r) for label, r in zip(labels, recalls, strict=True)},
        ece=expected_calibration_error(correct, conf),
        auto_apply_threshold=auto_apply_threshold,
        auto_apply_precision=float(correct[applied].mean()) if applied.any() else None,
        auto_apply_coverage=float(applied.mean()),
        latency_p95_ms=float(np.percentile(latencies_ms, 95)) if len(latencies_ms) else 0.0,
        size_bytes=int(size_bytes),
    )
