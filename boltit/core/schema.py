"""Tables of the project database: ticket store, audit history, flags and incidents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Timezone-aware now; every timestamp the project stores is UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always hands back aware datetimes (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: UTCDateTime()}


class Ticket(Base):
    """One classified ticket: what the model said, what was done, and the agent's correction."""

    __tablename__ = "tickets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(128))
    priority: Mapped[str | None] = mapped_column(String(16))
    confidence: Mapped[float] = mapped_column(Float)
    model_name: Mapped[str] = mapped_column(String(256))
    model_version: Mapped[str] = mapped_column(String(32))
    served_by: Mapped[str] = mapped_column(String(32), default="production")
    latency_ms: Mapped[float] = mapped_column(Float)
    auto_applied: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    feedback_category: Mapped[str | None] = mapped_column(String(128))
    feedback_priority: Mapped[str | None] = mapped_column(String(16))
    feedback_at: Mapped[datetime | None]
    # Who sent the current label (the authenticated client), and whether it named a category
    # no served version knew when it was accepted.
    feedback_client: Mapped[str | None] = mapped_column(String(128))
    feedback_new_category: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # Set when a reviewer on the /review page confirmed or corrected the label: the queues
    # show tickets nobody reviewed yet, and their progress counts these.
    reviewed_at: Mapped[datetime | None]
    reviewed_by: Mapped[str | None] = mapped_column(String(128))
    # Every label given, oldest first. Loaded with the ticket in one IN query per batch, so
    # an export of thousands of tickets does not issue a query per ticket.
    feedback_history: Mapped[list[TicketFeedback]] = relationship(
        order_by="TicketFeedback.id", lazy="selectin", cascade="all, delete-orphan"
    )

    __table_args__ = (
        Index("ix_tickets_created_at", "created_at"),
        Index("ix_tickets_version_created", "model_version", "created_at"),
        Index("ix_tickets_feedback_at", "feedback_at"),
        # The /review queues list unreviewed tickets (reviewed_at IS NULL) by (confidence, id)
        # or by id, and count them; both indexes cover those pages and counts.
        Index("ix_tickets_review_confidence", "reviewed_at", "confidence", "id"),
        Index("ix_tickets_review_id", "reviewed_at", "id"),
    )


class TicketFeedback(Base):
    """One label an agent gave a ticket; the newest is the ticket's current label.

    Nothing here is updated or deleted: a correction is a new row, so a poisoned label can
    be traced to who sent it and when it was replaced.
    """

    __tablename__ = "ticket_feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    category: Mapped[str] = mapped_column(String(128))
    priority: Mapped[str | None] = mapped_column(String(16))
    new_category: Mapped[bool] = mapped_column(Boolean, default=False)
    client: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # ``feedback`` (POST) or ``correction`` (PUT)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ShadowPrediction(Base):
    """A challenger's answer to a ticket, stored for comparison and never returned."""

    __tablename__ = "shadow_predictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    model_version: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(128))
    priority: Mapped[str | None] = mapped_column(String(16))
    confidence: Mapped[float] = mapped_column(Float)
    latency_ms: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """Who did what to which model version, when and why (MLflow keeps no such history)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    model_name: Mapped[str | None] = mapped_column(String(256))
    from_version: Mapped[str | None] = mapped_column(String(32))
    to_version: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    details: Mapped[dict[str, Any] | None]


class RegistryLock(Base):
    """One row per lock of ``boltit.core.locks``, keyed ``<kind>:<model name>``.

    Locked while a model's promotion or rollback (``registry:``) or a monitor pass over it
    (``monitor:``) runs; ``holder`` and ``acquired_at`` record the latest holder.
    """

    __tablename__ = "registry_locks"

    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128))
    acquired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Lease(Base):
    """A leader lease of ``boltit.core.leases``: who may act for ``name`` until ``expires_at``.

    ``term`` grows by one each time the lease changes hands; a claim writes only if the term
    is still the one it read, so two claimants never both win.
    """

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(256))
    term: Mapped[int] = mapped_column(Integer, default=0)
    acquired_at: Mapped[datetime | None]
    renewed_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]


class FeatureFlag(Base):
    """A runtime switch shared by every replica through the database."""

    __tablename__ = "feature_flags"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    # A number beside the switch, for flags that are a share (``canary_percent``: 0-100).
    value: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(128))


class Incident(Base):
    """A model-quality incident opened by the monitor."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    closed_at: Mapped[datetime | None]
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")
    title: Mapped[str] = mapped_column(String(256))
    model_name: Mapped[str] = mapped_column(String(256))
    model_version: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[dict[str, Any] | None]

    events: Mapped[list[IncidentEvent]] = relationship(
        back_populates="incident", order_by="IncidentEvent.at", cascade="all, delete-orphan"
    )


class IncidentEvent(Base):
    """One line of an incident's timeline."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None]

    incident: Mapped[Incident] = relationship(back_populates="events")


class Rollout(Base):
    """A gradual rollout of a challenger: its steps, where it is, and how it ended.

    ``running_model`` holds the model's name only while the rollout runs, under a unique
    index: the database itself refuses a second running rollout of one model.
    """

    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(256))
    version: Mapped[str] = mapped_column(String(32))
    champion_version: Mapped[str | None] = mapped_column(String(32))
    steps: Mapped[list[float]] = mapped_column(JSON)
    step_index: Mapped[int] = mapped_column(Integer, default=0)
    percent: Mapped[float] = mapped_column(Float)
    interval_seconds: Mapped[float] = mapped_column(Float)
    min_rows: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    running_model: Mapped[str | None] = mapped_column(String(256))
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    step_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    incident_id: Mapped[int | None] = mapped_column(Integer)
    # One entry per verdict that changed something (advance, abort, finish), newest last.
    evidence: Mapped[dict[str, Any] | None]

    __table_args__ = (
        Index("ix_rollouts_model_started", "model_name", "started_at"),
        Index("ux_rollouts_running_model", "running_model", unique=True),
    )
