"""The review queues as paged queries: which tickets, in which order, and how far along.

Every queue lists the tickets no reviewer has looked at yet (``reviewed_at`` is empty), a page
at a time by keyset (the last row's sort key, never OFFSET), so page 2,000 of 100,000 tickets
costs what page 1 does:

- ``low-confidence``: predictions under the auto-apply threshold, least confident first,
  paged by ``(confidence, id)`` on ``ix_tickets_review_confidence``;
- ``disagreements``: tickets an agent labelled differently from the prediction;
- ``shadow``: tickets the challenger, scoring in the shadow, answered differently;
- ``audit``: a random sample (about 1 ticket in 32), fixed by a seed, so a page stays the
  same page until it is reviewed. Ticket ids end in 64 random bits: the sample is the tickets
  whose first random byte is one of 8 values the seed picks.

The other queues go newest first by id (ids start with their creation time).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, exists, func, select, tuple_
from sqlalchemy.orm import Session

from boltit.core import tickets
from boltit.core.errors import BadInputError
from boltit.core.evaluation import feedback_outcomes
from boltit.core.schema import ShadowPrediction, Ticket, TicketFeedback

PAGE_SIZE = 25
AUDIT_BYTES = 8  # of 256: the audit sample is about 3 % of the tickets
_ID = re.compile(r"^[0-9a-f]{1,32}$")


class Queue(StrEnum):
    """The review queues, by the name in the page's URL."""

    low_confidence = "low-confidence"
    disagreements = "disagreements"
    shadow = "shadow"
    audit = "audit"


QUEUE_TITLES = {
    Queue.low_confidence: "Lowest confidence",
    Queue.disagreements: "Agent disagreed",
    Queue.shadow: "Challenger disagreed",
    Queue.audit: "Random audit",
}


class BadQueueRequestError(BadInputError):
    """A queue name, filter or page cursor that cannot be used."""


@dataclass(frozen=True)
class Filters:
    """What narrows a queue: predicted category, served version, creation dates (inclusive)."""

    category: str | None = None
    version: str | None = None
    since: date | None = None
    until: date | None = None
    seed: int = 0  # the audit sample's

    @classmethod
    def parse(
        cls,
        *,
        category: str | None,
        version: str | None,
        since: str | None,
        until: str | None,
        seed: str | None,
    ) -> Filters:
        """Filters from the query string; blank means no filter.

        Raises:
            BadQueueRequestError: a date that is not YYYY-MM-DD, a range that ends before it
                starts, or a seed that is not a whole number.
        """
        first, last = _day("since", since), _day("until", until)
        if first and last and last < first:
            raise BadQueueRequestError(f"until ({last}) is before since ({first})")
        try:
            number = int(seed) if seed and seed.strip() else 0
        except ValueError:
            raise BadQueueRequestError(f"seed must be a whole number, not {seed!r}") from None
        return cls(
            category=(category or "").strip() or None,
            version=(version or "").strip() or None,
            since=first,
            until=last,
            seed=number,
        )

    def query(self) -> dict[str, str]:
        """The filters as query-string values (empty ones left out)."""
        values = {
            "category": self.category,
            "version": self.version,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "seed": str(self.seed) if self.seed else None,
        }
        return {key: value for key, value in values.items() if value}


def _day(name: str, value: str | None) -> date | None:
    if value is None or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise BadQueueRequestError(f"{name} must be a date as YYYY-MM-DD, not {value!r}") from None


def parse_queue(value: str | None) -> Queue:
    """The queue named in the URL (the low-confidence queue when none is).

    Raises:
        BadQueueRequestError: an unknown name; the message lists the known ones.
    """
    if not value:
        return Queue.low_confidence
    try:
        return Queue(value)
    except ValueError:
        known = ", ".join(q.value for q in Queue)
        raise BadQueueRequestError(f"unknown queue {value!r}; use one of {known}") from None


def audit_bytes(seed: int) -> list[str]:
    """The first random bytes (two hex digits) of the tickets in the seed's audit sample."""
    return sorted(f"{b:02x}" for b in random.Random(seed).sample(range(256), AUDIT_BYTES))


def queue_condition(queue: Queue, *, threshold: float, seed: int = 0) -> ColumnElement[bool]:
    """Which tickets belong to ``queue``, reviewed or not."""
    if queue is Queue.low_confidence:
        return Ticket.confidence < threshold
    if queue is Queue.disagreements:
        # An agent's label (never a reviewer's) that differs: the ticket stays in this queue
        # once reviewed, whatever the reviewer decided, so progress adds up.
        disagreed = exists().where(
            TicketFeedback.ticket_id == Ticket.id,
            TicketFeedback.kind != tickets.REVIEW,
            TicketFeedback.category != Ticket.category,
        )
        return and_(Ticket.feedback_at.is_not(None), disagreed)
    if queue is Queue.shadow:
        return exists().where(
            ShadowPrediction.ticket_id == Ticket.id,
            ShadowPrediction.category != Ticket.category,
        )
    # Ids are 16 hex digits of time, then 16 random: characters 17-18 are a random byte.
    return func.substr(Ticket.id, 17, 2).in_(audit_bytes(seed))


