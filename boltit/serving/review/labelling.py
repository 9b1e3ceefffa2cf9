"""A reviewer's labels, through the ticket store's feedback code; all or nothing."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from boltit.core import tickets
from boltit.core.db import Database
from boltit.core.errors import BadInputError, NotFoundError
from boltit.core.schema import Ticket, utcnow

BULK_MAX = 200  # a page is 25; more in one form is not a page


class NoModelLoadedError(BadInputError):
    """No model version is loaded, so a label cannot be checked against known categories."""


@dataclass(frozen=True)
class Label:
    """One decision: ``category`` for the ticket, or its prediction when ``category`` is None."""

    ticket_id: str
    category: str | None = None


def record_labels(
    database: Database, labels: Sequence[Label], *, reviewer: str, served: Iterable[str]
) -> list[Ticket]:
    """Make each label its ticket's current one (kind ``review``) and mark the ticket reviewed.

    A correction supersedes earlier labels; they stay in the ticket's feedback history, and
    the reviewer's client name is recorded as the sender (what ``check-data`` and the monitor
    read). One transaction: a bad label anywhere stores none of them.

    Raises:
        NoModelLoadedError: no category is known (no model version is loaded).
        tickets.UnknownCategoryError: a category no served version knows.
        NotFoundError: a ticket id that is not in the store.
        BadInputError: no labels, or more than ``BULK_MAX``.
    """
    known = set(served)
    if not known:
        raise NoModelLoadedError("no model version is loaded yet; labels cannot be checked")
    if not labels:
        raise BadInputError("no tickets were chosen")
    if len(labels) > BULK_MAX:
        raise BadInputError(f"{len(labels)} tickets at once; the limit is {BULK_MAX}")
    stored: list[Ticket] = []
    with database.write_session() as session:
        now = utcnow()
        for label in labels:
            ticket = session.get(Ticket, label.ticket_id)
            if ticket is None:
                raise NotFoundError(f"ticket {label.ticket_id} not found")
            category = label.category or ticket.category
            tickets.check_category(session, category, served=known)
            tickets.add_feedback(
                session,
                ticket.id,
                category=category,
                priority=ticket.feedback_priority,  # reviewers judge the category only
                client=reviewer,
                kind=tickets.REVIEW,
            )
            ticket.reviewed_at = now
            ticket.reviewed_by = reviewer
            stored.append(ticket)
        session.flush()
    return stored
