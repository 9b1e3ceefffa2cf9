"""``kill -9`` of a loaded ``boltit serve``: every answered ticket survives, none twice.

A 200 from /classify or /classify/batch promises the ticket is stored. The service is
killed with SIGKILL (no shutdown code runs, nothing is flushed) while clients are
sending, restarted on the same port, and the store is compared with what was answered.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from boltit.core.db import Database
from boltit.core.schema import Ticket
from boltit.core.settings import Settings
from tests.serving.conftest import ServiceProcess, service_env, wait_for

pytestmark = pytest.mark.e2e

CLIENTS = 8
ANSWERED_BEFORE_KILL = 150  # tickets answered 200 before the kill: the load is well under way


@dataclass
class Load:
    """What clients sent and what the service answered 200 for, ticket id -> text."""

    sent: set[str] = field(default_factory=set)
    answered: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


def _client(url: str, number: int, load: Load) -> None:
    """Classify until the service stops answering; every fifth call is a batch of four."""
    with httpx.Client(base_url=url, timeout=30) as http:
        call = 0
        while not load.stop.is_set():
            call += 1
            size = 1 if call % 5 else 4
            texts = [f"kill9 client {number} call {call} item {i}: vpn drops" for i in range(size)]
            with load.lock:
                load.sent.update(texts)
            try:
                if size == 1:
                    answer = http.post("/classify", json={"text": texts[0]})
                    stored = [(answer.json(), texts[0])] if answer.status_code == 200 else []
                else:
                    answer = http.post("/classify/batch", json={"texts": texts})
                    results = answer.json()["results"] if answer.status_code == 200 else []
                    stored = list(zip(results, texts, strict=True))
            except (httpx.HTTPError, ValueError):
                return  # the service is gone (or answered half a body as it died)
            with load.lock:
                load.answered.update({result["ticket_id"]: text for result, text in stored})


def _stored(database: Database) -> list[tuple[str, str]]:
    with database.session() as session:
        return [(row.id, row.text) for row in session.execute(select(Ticket.id, Ticket.text))]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2], ids=["one-worker", "two-workers"])
def test_every_ticket_answered_before_a_kill_9_is_stored_once(
    settings: Settings, production_v1: str, tmp_path: Path, workers: int
) -> None:
    env = service_env(settings)
    first = ServiceProcess(env=env, cwd=tmp_path, workers=workers).start()
    assert first.process is not None
    load = Load()
    clients = [
        threading.Thread(target=_client, args=(first.url, n, load), daemon=True)
        for n in range(CLIENTS)
    ]
    try:
        first.wait_ready()
        for client in clients:
            client.start()
        wait_for(lambda: len(load.answered) >= ANSWERED_BEFORE_KILL, timeout=120, interval=0.01)
        # The whole process group at once: supervisor and workers get no chance to clean up.
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=10)
    finally:
        load.stop.set()
        if first.process.poll() is None:
            os.killpg(first.process.pid, signal.SIGKILL)
    for client in clients:
        client.join(timeout=60)
    assert not any(client.is_alive() for client in clients)
    with load.lock:
        answered = dict(load.answered)
        sent = set(load.sent)
    in_flight = len(sent) - len(answered)

    second = ServiceProcess(env=env, cwd=tmp_path, workers=workers, port=first.port).start()
    try:
        second.wait_ready()  # the store opens after the crash (SQLite recovers its log)
        after = httpx.post(f"{second.url}/classify", json={"text": "after the kill"}, timeout=60)
        assert after.status_code == 200, after.text
    finally:
        second.stop()

    database = Database(settings.database_url, migrate_schema=False)
    try:
        rows = _stored(database)
    finally:
        database.dispose()
    stored = dict(rows)
    missing = {ticket: text for ticket, text in answered.items() if stored.get(ticket) != text}
    assert missing == {}, f"{len(missing)} of {len(answered)} answered tickets were lost"
    twice = [text for text, n in Counter(text for _, text in rows).items() if n > 1]
    assert twice == [], f"stored more than once: {twice[:5]}"
    assert {text for _, text in rows} <= sent | {"after the kill"}  # nothing invented
    assert after.json()["ticket_id"] in stored
    print(
        f"{workers} worker(s): {len(answered)} tickets answered before kill -9, all stored; "
        f"{len(rows) - len(answered) - 1} of {in_flight} unanswered ones stored too"
    )