def _filtered(filters: Filters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.category:
        conditions.append(Ticket.category == filters.category)
    if filters.version:
        conditions.append(Ticket.model_version == filters.version)
    if filters.since:
        conditions.append(Ticket.created_at >= datetime.combine(filters.since, time(), UTC))
    if filters.until:
        end = datetime.combine(filters.until + timedelta(days=1), time(), UTC)
        conditions.append(Ticket.created_at < end)
    return conditions


@dataclass(frozen=True)
class Page:
    """One page of a queue: unreviewed tickets, and the cursor of the next page (if any)."""

    tickets: Sequence[Ticket]
    next_cursor: str | None


def queue_page(
    session: Session,
    queue: Queue,
    filters: Filters,
    *,
    threshold: float,
    after: str | None = None,
    size: int = PAGE_SIZE,
) -> Page:
    """The unreviewed tickets of ``queue`` after the cursor ``after`` (from the start without).

    Raises:
        BadQueueRequestError: a cursor that is not one this queue hands out.
    """
    query = select(Ticket).where(
        queue_condition(queue, threshold=threshold, seed=filters.seed),
        Ticket.reviewed_at.is_(None),
        *_filtered(filters),
    )
    if queue is Queue.low_confidence:
        if after:
            confidence, ticket_id = _confidence_cursor(after)
            query = query.where(tuple_(Ticket.confidence, Ticket.id) > (confidence, ticket_id))
        query = query.order_by(Ticket.confidence, Ticket.id)
    else:
        if after:
            query = query.where(Ticket.id < _id_cursor(after))
        query = query.order_by(Ticket.id.desc())
    rows = session.scalars(query.limit(size + 1)).all()
    page = rows[:size]
    if len(rows) <= size or not page:
        return Page(tickets=page, next_cursor=None)
    last = page[-1]
    cursor = f"{last.confidence!r}~{last.id}" if queue is Queue.low_confidence else last.id
    return Page(tickets=page, next_cursor=cursor)


def _confidence_cursor(value: str) -> tuple[float, str]:
    confidence, _, ticket_id = value.partition("~")
    try:
        number = float(confidence)
    except ValueError:
        raise BadQueueRequestError(f"page cursor {value!r} is not a confidence~id cursor") from None
    return number, _id_cursor(ticket_id)


def _id_cursor(value: str) -> str:
    if not _ID.match(value):
        raise BadQueueRequestError(f"page cursor {value!r} is not a ticket id")
    return value


@dataclass(frozen=True)
class Progress:
    """How much of a queue (under the filters) reviewers have looked at."""

    queue: Queue
    reviewed: int
    total: int

    @property
    def percent(self) -> float:
        return 100.0 * self.reviewed / self.total if self.total else 100.0


def progress(session: Session, queue: Queue, filters: Filters, *, threshold: float) -> Progress:
    """Reviewed and total tickets of ``queue`` under ``filters``.

    Two counts, of the unreviewed and the reviewed tickets: each reads a range of the
    review indexes (``reviewed_at`` first), where one count with a CASE would read rows.
    """
    condition = queue_condition(queue, threshold=threshold, seed=filters.seed)

    def count(reviewed: ColumnElement[bool]) -> int:
        query = select(func.count()).select_from(Ticket)
        return int(session.scalar(query.where(condition, reviewed, *_filtered(filters))) or 0)

    pending = count(Ticket.reviewed_at.is_(None))
    done = count(Ticket.reviewed_at.is_not(None))
    return Progress(queue=queue, reviewed=done, total=pending + done)


@dataclass(frozen=True)
class Accuracy:
    """The model's accuracy on reviewed tickets of one version or one predicted category."""

    key: str
    reviewed: int
    correct: int

    @property
    def percent(self) -> float:
        return 100.0 * self.correct / self.reviewed if self.reviewed else 0.0


@dataclass(frozen=True)
class Panel:
    """The live panel: accuracy on reviewed tickets per version and per predicted category."""

    by_version: list[Accuracy] = field(default_factory=list)
    by_category: list[Accuracy] = field(default_factory=list)


def accuracy_panel(session: Session) -> Panel:
    """Accuracy on every reviewed ticket (its current label against the prediction)."""
    rows = session.execute(
        select(Ticket.model_version, Ticket.category, Ticket.feedback_category).where(
            Ticket.reviewed_at.is_not(None)
        )
    ).all()
    # The one served-vs-label comparison (core.evaluation), not a second one in SQL.
    labelled, right = feedback_outcomes([r[1] for r in rows], [r[2] for r in rows])

    def grouped(position: int) -> list[Accuracy]:
        counts: dict[str, list[int]] = {}
        for row, has_label, is_right in zip(rows, labelled, right, strict=True):
            tally = counts.setdefault(str(row[position]), [0, 0])
            tally[0] += int(has_label)
            tally[1] += int(is_right)
        return [Accuracy(key, reviewed, correct) for key, (reviewed, correct) in counts.items()]

    by_version = grouped(0)
    # Version numbers sort as numbers, not text (10 after 9).
    by_version.sort(key=lambda a: (len(a.key), a.key))
    return Panel(by_version=by_version, by_category=sorted(grouped(1), key=lambda a: a.key))


def served_versions(session: Session) -> list[str]:
    """Every version that served a stored ticket, for the filter menu (numbers in order).

    Read from ``ix_tickets_version_created`` alone (a covering scan, no table rows).
    """
    versions = [str(v) for v in session.scalars(select(Ticket.model_version).distinct())]
    return sorted(versions, key=lambda v: (len(v), v))


def is_ticket_id(value: str) -> bool:
    """Whether ``value`` looks like a ticket id (32 hex digits at most)."""
    return bool(_ID.match(value))
