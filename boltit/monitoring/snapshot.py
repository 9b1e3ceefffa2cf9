"""Monitoring figures computed from the ticket store, where feedback is the ground truth.

``compute_snapshot`` is pure (a frame in, figures out) so every figure is unit-testable;
``load_tickets`` and ``count_prediction_errors`` are the only functions that read the store.

A *failed prediction* is a ``/classify`` request that could not be answered: serving records
each as an audit event with action ``prediction_error`` (no ticket row is written for it). The
error rate is ``errors / (stored tickets + errors)`` over the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from boltit.core.evaluation import LiveAccuracy, feedback_outcomes
from boltit.core.schema import AuditEvent, Ticket
from boltit.core.vocabulary import PREDICTION_ERROR

PREDICTION_ERROR_ACTION = PREDICTION_ERROR

TICKET_COLUMNS = [
    "id",
    "category",
    "confidence",
    "model_version",
    "served_by",
    "latency_ms",
    "auto_applied",
    "reason",
    "created_at",
    "feedback_category",
    "feedback_at",
]


@dataclass(frozen=True)
class CategoryAccuracy:
    """Feedback accuracy of one true category (the agent's category)."""

    accuracy: float
    labelled: int


@dataclass(frozen=True)
class Snapshot:
    """Figures of one set of served tickets over the monitoring window."""

    window_days: float
    tickets: int
    labelled: int
    correct: int
    accuracy: float | None
    mean_confidence: float | None
    errors: int
    error_rate: float | None
    latency_p95_seconds: float | None
    auto_apply_rate: float | None
    category_accuracy: dict[str, CategoryAccuracy] = field(default_factory=dict)
    confidence_ks: float | None = None
    confidence_ks_samples: int = 0
    low_confidence: int = 0


def load_tickets(
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    model_version: str | None = None,
    with_text: bool = False,
) -> pd.DataFrame:
    """Stored tickets as a frame (columns ``TICKET_COLUMNS``, plus ``text``), oldest first."""
    columns = [*TICKET_COLUMNS, "text"] if with_text else TICKET_COLUMNS
    query = select(*(_ticket_column(column) for column in columns))
    if since is not None:
        query = query.where(Ticket.created_at >= since)
    if until is not None:
        query = query.where(Ticket.created_at < until)
    if model_version is not None:
        query = query.where(Ticket.model_version == model_version)
    rows = session.execute(query.order_by(Ticket.created_at, Ticket.id)).all()
    frame = pd.DataFrame([tuple(row) for row in rows], columns=columns)
    for column in ("created_at", "feedback_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def _ticket_column(name: str) -> Any:
    # Only a label from an authenticated client is ground truth: anonymous feedback (sent to a
    # BOLTIT_INSECURE_OPEN service) stays in the store but never moves the monitor's figures.
    if name in ("feedback_category", "feedback_at"):
        column = getattr(Ticket, name)
        return case((Ticket.feedback_client.is_not(None), column), else_=None).label(name)
    return getattr(Ticket, name)


def count_prediction_errors(
    session: Session, *, since: datetime | None = None, model_name: str | None = None
) -> int:
    """Failed predictions recorded by serving since ``since``."""
    query = select(func.count(AuditEvent.id)).where(AuditEvent.action == PREDICTION_ERROR_ACTION)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if model_name is not None:
        query = query.where(AuditEvent.model_name == model_name)
    return int(session.scalar(query) or 0)


def compute_snapshot(
    frame: pd.DataFrame,
    *,
    window_days: float,
    errors: int = 0,
    recent_tickets: int = 200,
    low_confidence_threshold: float = 0.75,
) -> Snapshot:
    """Every figure the alert rules read, from a frame shaped like ``load_tickets``'s.

    Args:
        frame: Served tickets in the window, oldest first.
        window_days: Length of the window, reported alongside the figures.
        errors: Failed predictions in the window (they have no ticket row).
        recent_tickets: How many of the latest tickets the confidence anomaly compares with the
            rest of the window.
        low_confidence_threshold: Tickets below this confidence are counted as low-confidence.
    """
    tickets = len(frame)
    # The same definition as serving's classification_accuracy_7d (boltit.core.evaluation).
    has_label, right = feedback_outcomes(
        frame["category"].to_numpy(), frame["feedback_category"].to_numpy()
    )
    live = LiveAccuracy(labelled=int(has_label.sum()), correct=int(right.sum()))
    by_category: dict[str, CategoryAccuracy] = {}
    if live.labelled:
        hits = pd.Series(right[has_label])
        grouped = hits.groupby(frame["feedback_category"].to_numpy()[has_label])
        for category, values in grouped:
            by_category[str(category)] = CategoryAccuracy(
                accuracy=float(values.mean()), labelled=len(values)
            )
    confidence = frame["confidence"].astype(float)
    attempts = tickets + errors
    ks, ks_samples = _confidence_shift(confidence.to_numpy(), recent_tickets)
    return Snapshot(
        window_days=window_days,
        tickets=tickets,
        labelled=live.labelled,
        correct=live.correct,
        accuracy=live.accuracy,
        mean_confidence=float(confidence.mean()) if tickets else None,
        errors=errors,
        error_rate=errors / attempts if attempts else None,
        latency_p95_seconds=(
            float(np.percentile(frame["latency_ms"].astype(float), 95)) / 1000.0
            if tickets
            else None
        ),
        auto_apply_rate=float(frame["auto_applied"].astype(bool).mean()) if tickets else None,
        category_accuracy=dict(sorted(by_category.items())),
        confidence_ks=ks,
        confidence_ks_samples=ks_samples,
        low_confidence=int((confidence < low_confidence_threshold).sum()),
    )


def _confidence_shift(confidence: np.ndarray, recent: int) -> tuple[float | None, int]:
    """KS distance between the latest ``recent`` confidences and the ones before them.

    Returns the distance (None when either side is empty) and the size of the smaller side,
    which the rule compares with its ``min_samples``.
    """
    if recent <= 0 or len(confidence) <= recent:
        return None, 0
    latest, earlier = confidence[-recent:], confidence[:-recent]
    result = stats.ks_2samp(latest, earlier)
    return float(result.statistic), int(min(len(latest), len(earlier)))


def window_start(now: datetime, window_days: float) -> datetime:
    """Start of a window of ``window_days`` ending at ``now``."""
    return now - timedelta(days=window_days)
