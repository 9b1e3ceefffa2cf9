"""Classification figures with one definition each: what training logs, the gates read,
serving's ``/metrics`` exposes and the monitor alerts on are the same numbers.

numpy only (plus the ticket store for live accuracy), so the core imports light: no
scikit-learn here.

Conventions, fixed once:

- Per-category figures, macro-F1 and weighted-F1 are taken over ``labels``; by default the
  categories present in the truth, so a category nobody filed cannot drag macro-F1 down.
  A category with no predictions (or no true rows) scores 0, never NaN.
- Expected calibration error uses ``ECE_BINS`` equal-width confidence bins; arguments are
  keyword-only so the order cannot be swapped.
- Auto-apply precision is ``None`` when no ticket reaches the threshold: nothing would be
  auto-applied, so there is no precision to report (0.0 would read as "always wrong").
- Live accuracy counts tickets with agent feedback from an authenticated client: right when
  the served category equals the feedback category.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from boltit.core.errors import BadInputError
from boltit.core.schema import Ticket

ECE_BINS = 15
"""Equal-width confidence bins of the expected calibration error (15, as in Guo et al.,
"On Calibration of Modern Neural Networks", 2017). A confidence of 1.0 is in the last bin."""


def _labels_array(values: Sequence[Any] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=object)
    if array.ndim != 1:
        raise BadInputError(f"{name} must be one label per ticket")
    return array


def correct_predictions(
    truth: Sequence[Any] | np.ndarray, predicted: Sequence[Any] | np.ndarray
) -> np.ndarray:
    """Per ticket: was the predicted category the true one (bool array)."""
    y_true = _labels_array(truth, "true categories")
    y_pred = _labels_array(predicted, "predicted categories")
    if len(y_true) != len(y_pred):
        raise BadInputError(
            f"{len(y_true)} true categories but {len(y_pred)} predicted ones; they must align"
        )
    return np.asarray(y_true == y_pred, dtype=bool)


def accuracy(truth: Sequence[Any] | np.ndarray, predicted: Sequence[Any] | np.ndarray) -> float:
    """Share of tickets whose predicted category is the true one."""
    correct = correct_predictions(truth, predicted)
    if correct.size == 0:
        raise BadInputError("accuracy of no tickets is undefined: the evaluation set is empty")
    return float(correct.mean())


@dataclass(frozen=True)
class CategoryScores:
    """Precision, recall, F1 and support per category, in ``labels`` order."""

    labels: list[str]
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray

    @property
    def macro_f1(self) -> float:
        return float(self.f1.mean()) if self.f1.size else 0.0

    @property
    def weighted_f1(self) -> float:
        total = self.support.sum()
        return float((self.f1 * self.support).sum() / total) if total else 0.0

    def recall_by_category(self) -> dict[str, float]:
        return {label: float(r) for label, r in zip(self.labels, self.recall, strict=True)}


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise ratio, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    out = np.zeros(np.broadcast(numerator, denominator).shape, dtype=float)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def f1_from_counts(
    true_positives: np.ndarray, support: np.ndarray, predicted: np.ndarray
) -> np.ndarray:
    """F1 per category from counts: ``2 TP / (true rows + predicted rows)``, 0 when both are 0.

    Works on any leading shape, so the paired bootstrap feeds it resampled counts.
    """
    return _ratio(2.0 * np.asarray(true_positives, dtype=float), np.add(support, predicted))


def category_scores(
    truth: Sequence[Any] | np.ndarray,
    predicted: Sequence[Any] | np.ndarray,
    labels: Sequence[str] | None = None,
) -> CategoryScores:
    """Per-category precision, recall, F1 and support.

    Args:
        labels: Categories to score; default the categories present in ``truth``, sorted.
    """
    correct = correct_predictions(truth, predicted)
    y_true = np.asarray(truth, dtype=object)
    y_pred = np.asarray(predicted, dtype=object)
    names = sorted({str(t) for t in y_true}) if labels is None else [str(x) for x in labels]
    y_true_s = y_true.astype(str)
    y_pred_s = y_pred.astype(str)
    is_true = np.array([y_true_s == label for label in names], dtype=bool).reshape(len(names), -1)
    is_predicted = np.array([y_pred_s == label for label in names], dtype=bool).reshape(
        len(names), -1
    )
    support = is_true.sum(axis=1).astype(float)
    predicted_count = is_predicted.sum(axis=1).astype(float)
    true_positive = (is_true & correct).sum(axis=1).astype(float)
    return CategoryScores(
        labels=names,
        precision=_ratio(true_positive, predicted_count),
        recall=_ratio(true_positive, support),
        f1=f1_from_counts(true_positive, support, predicted_count),
        support=support.astype(int),
    )


def macro_f1(
    truth: Sequence[Any] | np.ndarray,
    predicted: Sequence[Any] | np.ndarray,
    labels: Sequence[str] | None = None,
) -> float:
    """Unweighted mean of the per-category F1 over ``labels`` (default: true categories)."""
    return category_scores(truth, predicted, labels).macro_f1


def category_recall(
    truth: Sequence[Any] | np.ndarray,
    predicted: Sequence[Any] | np.ndarray,
    labels: Sequence[str] | None = None,
) -> dict[str, float]:
    """Recall per category over ``labels`` (default: true categories)."""
    return category_scores(truth, predicted, labels).recall_by_category()


def expected_calibration_error(
    *,
    confidence: Sequence[float] | np.ndarray,
    correct: Sequence[bool] | np.ndarray,
    bins: int = ECE_BINS,
) -> float:
    """Weighted mean gap between confidence and accuracy over equal-width confidence bins.

    0.0 for no tickets (nothing is miscalibrated).
    """
    conf = np.asarray(confidence, dtype=float)
    hits = np.asarray(correct, dtype=float)
    if conf.shape != hits.shape:
        raise BadInputError(f"{conf.size} confidences but {hits.size} outcomes; they must align")
    if conf.size == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    confidence_sum = np.bincount(which, weights=conf, minlength=bins)
    correct_sum = np.bincount(which, weights=hits, minlength=bins)
    # |mean confidence - accuracy| of each bin, weighted by its share of tickets.
    return float(np.abs(confidence_sum - correct_sum).sum() / conf.size)


@dataclass(frozen=True)
class AutoApply:
    """Tickets at or above ``threshold``: their share and how many of them are right."""

    threshold: float
    coverage: float
    precision: float | None


def auto_apply(
    *,
    confidence: Sequence[float] | np.ndarray,
    correct: Sequence[bool] | np.ndarray,
    threshold: float,
) -> AutoApply:
    """Coverage and precision of auto-applying predictions at or above ``threshold``.

    Precision is None when no ticket reaches the threshold.
    """
    conf = np.asarray(confidence, dtype=float)
    hits = np.asarray(correct, dtype=bool)
    if conf.shape != hits.shape:
        raise BadInputError(f"{conf.size} confidences but {hits.size} outcomes; they must align")
    covered = conf >= threshold
    return AutoApply(
        threshold=float(threshold),
        coverage=float(covered.mean()) if covered.size else 0.0,
        precision=float(hits[covered].mean()) if covered.any() else None,
    )


@dataclass(frozen=True)
class LiveAccuracy:
    """Tickets with agent feedback and how many the model got right.

    ``by_route`` breaks the figures down by ``(model_version, served_by)`` when known.
    """

    labelled: int
    correct: int
    by_route: dict[tuple[str, str], LiveAccuracy] = field(default_factory=dict)

    @property
    def accuracy(self) -> float | None:
        """Share right; None without feedback."""
        return self.correct / self.labelled if self.labelled else None


def feedback_outcomes(
    served: Sequence[Any] | np.ndarray, feedback: Sequence[Any] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per ticket: (has feedback, served category equals the feedback category).

    A missing feedback (None or NaN) is unlabelled and never counted right.
    """
    served_array = _labels_array(served, "served categories")
    feedback_array = _labels_array(feedback, "feedback categories")
    if len(served_array) != len(feedback_array):
        raise BadInputError(
            f"{len(served_array)} served categories but {len(feedback_array)} feedback "
            "values; they must align"
        )
    # NaN != NaN, so ``value == value`` drops pandas' missing values without pandas.
    labelled = np.fromiter(
        (v is not None and v == v for v in feedback_array), dtype=bool, count=len(feedback_array)
    )
    right = labelled & (served_array == feedback_array)
    return labelled, np.asarray(right, dtype=bool)


