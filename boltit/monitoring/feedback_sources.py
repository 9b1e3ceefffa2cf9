"""Who sends the ground truth: a flood of labels from one client, and anonymous labels ignored.

A flood is a client that sent at least ``feedback_flood_share`` of the monitoring window's
authenticated labels within ``feedback_flood_window_minutes`` (and at least
``feedback_flood_min`` labels): a poisoning attempt, a broken integration or a bulk import.
It is reported and audited (``feedback_flood``), never acted on: the monitor still counts
the labels, and a human decides (e.g. ``boltit token revoke``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from boltit.core import audit
from boltit.core.db import Database
from boltit.core.schema import AuditEvent, Ticket, TicketFeedback
from boltit.core.settings import Settings
from boltit.monitoring.snapshot import utc_datetime, utc_nanoseconds

if TYPE_CHECKING:  # `boltit monitor status` runs without pandas (issue 12)
    import pandas as pd

FEEDBACK_FLOOD = "feedback_flood"


@dataclass(frozen=True)
class FeedbackFlood:
    """One client's busiest stretch of labels, over the share that counts as a flood."""

    client: str
    count: int
    window_total: int
    started_at: datetime
    window_minutes: float

    @property
    def share(self) -> float:
        return self.count / self.window_total if self.window_total else 0.0

    def describe(self) -> str:
        return (
            f"feedback flood: client {self.client!r} sent {self.count} of the window's "
            f"{self.window_total} labels ({self.share:.0%}) within {self.window_minutes:g} "
            f"minutes from {self.started_at:%Y-%m-%d %H:%M} UTC; not acted on (revoke its "
            f"token with 'boltit token revoke {self.client}' if it is not legitimate)"
        )


@dataclass(frozen=True)
class FeedbackSources:
    """Labels in the monitoring window, by who sent them."""

    per_client: dict[str, int]
    anonymous: int
    floods: list[FeedbackFlood] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.per_client.values())


def find_floods(
    labels: pd.DataFrame | dict[str, Any], *, share: float, window: timedelta, minimum: int
) -> list[FeedbackFlood]:
    """Clients whose busiest ``window`` of labels reaches ``share`` of all of ``labels``.

    Args:
        labels: One row per authenticated label, columns ``client`` and ``at`` (a frame, or
            a dict of two equally long sequences).
    """
    clients = np.asarray(labels["client"], dtype=object)
    total = len(clients)
    floods: list[FeedbackFlood] = []
    if total == 0:
        return floods
    moments = utc_nanoseconds(_moments(labels["at"]))
    for client in sorted(set(clients)):
        times = np.sort(moments[clients == client])
        # For each label, how many of this client's labels fall in the window it opens.
        span = np.timedelta64(int(window.total_seconds() * 1e9), "ns")
        ends = np.searchsorted(times, times + span, side="left")
        counts = ends - np.arange(len(times))
        busiest = int(np.argmax(counts))
        count = int(counts[busiest])
        if count >= minimum and count / total >= share:
            floods.append(
                FeedbackFlood(
                    client=str(client),
                    count=count,
                    window_total=total,
                    started_at=utc_datetime(times[busiest]),
                    window_minutes=window.total_seconds() / 60,
                )
            )
    return floods


def _moments(values: Any) -> Any:
    # A tz-aware pandas column turns into Timestamps (datetime subclasses) or, naive, into
    # datetime64 values; either is what ``utc_nanoseconds`` reads.
    array = np.asarray(values)
    return array if array.dtype.kind == "M" else list(array)


def feedback_sources(session: Session, *, settings: Settings, since: datetime) -> FeedbackSources:
    """Every label given since ``since`` to this model's tickets, by client, with floods."""
    base = (
        select(TicketFeedback.client, TicketFeedback.at)
        .join(Ticket, Ticket.id == TicketFeedback.ticket_id)
        .where(TicketFeedback.at >= since, Ticket.model_name == settings.model_name)
    )
    anonymous = session.scalar(
        select(func.count()).select_from(base.where(TicketFeedback.client.is_(None)).subquery())
    )
    rows = session.execute(base.where(TicketFeedback.client.is_not(None))).all()
    clients = [str(row[0]) for row in rows]  # authenticated labels only: never None
    floods = find_floods(
        {"client": clients, "at": [row[1] for row in rows]},
        share=settings.feedback_flood_share,
        window=timedelta(minutes=settings.feedback_flood_window_minutes),
        minimum=settings.feedback_flood_min,
    )
    per_client = {str(k): v for k, v in Counter(clients).most_common()}
    return FeedbackSources(per_client=per_client, anonymous=int(anonymous or 0), floods=floods)


def record_floods(
    session: Session, *, settings: Settings, sources: FeedbackSources, actor: str
) -> list[FeedbackFlood]:
    """Audit each flood once (a stretch already recorded for that client is not repeated)."""
    recorded = []
    for flood in sources.floods:
        window = timedelta(minutes=flood.window_minutes)
        earlier = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == FEEDBACK_FLOOD,
                AuditEvent.model_name == settings.model_name,
                AuditEvent.at >= flood.started_at - timedelta(days=1),
            )
        ).all()
        if any(_same_stretch(event, flood, window) for event in earlier):
            continue
        audit.record(
            session,
            action=FEEDBACK_FLOOD,
            actor=actor,
            model_name=settings.model_name,
            reason=flood.describe(),
            details={
                "client": flood.client,
                "count": flood.count,
                "window_total": flood.window_total,
                "share": round(flood.share, 4),
                "started_at": flood.started_at.isoformat(),
                "window_minutes": flood.window_minutes,
            },
        )
        recorded.append(flood)
    return recorded


def _same_stretch(event: AuditEvent, flood: FeedbackFlood, window: timedelta) -> bool:
    details = event.details or {}
    if details.get("client") != flood.client:
        return False
    try:
        started = datetime.fromisoformat(str(details.get("started_at")))
    except ValueError:
        return False
    return abs(started - flood.started_at) <= window


def check_feedback(
    database: Database, *, settings: Settings, since: datetime, actor: str | None = None
) -> FeedbackSources:
    """Who sent the window's labels; with ``actor``, new floods are also audited."""
    with database.session() as session:
        sources = feedback_sources(session, settings=settings, since=since)
        if actor is not None:
            record_floods(session, settings=settings, sources=sources, actor=actor)
    return sources


def describe_sources(sources: FeedbackSources) -> list[str]:
    """Lines for the monitor's output: floods first, then ignored anonymous labels."""
    lines = [flood.describe() for flood in sources.floods]
    if sources.anonymous:
        lines.append(
            f"{sources.anonymous} labels from callers without a token were ignored "
            "(only authenticated clients' feedback counts)"
        )
    return lines
