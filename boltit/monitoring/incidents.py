"""Incident storage: open, add to the timeline, change status, list and read back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from boltit.core import audit
from boltit.core.db import Database
from boltit.core.errors import BadInputError, NotFoundError
from boltit.core.schema import Incident, IncidentEvent, utcnow

OPEN = "open"
MITIGATED = "mitigated"
RESOLVED = "resolved"
STATUSES = (OPEN, MITIGATED, RESOLVED)
ACTIVE = (OPEN, MITIGATED)

# Timeline kinds, in the runbook's words.
ALERT = "alert"
AUTO_APPLY_DISABLED = "auto_apply_disabled"
HINT = "root_cause_hint"
ROLLBACK = "rollback"
ROLLBACK_SKIPPED = "rollback_skipped"
VERIFICATION = "verification"
SMOKE_TEST = "smoke_test"
NOTIFICATION = "notification"
NOTE = "note"
STATUS_CHANGE = "status_change"


@dataclass(frozen=True)
class IncidentView:
    """A detached, read-only copy of an incident and its timeline."""

    id: int
    opened_at: datetime
    closed_at: datetime | None
    severity: str
    status: str
    title: str
    model_name: str
    model_version: str | None
    details: dict[str, Any]
    events: list[EventView]


@dataclass(frozen=True)
class EventView:
    at: datetime
    kind: str
    message: str
    details: dict[str, Any]


def open_incident(
    session: Session,
    *,
    title: str,
    model_name: str,
    model_version: str | None,
    actor: str,
    severity: str = "SEV-2",
    details: dict[str, Any] | None = None,
) -> Incident:
    """Create an incident and record ``incident_open`` in the audit history."""
    incident = Incident(
        title=title[:256],
        severity=severity,
        status=OPEN,
        model_name=model_name,
        model_version=model_version,
        details=details or {},
    )
    session.add(incident)
    session.flush()
    audit.record(
        session,
        action="incident_open",
        actor=actor,
        model_name=model_name,
        from_version=model_version,
        reason=title,
        details={"incident": incident.id, "severity": severity},
    )
    return incident


def add_event(
    session: Session,
    incident: Incident,
    *,
    kind: str,
    message: str,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> IncidentEvent:
    """Append one line to the incident's timeline."""
    event = IncidentEvent(
        incident_id=incident.id, kind=kind, message=message, details=details, at=at or utcnow()
    )
    session.add(event)
    session.flush()
    return event


def update_details(incident: Incident, **values: Any) -> None:
    """Merge values into the incident's details (a new dict, so the JSON column is saved)."""
    incident.details = {**(incident.details or {}), **values}


def set_status(
    session: Session, incident: Incident, *, status: str, actor: str, note: str | None = None
) -> None:
    """Move an incident to ``open``, ``mitigated`` or ``resolved`` and note it on the timeline."""
    if status not in STATUSES:
        raise BadInputError(f"unknown incident status {status!r}; use one of {', '.join(STATUSES)}")
    before = incident.status
    incident.status = status
    if status == RESOLVED:
        incident.closed_at = utcnow()
    add_event(
        session,
        incident,
        kind=STATUS_CHANGE,
        message=f"{before} -> {status} by {actor}" + (f": {note}" if note else ""),
        details={"from": before, "to": status, "actor": actor},
    )


def active_incident(
    session: Session,
    *,
    model_name: str,
    model_version: str | None,
    since: datetime | None = None,
) -> Incident | None:
    """The newest open or mitigated incident about this model version, opened after ``since``.

    ``since`` is when the version last went live: an incident from an earlier time it served
    does not cover a fresh promotion of the same version.
    """
    query = (
        select(Incident)
        .where(Incident.model_name == model_name, Incident.status.in_(ACTIVE))
        .order_by(Incident.opened_at.desc(), Incident.id.desc())
    )
    if model_version is not None:
        query = query.where(Incident.model_version == model_version)
    if since is not None:
        query = query.where(Incident.opened_at >= since)
    return session.scalars(query).first()


def list_incidents(database: Database, *, limit: int = 50) -> list[IncidentView]:
    """Newest first."""
    with database.session() as session:
        query = (
            select(Incident)
            .options(selectinload(Incident.events))
            .order_by(Incident.opened_at.desc(), Incident.id.desc())
            .limit(limit)
        )
        return [_view(incident) for incident in session.scalars(query)]


def get_incident(database: Database, reference: str | int) -> IncidentView:
    """An incident by id, or the newest with ``latest``.

    Raises:
        NotFoundError: No such incident.
        BadInputError: The reference is neither a number nor ``latest``.
    """
    with database.session() as session:
        query = select(Incident).options(selectinload(Incident.events))
        if str(reference).strip().lower() == "latest":
            incident = session.scalars(
                query.order_by(Incident.opened_at.desc(), Incident.id.desc())
            ).first()
            if incident is None:
                raise NotFoundError("no incident has been recorded yet")
            return _view(incident)
        try:
            number = int(str(reference))
        except ValueError:
            raise BadInputError(
                f"incident reference must be a number or 'latest', got {reference!r}"
            ) from None
        incident = session.scalars(query.where(Incident.id == number)).first()
        if incident is None:
            raise NotFoundError(f"incident {number} does not exist")
        return _view(incident)


def _view(incident: Incident) -> IncidentView:
    return IncidentView(
        id=incident.id,
        opened_at=incident.opened_at,
        closed_at=incident.closed_at,
        severity=incident.severity,
        status=incident.status,
        title=incident.title,
        model_name=incident.model_name,
        model_version=incident.model_version,
        details=dict(incident.details or {}),
        events=[
            EventView(at=e.at, kind=e.kind, message=e.message, details=dict(e.details or {}))
            for e in sorted(incident.events, key=lambda e: (e.at, e.id))
        ],
    )
