"""The audit history: every validation, promotion, rollback, flag change and load failure."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from sqlalchemy import select
from sqlalchemy.orm import Session

from boltit.core.schema import AuditEvent

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack is 3.12+


class EventFields(TypedDict, total=False):
    """What an event may say beyond who did what: the versions, why, and when.

    ``at`` is when it happened, if not now; an action that moves an alias is dated when
    the move began, so the replicas' swaps it causes come after it in the history.
    """

    from_version: str | None
    to_version: str | None
    reason: str | None
    forced: bool
    details: dict[str, Any] | None
    at: datetime | None


def record(
    session: Session,
    *,
    action: str,
    actor: str,
    model_name: str | None = None,
    **fields: Unpack[EventFields],
) -> AuditEvent:
    """Add one event to the history in the caller's transaction."""
    at = fields.pop("at", None)
    fields.setdefault("forced", False)
    event = AuditEvent(action=action, actor=actor, model_name=model_name, **fields)
    if at is not None:
        event.at = at
    session.add(event)
    session.flush()
    return event


def history(
    session: Session,
    *,
    model_name: str | None = None,
    actions: list[str] | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[AuditEvent]:
    """Events oldest first, optionally filtered."""
    query = select(AuditEvent).order_by(AuditEvent.at, AuditEvent.id)
    if model_name is not None:
        query = query.where(AuditEvent.model_name == model_name)
    if actions:
        query = query.where(AuditEvent.action.in_(actions))
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    events = list(session.scalars(query))
    return events[-limit:] if limit else events
