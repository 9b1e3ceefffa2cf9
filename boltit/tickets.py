"""The ticket store: every prediction, the agent's feedback, and the labelled tickets it yields."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from boltit.schema import Ticket, utcnow

LABELLED_COLUMNS = ["text", "category", "priority", "created_at"]


class LabelledTicketSource(Protocol):
    """Anything that yields labelled tickets for training (``retrain`` uses the store)."""

    def labelled_tickets(self, *, since: datetime | None = None) -> pd.DataFrame:
        """Columns ``text, category, priority, created_at``; category is the ground truth."""
        ...


def add_feedback(
    session: Session, ticket_id: str, *, category: str, priority: str | None = None
) -> Ticket | None:
    """Store the agent's correction; None when the ticket is unknown."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        return None
    ticket.feedback_category = category
    ticket.feedback_priority = priority
    ticket.feedback_at = utcnow()
    return ticket


def tickets_since(session: Session, since: datetime | None = None) -> Sequence[Ticket]:
    """Stored tickets, oldest first."""
    query = select(Ticket).order_by(Ticket.created_at)
    if since is not None:
        query = query.where(Ticket.created_at >= since)
    return session.scalars(query).all()


def labelled_tickets(session: Session, *, since: datetime | None = None) -> pd.DataFrame:
    """Tickets with feedback, as a training frame whose labels are the agents' corrections."""
    query = select(
        Ticket.text, Ticket.feedback_category, Ticket.feedback_priority, Ticket.created_at
    ).where(Ticket.feedback_category.is_not(None))
    if since is not None:
        query = query.where(Ticket.created_at >= since)
    rows = session.execute(query.order_by(Ticket.created_at)).all()
    return pd.DataFrame(rows, columns=LABELLED_COLUMNS)
