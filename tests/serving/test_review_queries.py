"""The review queues' queries and label writes on real SQLite and PostgreSQL stores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from boltit.core import tickets
from boltit.core.clients import ClientFile, Scope
from boltit.core.db import Database
from boltit.core.errors import NotFoundError
from boltit.core.schema import ShadowPrediction, Ticket, TicketFeedback
from boltit.core.settings import Settings
from boltit.serving.review import queries
from boltit.serving.review.labelling import Label, NoModelLoadedError, record_labels
from boltit.serving.review.queries import BadQueueRequestError, Filters, Queue
from tests.console_script import point_cli_at, run_boltit
from tests.serving.review_tickets import CATEGORIES, insert_tickets, ticket_rows

THRESHOLD = 0.75
SERVED = set(CATEGORIES)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, database: Database) -> Iterator[Database]:
    """The project database on SQLite, and on PostgreSQL."""
    if request.param == "sqlite":
        yield database
        return
    url = request.getfixturevalue("postgres_url")
    other = Database(url)
    try:
        yield other
    finally:
        other.dispose()


def _walk(store: Database, queue: Queue, filters: Filters) -> list[Ticket]:
    seen: list[Ticket] = []
    after = None
    with store.session() as session:
        while True:
            page = queries.queue_page(
                session, queue, filters, threshold=THRESHOLD, after=after, size=7
            )
            seen += page.tickets
            if page.next_cursor is None:
                return seen
            after = page.next_cursor


def test_keyset_pages_cover_the_low_confidence_queue_once_in_order(store: Database) -> None:
    rows = ticket_rows(120, seed=3)
    rows[5]["confidence"] = rows[6]["confidence"] = 0.3  # ties are ordered by id
    insert_tickets(store, rows)
    seen = _walk(store, Queue.low_confidence, Filters())
    expected = sorted(
        (r for r in rows if r["confidence"] < THRESHOLD), key=lambda r: (r["confidence"], r["id"])
    )
    assert [t.id for t in seen] == [r["id"] for r in expected]
    assert len(seen) > 50
    with store.session() as session:
        done = queries.progress(session, Queue.low_confidence, Filters(), threshold=THRESHOLD)
    assert (done.reviewed, done.total) == (0, len(expected))


def test_reviewed_tickets_leave_the_queue_and_count_as_progress(store: Database) -> None:
    rows = ticket_rows(40, seed=4)
    insert_tickets(store, rows)
    with store.session() as session:
        first = queries.queue_page(session, Queue.low_confidence, Filters(), threshold=THRESHOLD)
    chosen = [t.id for t in first.tickets[:3]]
    stored = record_labels(
        store,
        [Label(chosen[0]), Label(chosen[1], "Storage"), Label(chosen[2])],
        reviewer="sme",
        served=SERVED,
    )
    assert len(stored) == 3
    with store.session() as session:
        again = queries.queue_page(session, Queue.low_confidence, Filters(), threshold=THRESHOLD)
        done = queries.progress(session, Queue.low_confidence, Filters(), threshold=THRESHOLD)
        labelled = {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(chosen)))}
        panel = queries.accuracy_panel(session)
    assert not set(chosen) & {t.id for t in again.tickets}
    assert done.reviewed == 3
    confirmed = labelled[chosen[0]]
    assert confirmed.feedback_category == confirmed.category  # confirm = the prediction
    assert labelled[chosen[1]].feedback_category == "Storage"
    assert all(t.reviewed_by == "sme" and t.feedback_client == "sme" for t in labelled.values())
    assert sum(a.reviewed for a in panel.by_version) == 3
    right = sum(1 for t in labelled.values() if t.feedback_category == t.category)
    assert sum(a.correct for a in panel.by_version) == right


def test_a_correction_supersedes_earlier_labels_and_keeps_them(store: Database) -> None:
    rows = ticket_rows(3, seed=5)
    insert_tickets(store, rows)
    ticket_id = rows[0]["id"]
    with store.session() as session:
        tickets.add_feedback(session, ticket_id, category="Access", client="agent-1")
    record_labels(store, [Label(ticket_id, "Hardware")], reviewer="sme", served=SERVED)
    record_labels(store, [Label(ticket_id, "Purchase")], reviewer="lead", served=SERVED)
    with store.session() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        history = [(f.category, f.client, f.kind) for f in ticket.feedback_history]
        assert (ticket.feedback_category, ticket.feedback_client) == ("Purchase", "lead")
        assert ticket.reviewed_by == "lead"
    assert history == [
        ("Access", "agent-1", "feedback"),
        ("Hardware", "sme", "review"),
        ("Purchase", "lead", "review"),
    ]


def test_a_bad_label_stores_nothing(store: Database) -> None:
    rows = ticket_rows(3, seed=6)
    insert_tickets(store, rows)
    good, other = rows[0]["id"], rows[1]["id"]
    with pytest.raises(tickets.UnknownCategoryError, match="'Printers' is not known"):
        record_labels(store, [Label(good), Label(other, "Printers")], reviewer="sme", served=SERVED)
    with pytest.raises(NotFoundError, match="ticket abc not found"):
        record_labels(store, [Label(good), Label("abc")], reviewer="sme", served=SERVED)
    with pytest.raises(NoModelLoadedError):
        record_labels(store, [Label(good)], reviewer="sme", served=set())
    with store.session() as session:
        assert session.scalar(select(Ticket.reviewed_at).where(Ticket.id == good)) is None
        assert session.scalars(select(TicketFeedback)).all() == []


def test_disagreement_and_shadow_queues(store: Database) -> None:
    rows = ticket_rows(10, seed=7)
    insert_tickets(store, rows)
    agreed, disagreed, shadowed, shadow_agreed = (r["id"] for r in rows[:4])
    other = {r["id"]: next(c for c in CATEGORIES if c != r["category"]) for r in rows}
    with store.session() as session:
        tickets.add_feedback(session, agreed, category=rows[0]["category"], client="agent-1")
        tickets.add_feedback(session, disagreed, category=other[disagreed], client="agent-2")
        session.execute(
            insert(ShadowPrediction),
            [
                {
                    "ticket_id": shadowed,
                    "model_version": "2",
                    "category": other[shadowed],
                    "priority": None,
                    "confidence": 0.6,
                    "latency_ms": 1.0,
                },
                {
                    "ticket_id": shadow_agreed,
                    "model_version": "2",
                    "category": rows[3]["category"],
                    "priority": None,
                    "confidence": 0.9,
                    "latency_ms": 1.0,
                },
            ],
        )
    assert [t.id for t in _walk(store, Queue.disagreements, Filters())] == [disagreed]
    assert [t.id for t in _walk(store, Queue.shadow, Filters())] == [shadowed]
    # Reviewed, whatever the reviewer decides, the ticket stays counted in its queue.
    record_labels(store, [Label(disagreed)], reviewer="sme", served=SERVED)
    with store.session() as session:
        done = queries.progress(session, Queue.disagreements, Filters(), threshold=THRESHOLD)
    assert (done.reviewed, done.total) == (1, 1)
    assert _walk(store, Queue.disagreements, Filters()) == []


def test_filters_narrow_every_queue(store: Database) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    rows = ticket_rows(
        90, seed=8, versions=("1", "2", "3"), start=start, spacing=timedelta(hours=8)
    )
    insert_tickets(store, rows)
    filters = Filters.parse(
        category="Hardware", version="2", since="2026-11-05", until="2026-11-20", seed=None
    )
    seen = _walk(store, Queue.low_confidence, filters)
    expected = {
        r["id"]
        for r in rows
        if r["category"] == "Hardware"
        and r["model_version"] == "2"
        and datetime(2026, 11, 5, tzinfo=UTC)
        <= r["created_at"]
        < datetime(2026, 11, 21, tzinfo=UTC)
        and r["confidence"] < THRESHOLD
    }
    assert expected and {t.id for t in seen} == expected


def test_the_audit_sample_is_random_stable_and_seeded(database: Database) -> None:
    rows = ticket_rows(3000, seed=9)
    insert_tickets(database, rows)
    first = [t.id for t in _walk(database, Queue.audit, Filters())]
    assert first == [t.id for t in _walk(database, Queue.audit, Filters())]
    assert 30 < len(first) < 170  # about 1 in 32 of 3,000
    assert first == sorted(first, reverse=True)  # newest first
    other = [t.id for t in _walk(database, Queue.audit, Filters(seed=5))]
    assert other and set(other) != set(first)
    wanted = set(queries.audit_bytes(0))
    assert all(t[16:18] in wanted for t in first)


def test_bad_queue_requests_name_the_problem(database: Database) -> None:
    with pytest.raises(BadQueueRequestError, match="unknown queue 'lowest'; use one of"):
        queries.parse_queue("lowest")
    with pytest.raises(BadQueueRequestError, match="since must be a date as YYYY-MM-DD"):
        Filters.parse(category=None, version=None, since="yesterday", until=None, seed=None)
    with pytest.raises(BadQueueRequestError, match=r"until \(2026-11-01\) is before since"):
        Filters.parse(
            category=None, version=None, since="2026-11-02", until="2026-11-01", seed=None
        )
    with database.session() as session, pytest.raises(BadQueueRequestError, match="cursor"):
        queries.queue_page(session, Queue.low_confidence, Filters(), threshold=0.7, after="x~y")


def test_token_create_takes_the_review_scope(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    point_cli_at(settings, monkeypatch)
    code, out, err = run_boltit(monkeypatch, capsys, "token", "create", "anna", "--scope", "review")
    assert code == 0, err
    assert out.strip().startswith("boltit_")
    (client,) = ClientFile(settings.clients_path).read()
    assert client.name == "anna" and client.scopes == {Scope.review}
