"""Feedback in the ticket store: known categories, corrections with history, migration 0003."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text

from boltit.core import tickets
from boltit.core.db import MIGRATIONS_DIR, Database
from boltit.core.schema import Base, Ticket, TicketFeedback, utcnow
from boltit.core.settings import Settings
from tests.monitoring.tickets import ticket_row

SERVED = {"Hardware", "Access", "Purchase"}


def _add_ticket(database: Database, ticket_id: str, *, category: str = "Hardware") -> None:
    row = ticket_row(
        text=f"ticket {ticket_id}",
        category=category,
        confidence=0.9,
        version="1",
        created_at=utcnow(),
    )
    with database.session() as session:
        session.add(Ticket(**{**row, "id": ticket_id}))


def _drift(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_migrations_match_the_schema_on_sqlite(database: Database) -> None:
    assert _drift(database.engine) == []


@pytest.mark.postgres
def test_migrations_match_the_schema_on_postgres(postgres_url: str) -> None:
    database = Database(postgres_url)
    try:
        assert _drift(database.engine) == []
    finally:
        database.dispose()


@contextmanager
def _alembic(database: Database) -> Iterator[Config]:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        yield config


def test_0003_keeps_the_labels_given_before_it_on_sqlite(settings: Settings) -> None:
    _check_0003_backfill(settings.database_url)


@pytest.mark.postgres
def test_0003_keeps_the_labels_given_before_it_on_postgres(postgres_url: str) -> None:
    _check_0003_backfill(postgres_url)


def _check_0003_backfill(url: str) -> None:
    database = Database(url, migrate_schema=False)
    try:
        with _alembic(database) as config:
            command.upgrade(config, "0002")
        given = datetime(2026, 11, 30, 9, 0)
        with database.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO tickets (id, text, category, confidence, model_name, "
                    "model_version, served_by, latency_ms, auto_applied, reason, created_at, "
                    "feedback_category, feedback_at) VALUES ('ab12', 'printer jam', 'Hardware', "
                    "0.9, 'm', '1', 'production', 1.0, :no, 'r', :at, 'Access', :at)"
                ),
                # SQLite keeps naive UTC text; PostgreSQL gets the zone, whatever its own is.
                {
                    "at": given if url.startswith("sqlite") else given.replace(tzinfo=UTC),
                    "no": False,
                },
            )
        with _alembic(database) as config:
            command.upgrade(config, "head")
        with database.session() as session:
            ticket = session.get(Ticket, "ab12")
            assert ticket is not None
            assert ticket.feedback_new_category is False and ticket.feedback_client is None
            assert [(h.category, h.kind, h.at) for h in ticket.feedback_history] == [
                ("Access", tickets.FEEDBACK, given.replace(tzinfo=UTC))
            ]
        with _alembic(database) as config:
            command.downgrade(config, "0002")
        with database.engine.connect() as connection:
            label = connection.execute(text("SELECT feedback_category FROM tickets")).scalar()
            assert label == "Access"
    finally:
        database.dispose()


def test_unknown_category_is_refused_naming_the_known_ones(database: Database) -> None:
    _add_ticket(database, "a1")
    _add_ticket(database, "a2")
    with database.session() as session:
        with pytest.raises(tickets.UnknownCategoryError) as refused:
            tickets.check_category(session, "Printers", served=SERVED)
        message = str(refused.value)
        assert "'Printers'" in message and "known: Access, Hardware, Purchase" in message
        assert '"new_category": true' in message and "\n" not in message
        with pytest.raises(tickets.UnknownCategoryError, match="did you mean 'Hardware'"):
            tickets.check_category(session, "hardware", served=SERVED)
        assert tickets.check_category(session, "Hardware", served=SERVED) is False
        # Declared new: accepted, and it is known from then on.
        assert tickets.check_category(session, "Printers", served=SERVED, new_category=True)
        tickets.add_feedback(session, "a1", category="Printers", new_category=True)
    with database.session() as session:
        assert tickets.check_category(session, "Printers", served=SERVED) is False
        # The same label again, now known, keeps the category known.
        tickets.add_feedback(session, "a2", category="Printers")
        again = tickets.add_feedback(session, "a1", category="Printers", kind=tickets.CORRECTION)
        assert again is not None and again.feedback_new_category  # still the label it was
        assert len(again.feedback_history) == 1  # so a retried PUT adds nothing
        assert tickets.accepted_new_categories(session) == {"Printers"}
    with database.session() as session:
        # Corrected away everywhere: a new category accepted by mistake stops being known.
        tickets.add_feedback(session, "a1", category="Hardware", kind=tickets.CORRECTION)
        tickets.add_feedback(session, "a2", category="Hardware", kind=tickets.CORRECTION)
    with database.session() as session:
        assert tickets.accepted_new_categories(session) == set()
        with pytest.raises(tickets.UnknownCategoryError):
            tickets.check_category(session, "Printers", served=SERVED)


def test_a_label_is_corrected_and_its_history_kept(database: Database) -> None:
    _add_ticket(database, "b1")
    with database.session() as session:
        assert tickets.add_feedback(session, "ffff", category="Access") is None
        tickets.add_feedback(session, "b1", category="Access", priority="P3", client="desk-1")
    with database.session() as session:
        tickets.add_feedback(session, "b1", category="Purchase", client="desk-2")  # supersedes
    with database.session() as session:
        ticket = tickets.add_feedback(
            session, "b1", category="Hardware", client="lead", kind=tickets.CORRECTION
        )
        assert ticket is not None
        again = tickets.add_feedback(  # a retried PUT adds nothing
            session, "b1", category="Hardware", client="lead", kind=tickets.CORRECTION
        )
        assert again is ticket
        with pytest.raises(tickets.BadInputError, match="unknown feedback kind"):
            tickets.add_feedback(session, "b1", category="Hardware", kind="edit")
    with database.session() as session:
        ticket = session.get(Ticket, "b1")
        assert ticket is not None
        assert (ticket.feedback_category, ticket.feedback_priority, ticket.feedback_client) == (
            "Hardware",
            None,
            "lead",
        )
        history = [(h.category, h.priority, h.client, h.kind) for h in ticket.feedback_history]
        assert history == [
            ("Access", "P3", "desk-1", tickets.FEEDBACK),
            ("Purchase", None, "desk-2", tickets.FEEDBACK),
            ("Hardware", None, "lead", tickets.CORRECTION),
        ]
        assert ticket.feedback_at == ticket.feedback_history[-1].at
        assert session.query(TicketFeedback).count() == 3
        # Retraining reads the current label only.
        frame = tickets.labelled_tickets(session)
        assert frame["category"].tolist() == ["Hardware"]
