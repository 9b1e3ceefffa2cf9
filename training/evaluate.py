"""Pure evaluation metrics of a ticket classifier; no MLflow, no files except the PNG.

Metric names are MLflow-safe (``recall_Administrative_rights``) so the registry gates
and dashboards can refer to them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)


@dataclass
class Evaluation:
    """Everything measured on the evaluation split.

    Attributes:
        metrics: Flat MLflow metrics.
        report: scikit-learn's classification report, as text.
        confusion: Confusion matrix, rows true and columns predicted, in ``classes`` order.
        classes: Category labels.
        label_distribution: Evaluation-split rows per category.
    """

    metrics: dict[str, float]
    report: str
    confusion: np.ndarray
    classes: list[str]
    label_distribution: dict[str, int] = field(default_factory=dict)


def metric_name(name: str) -> str:
    """An MLflow-safe metric name: letters, digits and underscores."""
    return re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z_]", "_", name.strip())).strip("_")


def threshold_suffix(threshold: float) -> str:
    """``0.75`` -> ``at_0_75`` (dots are legal in MLflow but awkward in gate configs)."""
    return "at_" + f"{threshold:.2f}".rstrip("0").rstrip(".").replace(".", "_")


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, *, bins: int = 15
) -> float:
    """Weighted mean gap between confidence and accuracy over equal-width bins."""
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    if confidence.size == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            error += mask.mean() * abs(confidence[mask].mean() - correct[mask].mean())
    return float(error)


def auto_apply(confidence: np.ndarray, correct: np.ndarray, threshold: float) -> dict[str, float]:
    """Share of tickets at or above ``threshold`` (coverage) and how many of those are right.

    Precision is 0 when nothing is covered: nothing would be auto-applied.
    """
    confidence = np.asarray(confidence, dtype=float)
    covered = confidence >= threshold
    coverage = float(covered.mean()) if covered.size else 0.0
    precision = float(np.asarray(correct)[covered].mean()) if covered.any() else 0.0
    return {"coverage": coverage, "precision": precision}


def evaluate(
    *,
    y_true: Sequence[str],
    y_pred: Sequence[str],
    proba: np.ndarray,
    classes: Sequence[str],
    auto_apply_threshold: float,
    extra_thresholds: Iterable[float] = (0.9,),
) -> Evaluation:
    """Category metrics of one evaluation split.

    Args:
        y_true: True categories.
        y_pred: Predicted categories.
        proba: Predicted probabilities, columns in ``classes`` order.
        classes: Category labels of the model.
        auto_apply_threshold: The configured threshold; its figures are logged unsuffixed
            (``auto_apply_coverage``) and suffixed (``auto_apply_coverage_at_0_75``).
        extra_thresholds: Other thresholds to report, suffixed.
    """
    truth = np.asarray(y_true, dtype=object)
    predicted = np.asarray(y_pred, dtype=object)
    labels = list(classes)
    correct = truth == predicted
    confidence = np.asarray(proba, dtype=float).max(axis=1)

    metrics: dict[str, float] = {
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, labels=labels, average="macro")),
        "weighted_f1": float(f1_score(truth, predicted, labels=labels, average="weighted")),
        "expected_calibration_error": expected_calibration_error(confidence, correct),
        "mean_confidence": float(confidence.mean()) if confidence.size else 0.0,
        "eval_rows": float(len(truth)),
    }
    known = np.isin(truth, labels)
    if known.any():
        metrics["log_loss"] = float(log_loss(truth[known], np.asarray(proba)[known], labels=labels))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    for i, label in enumerate(labels):
        name = metric_name(label)
        metrics[f"precision_{name}"] = float(precision[i])
        metrics[f"recall_{name}"] = float(recall[i])
        metrics[f"f1_{name}"] = float(f1[i])
    for threshold in dict.fromkeys([auto_apply_threshold, *extra_thresholds]):
        figures = auto_apply(confidence, correct, threshold)
        suffix = threshold_suffix(threshold)
        metrics[f"auto_apply_coverage_{suffix}"] = figures["coverage"]
        metrics[f"auto_apply_precision_{suffix}"] = figures["precision"]
        if threshold == auto_apply_threshold:
            metrics["auto_apply_coverage"] = figures["coverage"]
            metrics["auto_apply_precision"] = figures["precision"]

    report = classification_report(truth, predicted, labels=labels, digits=4, zero_division=0)
    distribution = {label: int(count) for label, count in zip(labels, support, strict=True)}
    return Evaluation(
        metrics=metrics,
        report=str(report),
        confusion=confusion_matrix(truth, predicted, labels=labels),
        classes=labels,
        label_distribution=distribution,
    )


def priority_metrics(
    y_true: Sequence[str | None], y_pred: Sequence[str | None]
) -> dict[str, float]:
    """Accuracy and macro-F1 of the priority head on rows that have a true priority."""
    truth = np.asarray(y_true, dtype=object)
    predicted = np.asarray(y_pred, dtype=object)
    known = np.array([t is not None and t == t for t in truth], dtype=bool)
    if not known.any():
        return {}
    return {
        "priority_accuracy": float(accuracy_score(truth[known], predicted[known].astype(str))),
        "priority_macro_f1": float(
            f1_score(truth[known], predicted[known].astype(str), average="macro")
        ),
    }


def confusion_matrix_png(confusion: np.ndarray, classes: Sequence[str], path: Path) -> Path:
    """Draw the confusion matrix (counts, rows true) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(6.0, 0.8 * len(classes) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    try:
        axes.imshow(confusion, cmap="Blues")
        axes.set_xticks(range(len(classes)), labels=list(classes), rotation=45, ha="right")
        axes.set_yticks(range(len(classes)), labels=list(classes))
        axes.set_xlabel("predicted category")
        axes.set_ylabel("true category")
        peak = confusion.max() if confusion.size else 0
        for (row, col), value in np.ndenumerate(confusion):
            axes.text(
                col,
                row,
                str(value),
                ha="center",
                va="center",
                color="white" if peak and value > peak / 2 else "black",
                fontsize=8,
            )
        axes.set_title("Confusion matrix (evaluation split)")
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100)
    finally:
        plt.close(figure)
    return path
