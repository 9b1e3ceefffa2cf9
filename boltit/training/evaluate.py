"""A training run's evaluation metrics; no MLflow, no files except the PNG.

Every figure the gates also read (accuracy, macro-F1, per-category recall, ECE, auto-apply
coverage and precision) comes from ``boltit.core.evaluation``, so the run and the gate report
the same number. Metric names are MLflow-safe (``recall_Administrative_rights``) so the
registry gates and dashboards can refer to them.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix, log_loss

from boltit.core.evaluation import (
    accuracy,
    auto_apply,
    category_scores,
    correct_predictions,
    expected_calibration_error,
    macro_f1,
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
    correct = correct_predictions(truth, predicted)
    confidence = np.asarray(proba, dtype=float).max(axis=1)
    # Macro- and weighted-F1 over the true categories, as the gates compute them.
    overall = category_scores(truth, predicted)

    metrics: dict[str, float] = {
        "accuracy": accuracy(truth, predicted),
        "macro_f1": overall.macro_f1,
        "weighted_f1": overall.weighted_f1,
        "expected_calibration_error": expected_calibration_error(
            confidence=confidence, correct=correct
        ),
        "mean_confidence": float(confidence.mean()) if confidence.size else 0.0,
        "eval_rows": float(len(truth)),
    }
    known = np.isin(truth, labels)
    if known.any():
        metrics["log_loss"] = float(log_loss(truth[known], np.asarray(proba)[known], labels=labels))
    scores = category_scores(truth, predicted, labels)
    for i, label in enumerate(labels):
        name = metric_name(label)
        metrics[f"precision_{name}"] = float(scores.precision[i])
        metrics[f"recall_{name}"] = float(scores.recall[i])
        metrics[f"f1_{name}"] = float(scores.f1[i])
    for threshold in dict.fromkeys([auto_apply_threshold, *extra_thresholds]):
        figures = auto_apply(confidence=confidence, correct=correct, threshold=threshold)
        suffixes = [f"_{threshold_suffix(threshold)}"]
        if threshold == auto_apply_threshold:
            suffixes.append("")
        for suffix in suffixes:
            metrics[f"auto_apply_coverage{suffix}"] = figures.coverage
            # No ticket reaches the threshold: no precision metric, as the gate reads None.
            if figures.precision is not None:
                metrics[f"auto_apply_precision{suffix}"] = figures.precision

    report = classification_report(truth, predicted, labels=labels, digits=4, zero_division=0)
    distribution = {label: int(count) for label, count in zip(labels, scores.support, strict=True)}
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
    truth_known = truth[known].astype(str)
    predicted_known = predicted[known].astype(str)
    return {
        "priority_accuracy": accuracy(truth_known, predicted_known),
        "priority_macro_f1": macro_f1(truth_known, predicted_known),
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
        path.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            # Labels in scripts the bundled font lacks (CJK, say) draw as boxes in this
            # picture only; the model and its metrics are unaffected, so the user is not warned.
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")
            figure.tight_layout()
            figure.savefig(path, dpi=100)
    finally:
        plt.close(figure)
    return path
