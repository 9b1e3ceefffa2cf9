"""Writing served tickets and agents' feedback into a real project database.

Tickets go in the way serving stores them (its ticket writer, its auto-apply decision) and
feedback the way the API records it (``boltit.core.tickets.add_feedback`` with the sending
client), so the monitor reads exactly what production would give it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from boltit.core.db import Database
from boltit.core.schema import utcnow
from boltit.core.tickets import add_feedback
from boltit.serving.decision import auto_apply_decision
from boltit.serving.ticket_writer import ticket_writer

CATEGORIES = ["Access", "Hardware", "HR Support", "Network", "Purchase", "Storage"]
# The authenticated clients feedback is recorded from: a desk of agents, none sending the
# bulk of the labels (one client sending most of them is a flood the monitor reports).
AGENTS = [f"agent-{n}" for n in range(1, 6)]


def store_tickets(database: Database, rows: list[dict[str, Any]]) -> None:
    """Commit ticket rows through serving's own ticket writer."""

    async def write() -> None:
        writer = ticket_writer(database)
        writer.start()
        try:
            await writer.write(rows)
        finally:
            writer.stop()

    asyncio.run(write())


def ticket_row(
    *,
    text: str,
    category: str,
    confidence: float,
    version: str,
    created_at: datetime,
    latency_ms: float = 20.0,
    model_name: str = "ticket-classifier",
    auto_apply_threshold: float = 0.75,
) -> dict[str, Any]:
    """One stored prediction, decided as serving decides it (auto-apply flag on)."""
    applied, reason = auto_apply_decision(
        confidence=confidence, threshold=auto_apply_threshold, enabled=True
    )
    return {
        "id": uuid.uuid4().hex,
        "text": text,
        "category": category,
        "priority": None,
        "confidence": confidence,
        "model_name": model_name,
        "model_version": version,
        "served_by": "production",
        "latency_ms": latency_ms,
        "auto_applied": applied,
        "reason": reason,
        "created_at": created_at,
    }


def send_feedback(database: Database, labels: Sequence[tuple[str, str]]) -> None:
    """(ticket id, the agent's category) pairs, in the order the agents sent them."""
    with database.session() as session:
        for index, (ticket_id, category) in enumerate(labels):
            agent = AGENTS[index % len(AGENTS)]
            assert add_feedback(session, ticket_id, category=category, client=agent) is not None


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
    rows: list[dict[str, Any]] = []
    labels: list[tuple[str, str]] = []
    for _ in range(n):
        predicted = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
        conf = float(np.clip(rng.normal(confidence, 0.05), 0.01, 1.0))
        row = ticket_row(
            text=f"ticket about {predicted.lower()} number {rng.integers(10**6)}",
            category=predicted,
            confidence=conf,
            version=version,
            created_at=at,
            latency_ms=float(rng.normal(latency_ms, latency_ms / 10)),
            model_name=model_name,
            auto_apply_threshold=auto_apply_threshold,
        )
        rows.append(row)
        if rng.random() < labelled:
            if rng.random() < accuracy:
                feedback = predicted
            else:
                feedback = next(c for c in rng.permutation(CATEGORIES) if c != predicted)
            labels.append((row["id"], feedback))
        at += spacing
    store_tickets(database, rows)
    send_feedback(database, labels)
    return at
