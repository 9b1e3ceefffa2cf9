"""One page of the ticket export, read and serialised off the event loop.

Pages are bounded (``EXPORT_PAGE_MAX`` tickets, so at most ~20 MB of text) and walked
with a keyset cursor: ``after`` is the id of the last ticket of the previous page, and
tickets come oldest first by (``created_at``, ``id``). A page that is full carries the
cursor of the next one.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import TypeAdapter
from sqlalchemy import and_, or_, select

from boltit.core.db import Database
from boltit.core.schema import Ticket
from boltit.serving.schemas import TicketPublic

EXPORT_PAGE_MAX = 1_000
EXPORT_PAGE_DEFAULT = 500

_TICKET = TypeAdapter(TicketPublic)
# Rows are fetched and serialised a few at a time: one C call over a whole page (~20 MB)
# would hold the GIL for tens of milliseconds, and the event loop could not answer meanwhile.
_FETCH_ROWS = 50


class UnknownCursorError(Exception):
    """``after`` names no stored ticket."""


@dataclass(frozen=True, slots=True)
class ExportPage:
    """A serialised page and the cursor of the next one (None on the last page)."""

    body: bytes
    media_type: str
    next_cursor: str | None


def export_page(
    database: Database,
    *,
    since: datetime | None,
    after: str | None,
    limit: int,
    format: Literal["json", "csv"],
) -> ExportPage:
    """Read and serialise one page (blocking: call it from a worker thread).

    Raises:
        UnknownCursorError: ``after`` is not a stored ticket id.
    """
    with database.session() as session:
        query = (
            select(Ticket)
            .order_by(Ticket.created_at, Ticket.id)
            .limit(limit)
            .execution_options(yield_per=_FETCH_ROWS)
        )
        if since is not None:
            query = query.where(Ticket.created_at >= since)
        if after is not None:
            anchor = session.get(Ticket, after)
            if anchor is None:
                raise UnknownCursorError(f"after: no ticket {after} (use X-Next-Cursor's value)")
            query = query.where(
                or_(
                    Ticket.created_at > anchor.created_at,
                    and_(Ticket.created_at == anchor.created_at, Ticket.id > anchor.id),
                )
            )
        rows = [TicketPublic.model_validate(t) for t in session.scalars(query)]
    next_cursor = rows[-1].id if len(rows) == limit else None
    if format == "json":
        body = b"[" + b",".join(_TICKET.dump_json(row) for row in rows) + b"]"
        return ExportPage(body, "application/json", next_cursor)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(TicketPublic.model_fields))
    writer.writeheader()
    for row in rows:
        writer.writerow(row.model_dump(mode="json"))
    return ExportPage(buffer.getvalue().encode(), "text/csv", next_cursor)
