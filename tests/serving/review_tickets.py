"""Tickets for the review page's tests and bench, written straight into a real store.

Ids are made as the service makes them (16 hex digits of time, then 64 random bits), in
creation order, so the queues' id ordering and the audit sample behave as in production.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from boltit.core.db import Database
from boltit.core.schema import Ticket

CATEGORIES = ("Access", "Hardware", "HR Support", "Purchase", "Storage")
TEXTS = (
    "cannot log in to the vpn since this morning",
    "my laptop screen flickers and then goes black",
    "please order a second monitor for the new starter",
    "the shared drive is full and nobody can save files",
    "how do I update my bank details for payroll",
    "password reset link never arrives",
)


def ticket_rows(
    count: int,
    *,
    seed: int = 1,
    versions: Sequence[str] = ("1",),
    categories: Sequence[str] = CATEGORIES,
    texts: Sequence[str] = TEXTS,
    start: datetime | None = None,
    spacing: timedelta = timedelta(minutes=1),
) -> list[dict[str, Any]]:
    """``count`` stored predictions, one every ``spacing`` from ``start``, random confidences."""
    rng = random.Random(seed)
    first = start or datetime.now(UTC) - spacing * count
    rows = []
    for index in range(count):
        created = first + spacing * index
        confidence = round(rng.uniform(0.2, 0.99), 6)
        rows.append(
            {
                "id": f"{int(created.timestamp() * 1e9):016x}{rng.getrandbits(64):016x}",
                "text": texts[index % len(texts)],
                "category": categories[rng.randrange(len(categories))],
                "priority": None,
                "confidence": confidence,
                "model_name": "ticket-classifier",
                "model_version": versions[index % len(versions)],
                "served_by": "production",
                "latency_ms": 1.0,
                "auto_applied": confidence >= 0.75,
                "reason": "test",
                "created_at": created,
            }
        )
    return rows


def insert_tickets(database: Database, rows: Sequence[dict[str, Any]], chunk: int = 5000) -> None:
    """Insert rows in one transaction (chunks of ``chunk`` rows per statement)."""
    with database.session() as session:
        for begin in range(0, len(rows), chunk):
            session.execute(insert(Ticket), list(rows[begin : begin + chunk]))
