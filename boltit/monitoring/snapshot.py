"""Monitoring figures computed from the ticket store, where feedback is the ground truth.

``compute_snapshot`` is pure (tickets in, figures out) so every figure is unit-testable;
``load_ticket_log``, ``load_tickets`` and ``count_prediction_errors`` are the only functions
that read the store. The monitor reads a ``TicketLog`` (numpy columns), so ``boltit monitor
status`` runs without pandas; ``load_tickets`` gives the same tickets as a pandas frame for the
reports that want one.

A *failed prediction* is a ``/classify`` request that could not be answered: serving records
each as an audit event with action ``prediction_error`` (no ticket row is written for it). The
error rate is ``errors / (stored tickets + errors)`` over the window.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from boltit.core.evaluation import LiveAccuracy, feedback_outcomes
from boltit.core.schema import AuditEvent, Ticket
from boltit.core.vocabulary import PREDICTION_ERROR

if TYPE_CHECKING:  # `boltit monitor status` reads the store without pandas (issue 12)
    import pandas as pd

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


def utc_nanoseconds(moments: Iterable[Any]) -> np.ndarray:
    """Moments (aware, or naive meaning UTC; None for missing) as naive-UTC ``datetime64[ns]``."""
    values = moments if isinstance(moments, np.ndarray) else np.asarray(list(moments), dtype=object)
    if values.dtype.kind == "M":  # already datetime64: naive UTC
        return values.astype("datetime64[ns]")
    naive = [
        None
        if moment is None
        else moment.astimezone(UTC).replace(tzinfo=None)
        if moment.tzinfo is not None
        else moment
        for moment in values
    ]
    return np.array(
        [np.datetime64("NaT") if m is None else np.datetime64(m, "ns") for m in naive],
        dtype="datetime64[ns]",
    )


def utc_datetime(nanoseconds: np.datetime64) -> datetime:
    """An aware UTC datetime (to the microsecond) from a naive-UTC ``datetime64``."""
    micros = int(nanoseconds.astype("datetime64[us]").astype(np.int64))
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


class TicketLog:
    """Stored tickets as numpy columns, oldest first: what the monitor reads, without pandas.

    Columns as ``load_tickets``'s; ``created_at`` and ``feedback_at`` are naive-UTC
    ``datetime64[ns]`` (NaT without feedback), the others object or number arrays.
    """

    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        self._columns = columns

    def __len__(self) -> int:
        return len(self._columns["id"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self._columns[name]

    def where(self, mask: np.ndarray) -> TicketLog:
        """The tickets where ``mask`` is true, in the same order."""
        return TicketLog({name: column[mask] for name, column in self._columns.items()})

    def since(self, moment: datetime) -> TicketLog:
        """The tickets created at or after ``moment``."""
        return self.where(self["created_at"] >= utc_nanoseconds([moment])[0])

    def before(self, moment: datetime) -> TicketLog:
        """The tickets created before ``moment``."""
        return self.where(self["created_at"] < utc_nanoseconds([moment])[0])


def load_ticket_log(
    session: Session,
    *,
    since: datetime | None = None,
    model_version: str | None = None,
) -> TicketLog:
    """Stored tickets as a :class:`TicketLog` (columns ``TICKET_COLUMNS``), oldest first."""
    query = select(*(_ticket_column(column) for column in TICKET_COLUMNS))
    if since is not None:
        query = query.where(Ticket.created_at >= since)
    if model_version is not None:
        query = query.where(Ticket.model_version == model_version)
    rows = session.execute(query.order_by(Ticket.created_at, Ticket.id)).all()
    columns: dict[str, np.ndarray] = {}
    for index, name in enumerate(TICKET_COLUMNS):
        values = [row[index] for row in rows]
        if name in ("created_at", "feedback_at"):
            columns[name] = utc_nanoseconds(values)
        else:
            column = np.empty(len(values), dtype=object)
            column[:] = values
            columns[name] = column
    return TicketLog(columns)


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
    import pandas as pd

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
    frame: pd.DataFrame | TicketLog,
    *,
    window_days: float,
    errors: int = 0,
    recent_tickets: int = 200,
    low_confidence_threshold: float = 0.75,
) -> Snapshot:
    """Every figure the alert rules read, from tickets shaped like ``load_tickets``'s.

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
    # np.asarray: a pandas column and a TicketLog column read alike.
    truth = np.asarray(frame["feedback_category"], dtype=object)
    has_label, right = feedback_outcomes(np.asarray(frame["category"], dtype=object), truth)
    live = LiveAccuracy(labelled=int(has_label.sum()), correct=int(right.sum()))
    by_category: dict[str, CategoryAccuracy] = {}
    if live.labelled:
        hits: dict[str, list[bool]] = {}
        for category, hit in zip(truth[has_label], right[has_label], strict=True):
            hits.setdefault(str(category), []).append(bool(hit))
        for category, values in hits.items():
            by_category[category] = CategoryAccuracy(
                accuracy=sum(values) / len(values), labelled=len(values)
            )
    confidence = np.asarray(frame["confidence"], dtype=float)
    attempts = tickets + errors
    ks, ks_samples = _confidence_shift(confidence, recent_tickets)
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
            float(np.percentile(np.asarray(frame["latency_ms"], dtype=float), 95)) / 1000.0
            if tickets
            else None
        ),
        auto_apply_rate=(
            float(np.asarray(frame["auto_applied"], dtype=bool).mean()) if tickets else None
        ),
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
