"""``/tickets``: the agent's feedback, and exports of the ticket store."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from boltit import tickets
from boltit.schema import Ticket
from serving.deps import ServiceDep
from serving.schemas import FeedbackRequest, TicketPublic

router = APIRouter(tags=["tickets"])

EXPORT_LIMIT = 100_000
TicketId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$")]


class ExportFormat(StrEnum):
    json = "json"
    csv = "csv"


@router.post("/tickets/{ticket_id}/feedback", response_model=TicketPublic)
async def feedback(ticket_id: TicketId, body: FeedbackRequest, service: ServiceDep) -> TicketPublic:
    """Store the agent's correction for a ticket (404 when the ticket is unknown)."""

    def store() -> Ticket | None:
        with service.database.write_session() as session:
            ticket = tickets.add_feedback(
                session, ticket_id, category=body.category, priority=body.priority
            )
            if ticket is not None:
                session.flush()
            return ticket

    ticket = await run_in_threadpool(store)
    if ticket is None:
        raise HTTPException(404, f"ticket {ticket_id} not found")
    return TicketPublic.model_validate(ticket)


@router.get("/tickets", response_model=list[TicketPublic])
async def export_tickets(
    service: ServiceDep,
    since: Annotated[
        datetime | None, Query(description="ISO 8601 time; tickets created at or after it.")
    ] = None,
    format: Annotated[ExportFormat, Query(description="json or csv")] = ExportFormat.json,
    limit: Annotated[int, Query(ge=1, le=EXPORT_LIMIT)] = 10_000,
) -> Response:
    """Export stored tickets, oldest first, as JSON or CSV."""

    def load() -> list[TicketPublic]:
        with service.database.session() as session:
            query = select(Ticket).order_by(Ticket.created_at, Ticket.id).limit(limit)
            if since is not None:
                query = query.where(Ticket.created_at >= since)
            return [TicketPublic.model_validate(t) for t in session.scalars(query)]

    rows = await run_in_threadpool(load)
    if format is ExportFormat.json:
        return JSONResponse([row.model_dump(mode="json") for row in rows])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(TicketPublic.model_fields))
    writer.writeheader()
    for row in rows:
        writer.writerow(row.model_dump(mode="json"))
    return Response(
        buffer.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="tickets.csv"'},
    )
