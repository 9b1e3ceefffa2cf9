"""Writing served tickets with known figures into a real project database."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import numpy as np

from boltit.db import Database
from boltit.schema import Ticket, utcnow

CATEGORIES = ["Access", "Hardware", "HR Support", "Network", "Purchase", "Storage"]


def add_tickets(
    database: Database,
    *,
    version: str,
    n: int,
    accuracy: float,
    labelled: float = 1.0,
    confidence: float = 0.9,
    latency_ms: float = 20.0,
    start: datetime | None = None,
    spacing: timedelta = timedelta(milliseconds=1),
    seed: int = 0,
    model_name: str = "ticket-classifier",
    auto_apply_threshold: float = 0.75,
) -> datetime:
    """Store ``n`` tickets served by ``version``; a share ``labelled`` gets feedback, of which
    a share ``accuracy`` agrees with the prediction. Returns the time after the last one."""
    rng = np.random.default_rng(seed)
    at = start or utcnow()
    rows = []
    for _ in range(n):
        predicted = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
        conf = float(np.clip(rng.normal(confidence, 0.05), 0.01, 1.0))
        feedback = None
        if rng.random() < labelled:
            if rng.random() < accuracy:
                feedback = predicted
            else:
                feedback = next(c for c in rng.permutation(CATEGORIES) if c != predicted)
        rows.append(
            Ticket(
                id=uuid.uuid4().hex,
                text=f"ticket about {predicted.lower()} number {rng.integers(10**6)}",
                category=predicted,
                priority=None,
                confidence=conf,
                model_name=model_name,
                model_version=version,
                served_by="production",
                latency_ms=float(rng.normal(latency_ms, latency_ms / 10)),
                auto_applied=conf >= auto_apply_threshold,
                reason="auto-applied" if conf >= auto_apply_threshold else "low confidence",
                created_at=at,
                feedback_category=feedback,
                feedback_at=at + timedelta(minutes=1) if feedback else None,
            )
        )
        at += spacing
    with database.session() as session:
        session.add_all(rows)
    return at
