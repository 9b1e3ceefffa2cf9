"""What the canary and Production did in the same time window, read from the ticket store.

Both sides are read over one window (the current step, from its start to now), so traffic
that changes during the day changes both alike.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from boltit.core.schema import AuditEvent, Ticket
from boltit.core.vocabulary import (
    PREDICTION_ERROR,
    SERVED_BY_CANARY,
    SERVED_BY_CANARY_FALLBACK,
    SERVED_BY_PRODUCTION,
)
from boltit.monitoring.rollout_decision import StepEvidence


def _p95(values: np.ndarray) -> float | None:
    return float(np.percentile(values, 95)) if len(values) else None


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def _answers(
    session: Session, *, model_name: str, served_by: str, version: str | None, since: datetime
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Latencies, confidences, labelled and correct of one side's answers in the window."""
    query = select(
        Ticket.latency_ms, Ticket.confidence, Ticket.category, Ticket.feedback_category
    ).where(
        Ticket.model_name == model_name,
        Ticket.served_by == served_by,
        Ticket.created_at >= since,
    )
    if version is not None:
        query = query.where(Ticket.model_version == version)
    rows = session.execute(query).all()
    latency = np.array([row[0] for row in rows], dtype=float)
    confidence = np.array([row[1] for row in rows], dtype=float)
    labelled = [row for row in rows if row[3] is not None]
    correct = sum(1 for row in labelled if row[3] == row[2])
    return latency, confidence, len(labelled), correct


def step_evidence(
    session: Session,
    *,
    model_name: str,
    version: str,
    champion: str | None,
    step_index: int,
    percent: float,
    since: datetime,
    now: datetime,
) -> StepEvidence:
    """The evidence of the step that started at ``since``, as of ``now``."""
    canary_latency, canary_confidence, canary_labelled, canary_correct = _answers(
        session, model_name=model_name, served_by=SERVED_BY_CANARY, version=version, since=since
    )
    production_latency, production_confidence, production_labelled, production_correct = _answers(
        session,
        model_name=model_name,
        served_by=SERVED_BY_PRODUCTION,
        version=champion,
        since=since,
    )
    fallbacks = session.scalar(
        select(func.count())
        .select_from(Ticket)
        .where(
            Ticket.model_name == model_name,
            Ticket.served_by == SERVED_BY_CANARY_FALLBACK,
            Ticket.created_at >= since,
        )
    )
    errors = select(func.count()).where(
        AuditEvent.action == PREDICTION_ERROR,
        AuditEvent.model_name == model_name,
        AuditEvent.at >= since,
    )
    if champion is not None:
        errors = errors.where(AuditEvent.to_version == champion)
    production_errors = session.scalar(errors)
    production_p95 = _p95(production_latency)
    slower = int((canary_latency > production_p95).sum()) if production_p95 is not None else 0
    return StepEvidence(
        step_index=step_index,
        percent=percent,
        elapsed_seconds=max(0.0, (now - since).total_seconds()),
        canary_rows=len(canary_latency) + int(fallbacks or 0),
        canary_errors=int(fallbacks or 0),
        production_rows=len(production_latency),
        production_errors=int(production_errors or 0),
        canary_p95_ms=_p95(canary_latency),
        production_p95_ms=production_p95,
        canary_slower=slower,
        canary_labelled=canary_labelled,
        canary_correct=canary_correct,
        production_labelled=production_labelled,
        production_correct=production_correct,
        canary_mean_confidence=_mean(canary_confidence),
        production_mean_confidence=_mean(production_confidence),
    )
