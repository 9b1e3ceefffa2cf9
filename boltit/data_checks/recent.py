"""``analyze-recent``: the runbook's ticket queries as one summary of recent predictions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from boltit.core.schema import Ticket


@dataclass(frozen=True)
class CategorySummary:
    """One category's share of recent tickets and how sure the model was about them."""

    category: str
    tickets: int
    share: float
    mean_confidence: float
    low_confidence_share: float


@dataclass(frozen=True)
class LowConfidenceTicket:
    """A ticket the model was least sure about."""

    id: str
    category: str
    confidence: float
    model_version: str
    created_at: datetime
    text: str


@dataclass(frozen=True)
class RecentSummary:
    """Volume, category mix and confidence of the tickets since ``since``."""

    since: datetime
    threshold: float
    volume: int
    low_confidence: int
    versions: dict[str, int]
    categories: list[CategorySummary]
    lowest: list[LowConfidenceTicket]

    @property
    def low_confidence_share(self) -> float:
        return self.low_confidence / self.volume if self.volume else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "threshold": self.threshold,
            "volume": self.volume,
            "low_confidence": self.low_confidence,
            "low_confidence_share": self.low_confidence_share,
            "versions": self.versions,
            "categories": [c.__dict__ for c in self.categories],
            "lowest": [{**t.__dict__, "created_at": t.created_at.isoformat()} for t in self.lowest],
        }


def summarize_recent(
    session: Session, *, since: datetime, low_confidence_below: float, lowest: int = 10
) -> RecentSummary:
    """Summarise tickets created at or after ``since``.

    Args:
        session: A ticket-store session.
        since: Start of the window.
        low_confidence_below: Confidence under which a ticket counts as low-confidence
            (the auto-apply threshold).
        lowest: How many of the lowest-confidence tickets to list.
    """
    low = case((Ticket.confidence < low_confidence_below, 1), else_=0)
    recent = Ticket.created_at >= since
    rows = session.execute(
        select(
            Ticket.category,
            func.count(),
            func.avg(Ticket.confidence),
            func.sum(low),
        )
        .where(recent)
        .group_by(Ticket.category)
        .order_by(func.avg(Ticket.confidence))
    ).all()
    volume = sum(int(count) for _, count, _, _ in rows)
    categories = [
        CategorySummary(
            category=str(category),
            tickets=int(count),
            share=int(count) / volume if volume else 0.0,
            mean_confidence=float(mean or 0.0),
            low_confidence_share=int(lows or 0) / int(count) if count else 0.0,
        )
        for category, count, mean, lows in rows
    ]
    versions = {
        str(version): int(count)
        for version, count in session.execute(
            select(Ticket.model_version, func.count())
            .where(recent)
            .group_by(Ticket.model_version)
            .order_by(Ticket.model_version)
        ).all()
    }
    least_sure = session.scalars(
        select(Ticket)
        .where(recent, Ticket.confidence < low_confidence_below)
        .order_by(Ticket.confidence, Ticket.created_at.desc())
        .limit(lowest)
    ).all()
    return RecentSummary(
        since=since,
        threshold=low_confidence_below,
        volume=volume,
        low_confidence=sum(int(lows or 0) for _, _, _, lows in rows),
        versions=versions,
        categories=categories,
        lowest=[
            LowConfidenceTicket(
                id=t.id,
                category=t.category,
                confidence=t.confidence,
                model_version=t.model_version,
                created_at=t.created_at,
                text=t.text,
            )
            for t in least_sure
        ],
    )