def live_accuracy_of(
    served: Sequence[Any] | np.ndarray, feedback: Sequence[Any] | np.ndarray
) -> LiveAccuracy:
    """Live accuracy of tickets already in memory (columns ``category``, ``feedback_category``)."""
    labelled, right = feedback_outcomes(served, feedback)
    return LiveAccuracy(labelled=int(labelled.sum()), correct=int(right.sum()))


def live_accuracy(
    session: Session,
    *,
    since: datetime,
    until: datetime | None = None,
    model_version: str | None = None,
) -> LiveAccuracy:
    """Accuracy against agent feedback of tickets created in ``[since, until)``.

    The one store query behind serving's ``classification_accuracy_7d``, the monitor and
    ``recompute-accuracy``; broken down by ``(model_version, served_by)`` in ``by_route``.
    """
    query = (
        select(Ticket.model_version, Ticket.served_by, Ticket.category, Ticket.feedback_category)
        .where(Ticket.feedback_category.is_not(None))
        # Only a label from an authenticated client is ground truth; anonymous feedback
        # (a BOLTIT_INSECURE_OPEN service) stays in the store but moves no figure.
        .where(Ticket.feedback_client.is_not(None))
        .where(Ticket.created_at >= since)
    )
    if until is not None:
        query = query.where(Ticket.created_at < until)
    if model_version is not None:
        query = query.where(Ticket.model_version == str(model_version))
    rows = session.execute(query).all()
    versions = np.array([str(r[0]) for r in rows], dtype=object)
    routes = np.array([str(r[1]) for r in rows], dtype=object)
    labelled, right = feedback_outcomes([r[2] for r in rows], [r[3] for r in rows])
    by_route: dict[tuple[str, str], LiveAccuracy] = {}
    for key in sorted({(str(v), str(s)) for v, s in zip(versions, routes, strict=True)}):
        mask = (versions == key[0]) & (routes == key[1])
        by_route[key] = LiveAccuracy(
            labelled=int(labelled[mask].sum()), correct=int(right[mask].sum())
        )
    return LiveAccuracy(labelled=int(labelled.sum()), correct=int(right.sum()), by_route=by_route)
