"""The ``POST /classify`` fast path answers exactly as the FastAPI route does.

Two apps on one registry and ticket store: the service as built (fast path on) and the same
service with every request on the FastAPI route. Each request goes to both; the answers
must match byte for byte apart from the ticket id and the latency, and the fast path must
really have answered the well-formed ones (its own counter) and declined everything else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

import filelock
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select, text

from boltit.core.db import Database
from boltit.core.schema import Ticket, utcnow
from boltit.core.settings import Settings
from boltit.core.tracking import configure_mlflow
from boltit.serving.app import ServingApp, create_app
from boltit.serving.classification import Classification, classification_json
from boltit.serving.schemas import ClassificationPublic
from boltit.serving.ticket_writer import HeldFileLock, TicketInsert
from tests.serving.conftest import (
    MODEL,
    ServiceThread,
    add_client,
    bearer,
    iter_lines,
    register_version,
)

JSON = {"Content-Type": "application/json"}
# What differs between two answers to the same ticket.
_PER_ANSWER = re.compile(rb'"ticket_id":"[0-9a-f]{32}"|"latency_ms":[0-9.e+-]+')


@dataclass
class Pair:
    """The service with its fast path, and the same service answering on the route only."""

    settings: Settings
    database: Database
    fast: TestClient
    route: TestClient

    @property
    def fast_app(self) -> ServingApp:
        app = self.fast.app
        assert isinstance(app, ServingApp)
        return app

    def answered(self) -> int:
        fast_path = self.fast_app.fast_classify
        assert fast_path is not None
        return fast_path.answered

    def rows(self) -> int:
        with self.database.session() as session:
            return int(session.scalar(select(func.count()).select_from(Ticket)) or 0)


@pytest.fixture(scope="module")
def pair(module_settings: Settings, model_dir: Path) -> Iterator[Pair]:
    settings = module_settings.model_copy(update={"insecure_open": True})
    client = configure_mlflow(settings)
    version = register_version(client, model_dir, settings.state_dir)
    client.set_registered_model_alias(MODEL, "Production", version)
    database = Database(settings.database_url)
    route_app = create_app(settings, fast_path=False)
    assert isinstance(route_app, ServingApp) and route_app.fast_classify is None
    try:
        with TestClient(create_app(settings)) as fast, TestClient(route_app) as route:
            yield Pair(settings=settings, database=database, fast=fast, route=route)
    finally:
        database.dispose()


TICKETS = [
    "my laptop does not charge any more",
    "please give me access to the finance shared drive",
    "my screen is broken 😭🔥 please help",
    "printer\x00 jammed\x07\x1b[31m again\r\n\t",
    "ÄÖÜ ß ñ 中文 العربية",
    "\u200b zero-width first, then words",
    "x" * 20_000,
]


@pytest.mark.parametrize("ticket", TICKETS, ids=range(len(TICKETS)))
def test_the_fast_path_answers_with_the_routes_bytes(pair: Pair, ticket: str) -> None:
    body = json.dumps({"text": ticket}).encode()
    answered = pair.answered()
    fast = pair.fast.post("/classify", content=body, headers=JSON)
    route = pair.route.post("/classify", content=body, headers=JSON)
    assert pair.answered() == answered + 1  # the fast path answered, not the route
    assert fast.status_code == route.status_code == 200, fast.text
    assert _PER_ANSWER.sub(b"", fast.content) == _PER_ANSWER.sub(b"", route.content)
    assert list(fast.json()) == list(route.json()) == list(ClassificationPublic.model_fields)
    for answer in (fast, route):
        assert answer.headers["content-type"] == "application/json"
        assert re.fullmatch("[0-9a-f]{32}", answer.headers["x-request-id"])
        with pair.database.session() as session:
            stored = session.get(Ticket, answer.json()["ticket_id"])
            assert stored is not None and stored.text == ticket.replace("\x00", "\ufffd")


DECLINED = [
    pytest.param(b'{"text": ""}', JSON, id="empty"),
    pytest.param(b'{"text": "   \\n\\t "}', JSON, id="whitespace-only"),
    pytest.param(b'{"text": "\\u200b\\ufeff"}', JSON, id="invisible-only"),
    pytest.param(json.dumps({"text": "x" * 20_001}).encode(), JSON, id="over-limit"),
    pytest.param(json.dumps({"text": "y" * 1_000_000}).encode(), JSON, id="one-megabyte"),
    pytest.param(b'{"text": 42}', JSON, id="number"),
    pytest.param(b'{"text": null}', JSON, id="null"),
    pytest.param(b'{"txt": "hello"}', JSON, id="missing-field"),
    pytest.param(b'{"text": "hello", "extra": 1}', JSON, id="unknown-field"),
    pytest.param(b'["hello"]', JSON, id="not-an-object"),
    pytest.param(b'{"text": "hello"', JSON, id="invalid-json"),
    pytest.param(b"", JSON, id="empty-body"),
    pytest.param(b'{"text": "caf\xe9 \xff\xfe"}', JSON, id="non-utf8-bytes"),
    pytest.param(b'{"text": "\\ud800 lone surrogate"}', JSON, id="lone-surrogate"),
    pytest.param(b'{"text": [' + b"[" * 40 + b"]" * 41 + b"}", JSON, id="too-deep"),
    pytest.param(b'{"text": "hello"}', {"Content-Type": "text/plain"}, id="not-json-type"),
    pytest.param(b'{"text": "hello"}', {}, id="no-content-type"),
]


@pytest.mark.parametrize(("body", "headers"), DECLINED)
def test_what_the_fast_path_declines_gets_the_routes_answer(
    pair: Pair, body: bytes, headers: dict[str, str]
) -> None:
    answered, rows = pair.answered(), pair.rows()
    fast = pair.fast.post("/classify", content=body, headers=headers)
    route = pair.route.post("/classify", content=body, headers=headers)
    assert pair.answered() == answered  # handed on to the route
    assert fast.status_code == route.status_code
    if fast.status_code == 200:  # a body FastAPI reads as JSON without the header
        assert _PER_ANSWER.sub(b"", fast.content) == _PER_ANSWER.sub(b"", route.content)
        assert pair.rows() == rows + 2
        return
    assert 400 <= fast.status_code < 500
    assert fast.json() == route.json()
    assert pair.rows() == rows  # nothing half-written


def test_a_chunked_upload_is_handed_to_the_route(pair: Pair) -> None:
    answered = pair.answered()

    def chunks() -> Iterator[bytes]:
        yield b'{"text": "printer '
        yield b'jammed"}'

    answer = pair.fast.post("/classify", content=chunks(), headers=JSON)
    assert answer.status_code == 200, answer.text
    assert pair.answered() == answered


def test_the_callers_plain_request_id_is_kept(pair: Pair) -> None:
    for client in (pair.fast, pair.route):
        kept = client.post("/classify", json={"text": "vpn down"}, headers={"X-Request-ID": "c-7"})
        assert kept.headers["x-request-id"] == "c-7"
        replaced = client.post(
            "/classify", json={"text": "vpn down"}, headers={"X-Request-ID": "not plain!"}
        )
        assert re.fullmatch("[0-9a-f]{32}", replaced.headers["x-request-id"])


def test_every_200_under_concurrency_has_exactly_one_row(
    live_settings: Settings, production_v1: str, database: Database
) -> None:
    settings = live_settings.model_copy(update={"insecure_open": True})
    texts = [f"ticket {i}: the vpn drops every {i % 7 + 1} minutes" for i in range(240)]
    with ServiceThread(settings) as running, httpx.Client(base_url=running.url) as http:

        def classify(ticket: str) -> httpx.Response:
            return http.post("/classify", json={"text": ticket}, timeout=60)

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(classify, texts))
        metrics = http.get("/metrics").text
        fast_path = running.app.fast_classify
        assert fast_path is not None
        answered = fast_path.answered
    assert [a.status_code for a in answers] == [200] * len(texts)
    assert answered == len(texts)
    ids = [a.json()["ticket_id"] for a in answers]
    assert all(a.json()["model_version"] == production_v1 for a in answers)
    with database.session() as session:
        stored = dict(session.execute(select(Ticket.id, Ticket.text)).tuples().all())
    assert len(stored) == len(texts) and sorted(stored) == sorted(ids)
    assert [stored[i] for i in ids] == texts
    counted = [
        line
        for line in iter_lines(metrics)
        if line.startswith('boltit_requests_total{endpoint="/classify",status="200"}')
    ]
    assert counted and float(counted[0].split()[-1]) == len(texts)


def test_the_fast_path_checks_scopes_as_the_route_does(
    live_settings: Settings, production_v1: str
) -> None:
    secure = live_settings.model_copy(update={"insecure_open": False})
    classify_token = add_client(secure, "classifier", "classify")
    read_token = add_client(secure, "reader", "read")
    with (
        TestClient(create_app(secure)) as fast,
        TestClient(create_app(secure, fast_path=False)) as route,
    ):
        fast_app = fast.app
        assert isinstance(fast_app, ServingApp) and fast_app.fast_classify is not None
        for headers in (
            {},
            bearer("not-a-token"),
            bearer(read_token),
            {"Authorization": f"Basic {classify_token}"},
        ):
            refused = fast.post("/classify", json={"text": "vpn down"}, headers=headers)
            expected = route.post("/classify", json={"text": "vpn down"}, headers=headers)
            assert refused.status_code == expected.status_code
            assert refused.status_code in (401, 403)
            assert refused.json() == expected.json()
        assert fast_app.fast_classify.answered == 0
        allowed = fast.post("/classify", json={"text": "vpn down"}, headers=bearer(classify_token))
        assert allowed.status_code == 200, allowed.text
        assert fast_app.fast_classify.answered == 1


@pytest.mark.parametrize(
    "answer",
    [
        Classification("a" * 32, "Hardware", "P1", 0.9372201027225125, "3", True, "ok", 0.241),
        Classification("b" * 32, "Access", None, 1.0, "12", False, 'triage: é "q" \\', 12.0),
        Classification("c" * 32, "Pay—roll", "P4", 1e-07, "1", False, "x\u2028y\x00", 0.001),
        Classification("d" * 32, "中文", None, 0.30000000000000004, "7", True, "😭", 1234.5),
    ],
)
def test_the_answer_encodes_as_the_response_model_does(answer: Classification) -> None:
    assert [f.name for f in fields(Classification)] == list(ClassificationPublic.model_fields)
    public = ClassificationPublic.model_validate(
        {f.name: getattr(answer, f.name) for f in fields(Classification)}
    )
    assert classification_json(answer) == public.model_dump_json().encode()


def _ticket_row(
    ticket_id: str, *, applied: bool, priority: str | None, at: datetime
) -> dict[str, object]:
    return {
        "id": ticket_id,
        "text": "hé \ufffd tab\t",
        "category": "Hardware",
        "priority": priority,
        "confidence": 0.9123456789,
        "model_name": MODEL,
        "model_version": "3",
        "served_by": "production",
        "latency_ms": 0.25,
        "auto_applied": applied,
        "reason": "auto-applied: confidence 0.912 >= threshold 0.75",
        "created_at": at,
    }


def test_the_prepared_insert_stores_what_sqlalchemy_stores(database: Database) -> None:
    # Rows 0 and 2, 1 and 3 differ only in their id; one timestamp has no microseconds.
    times = [datetime(2026, 12, 1, 9, 0, 0, 0, tzinfo=UTC), utcnow()]
    rows = [
        _ticket_row(
            f"{i:032x}", applied=bool(i % 2), priority=None if i % 2 else "P2", at=times[i % 2]
        )
        for i in range(4)
    ]
    with database.engine.begin() as connection:
        connection.execute(insert(Ticket), rows[:2])
    statement = TicketInsert(database.engine.dialect)
    raw = database.engine.raw_connection()
    try:
        raw.cursor().executemany(statement.sql, statement.parameters(rows[2:]))
        raw.commit()
    finally:
        raw.close()
    with database.engine.connect() as connection:
        stored = connection.execute(text("SELECT * FROM tickets ORDER BY id")).all()
    by_core, by_statement = stored[:2], stored[2:]
    for core, direct in zip(by_core, by_statement, strict=True):
        # Same values in the same stored form (timestamps as text, booleans as integers).
        assert [type(v) for v in core] == [type(v) for v in direct]
        assert core[1:] == direct[1:]
    with database.session() as session:
        read = {t.id: t for t in session.scalars(select(Ticket))}
    for row in rows:
        ticket = read[str(row["id"])]
        assert ticket.created_at == row["created_at"]
        assert ticket.auto_applied is row["auto_applied"]
        assert ticket.priority == row["priority"]
        assert ticket.feedback_new_category is False


def test_the_held_write_lock_excludes_other_writers(database: Database) -> None:
    path = database.write_lock_path
    assert path is not None
    held = HeldFileLock(path)
    other = filelock.FileLock(path, timeout=0.2)
    try:
        with held, pytest.raises(filelock.Timeout):
            other.acquire()
        with other:  # released: the next writer gets it at once
            pass
        with held:  # and the held descriptor can take it again
            pass
    finally:
        held.close()
