"""The ticket store: every prediction, the agent's feedback, and the labelled tickets it yields."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from boltit.core.errors import BadInputError
from boltit.core.schema import Ticket, TicketFeedback, utcnow

FEEDBACK = "feedback"  # a label sent with POST: it supersedes any earlier one
CORRECTION = "correction"  # a label sent with PUT: it replaces the current one
REVIEW = "review"  # a reviewer's label from the /review page: replaces it, as a correction

LABELLED_COLUMNS = ["text", "category", "priority", "created_at"]


class LabelledTicketSource(Protocol):
    """Anything that yields labelled tickets for training (``retrain`` uses the store)."""

    def labelled_tickets(self, *, since: datetime | None = None) -> pd.DataFrame:
        """Columns ``text, category, priority, created_at``; category is the ground truth."""
        ...


class UnknownCategoryError(BadInputError):
    """A feedback label names a category no served version knows, and does not say it is new."""


def accepted_new_categories(session: Session) -> set[str]:
    """Categories once declared new that are still some ticket's current label.

    Only current labels count: a new category whose every label was corrected away (a
    typo accepted by mistake) stops being known.
    """
    declared = select(TicketFeedback.category).where(TicketFeedback.new_category.is_(True))
    query = (
        select(Ticket.feedback_category).where(Ticket.feedback_category.in_(declared)).distinct()
    )
    return {str(category) for category in session.scalars(query)}


def check_category(
    session: Session, category: str, *, served: Iterable[str], new_category: bool = False
) -> bool:
    """Whether ``category`` is new; raises when it is unknown and not declared new.

    Known categories are those of the served versions plus new ones accepted earlier, so
    one mistyped label cannot start a category that retraining would then have to learn.

    Raises:
        UnknownCategoryError: the category is unknown and ``new_category`` is False.
    """
    known = set(served) | accepted_new_categories(session)
    if category in known:
        return False
    if new_category:
        return True
    listed = ", ".join(sorted(known)) or "none (no model version is loaded)"
    close = difflib.get_close_matches(category, sorted(known), n=1, cutoff=0.6)
    folded = [k for k in known if k.casefold() == category.casefold()]
    hint = f"; did you mean {(folded or close)[0]!r}?" if folded or close else ""
    raise UnknownCategoryError(
        f"category {category!r} is not known to the served model versions (known: {listed})"
        f'{hint}; send "new_category": true to add a new category'
    )


def add_feedback(
    session: Session,
    ticket_id: str,
    *,
    category: str,
    priority: str | None = None,
    new_category: bool = False,
    client: str | None = None,
    kind: str = FEEDBACK,
) -> Ticket | None:
    """Make ``category`` the ticket's current label and keep it in the history.

    ``kind`` is ``feedback`` (a later label supersedes the current one), ``correction``
    (replaces it; repeating the current label adds nothing, so a retried PUT is harmless) or
    ``review`` (a reviewer's label from the /review page, idempotent as a correction).
    Returns None when the ticket is unknown. The category is not checked here: callers
    check it first with :func:`check_category`.
    """
    if kind not in (FEEDBACK, CORRECTION, REVIEW):
        raise BadInputError(
            f"unknown feedback kind {kind!r}; use {FEEDBACK}, {CORRECTION} or {REVIEW}"
        )
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        return None
    if category == ticket.feedback_category and ticket.feedback_new_category:
        new_category = True  # the same label again: it was new when this ticket first got it
    unchanged = (
        ticket.feedback_category == category
        and ticket.feedback_priority == priority
        and ticket.feedback_new_category == new_category
        and ticket.feedback_client == client
    )
    if kind in (CORRECTION, REVIEW) and unchanged:
        return ticket
    now = utcnow()
    ticket.feedback_history.append(
        TicketFeedback(
            ticket_id=ticket.id,
            category=category,
            priority=priority,
            new_category=new_category,
            client=client,
            kind=kind,
            at=now,
        )
    )
    ticket.feedback_category = category
    ticket.feedback_priority = priority
    ticket.feedback_new_category = new_category
    ticket.feedback_client = client
    ticket.feedback_at = now
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
