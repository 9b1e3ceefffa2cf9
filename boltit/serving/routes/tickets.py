"""``/tickets``: the agent's feedback, and exports of the ticket store."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from boltit.core import tickets
from boltit.core.schema import Ticket
from boltit.serving.auth import FeedbackClient, ReadClient, client_name
from boltit.serving.deps import ServiceDep
from boltit.serving.export_pages import (
    EXPORT_PAGE_DEFAULT,
    EXPORT_PAGE_MAX,
    UnknownCursorError,
    export_page,
)
from boltit.serving.schemas import FeedbackRequest, IsoTime, TicketPublic
from boltit.serving.service import ServingService

router = APIRouter(tags=["tickets"])

NEXT_CURSOR_HEADER = "X-Next-Cursor"
TicketId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$")]


class ExportFormat(StrEnum):
    json = "json"
    csv = "csv"


@router.post("/tickets/{ticket_id}/feedback", response_model=TicketPublic)
async def feedback(
    ticket_id: TicketId, body: FeedbackRequest, service: ServiceDep, client: FeedbackClient
) -> TicketPublic:
    """Label a ticket; a later label supersedes it (422 for a category no served model knows)."""
    return await _store_feedback(
        service, ticket_id, body, kind=tickets.FEEDBACK, client=client_name(client)
    )


@router.put("/tickets/{ticket_id}/feedback", response_model=TicketPublic)
async def correct_feedback(
    ticket_id: TicketId, body: FeedbackRequest, service: ServiceDep, client: FeedbackClient
) -> TicketPublic:
    """Replace a ticket's label; the earlier one stays in its feedback history."""
    return await _store_feedback(
        service, ticket_id, body, kind=tickets.CORRECTION, client=client_name(client)
    )


async def _store_feedback(
    service: ServingService,
    ticket_id: str,
    body: FeedbackRequest,
    *,
    kind: str,
    client: str | None = None,
) -> TicketPublic:
    served = service.served_categories()
    if not served:
        # Without a loaded model there is nothing to check a label against.
        raise HTTPException(503, "no model version is loaded yet; feedback cannot be checked")

    def store() -> TicketPublic | None:
        with service.database.write_session() as session:
            if session.get(Ticket, ticket_id) is None:
                return None
            is_new = tickets.check_category(
                session, body.category, served=served, new_category=body.new_category
            )
            ticket = tickets.add_feedback(
                session,
                ticket_id,
                category=body.category,
                priority=body.priority,
                new_category=is_new,
                client=client,
                kind=kind,
            )
            session.flush()
            return TicketPublic.model_validate(ticket)

    try:
        stored = await run_in_threadpool(store)
    except tickets.UnknownCategoryError as exc:
        raise HTTPException(422, str(exc)) from None
    if stored is None:
        raise HTTPException(404, f"ticket {ticket_id} not found")
    return stored


@router.get(
    "/tickets",
    response_model=list[TicketPublic],
    responses={
        200: {
            "headers": {
                NEXT_CURSOR_HEADER: {
                    "description": "On a full page: pass it as `after` for the next page.",
                    "schema": {"type": "string"},
                }
            }
        }
    },
)
async def export_tickets(
    service: ServiceDep,
    _client: ReadClient,
    since: Annotated[
        IsoTime | None, Query(description="ISO 8601 time; tickets created at or after it.")
    ] = None,
    format: Annotated[ExportFormat, Query(description="json or csv")] = ExportFormat.json,
    limit: Annotated[
        int, Query(ge=1, le=EXPORT_PAGE_MAX, description="Tickets per page.")
    ] = EXPORT_PAGE_DEFAULT,
    after: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=32,
            pattern=r"^[0-9a-f]+$",
            description="Cursor: the previous page's X-Next-Cursor (the id of its last ticket).",
        ),
    ] = None,
) -> Response:
    """Export one page of stored tickets, oldest first, as JSON or CSV (X-Next-Cursor: next)."""
    try:
        page = await run_in_threadpool(
            export_page,
            service.database,
            since=since,
            after=after,
            limit=limit,
            format=format.value,
        )
    except UnknownCursorError as exc:
        raise HTTPException(422, str(exc)) from None
    headers = {NEXT_CURSOR_HEADER: page.next_cursor} if page.next_cursor else {}
    if format is ExportFormat.csv:
        headers["Content-Disposition"] = 'attachment; filename="tickets.csv"'
    return Response(page.body, media_type=page.media_type, headers=headers)
