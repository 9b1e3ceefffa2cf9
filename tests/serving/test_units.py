"""Pure parts of serving: signatures, tokens, auto-apply, canary routing, group commit."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from boltit.core.db import Database
from boltit.core.schema import Ticket, utcnow
from boltit.serving.decision import auto_apply_decision, in_canary
from boltit.serving.security import AuthError, check_webhook, webhook_signature
from boltit.serving.ticket_writer import (
    LoopTicketWriter,
    StoreUnavailableError,
    ThreadTicketWriter,
    TicketWriter,
    ticket_writer,
)


def test_webhook_signature_matches_mlflow_format() -> None:
    body = b'{"entity":"model_version_alias","action":"created"}'
    expected = base64.b64encode(
        hmac.new(b"s3cret", b"d-1.1700000000." + body, hashlib.sha256).digest()
    ).decode()
    assert (
        webhook_signature(secret="s3cret", delivery_id="d-1", timestamp="1700000000", body=body)
        == f"v1,{expected}"
    )


@pytest.mark.parametrize(
    ("secret", "signature", "timestamp", "status"),
    [
        (None, "v1,x", "1700000000", 403),  # webhooks not configured: refused, never open
        ("s", None, "1700000000", 401),  # missing signature
        ("s", "v1,AAAA", "1700000000", 403),  # wrong signature
        ("s", "GOOD", "1699990000", 403),  # correct signature but stale: replay refused
        ("s", "GOOD", "soon", 403),
    ],
)
def test_webhook_refusals(
    secret: str | None, signature: str | None, timestamp: str, status: int
) -> None:
    body = b"{}"
    if signature == "GOOD":
        signature = webhook_signature(secret="s", delivery_id="d", timestamp=timestamp, body=body)
    with pytest.raises(AuthError) as refused:
        check_webhook(
            secret=secret,
            signature=signature,
            timestamp=timestamp,
            delivery_id="d",
            body=body,
            now=1700000000,
        )
    assert refused.value.status == status


def test_webhook_accepts_a_fresh_correct_signature() -> None:
    body = b'{"a": 1}'
    signature = webhook_signature(secret="s", delivery_id="d", timestamp="1700000000", body=body)
    check_webhook(
        secret="s",
        signature=signature,
        timestamp="1700000000",
        delivery_id="d",
        body=body,
        now=1700000100,
    )


def test_auto_apply_decision_says_why() -> None:
    applied, reason = auto_apply_decision(confidence=0.91, threshold=0.75, enabled=True)
    assert applied and reason.startswith("auto-applied") and "0.910" in reason
    applied, reason = auto_apply_decision(confidence=0.6, threshold=0.75, enabled=True)
    assert not applied and reason.startswith("triage: confidence 0.600 < threshold 0.75")
    applied, reason = auto_apply_decision(confidence=0.99, threshold=0.75, enabled=False)
    assert not applied and "turned off" in reason
    applied, _ = auto_apply_decision(confidence=0.75, threshold=0.75, enabled=True)
    assert applied  # the threshold itself auto-applies (>=)


def test_canary_is_sticky_and_close_to_the_percentage() -> None:
    texts = [f"ticket number {i} about a printer" for i in range(4000)]
    first = [in_canary(t, percent=20) for t in texts]
    assert first == [in_canary(t, percent=20) for t in texts]
    share = sum(first) / len(first)
    assert 0.17 < share < 0.23
    assert not any(in_canary(t, percent=0) for t in texts[:50])
    assert all(in_canary(t, percent=100) for t in texts[:50])


def _row(i: int) -> dict[str, object]:
    return {
        "id": f"{i:032x}",
        "text": f"ticket {i}",
        "category": "Hardware",
        "priority": None,
        "confidence": 0.9,
        "model_name": "m",
        "model_version": "1",
        "served_by": "production",
        "latency_ms": 1.0,
        "auto_applied": True,
        "reason": "test",
        "created_at": utcnow(),
    }


WRITERS = [
    pytest.param(LoopTicketWriter, id="on-the-event-loop"),
    pytest.param(ThreadTicketWriter, id="writer-thread"),
]


@pytest.mark.parametrize("writer_type", WRITERS)
def test_group_commit_shares_transactions_and_keeps_every_row(
    database: Database, writer_type: type[TicketWriter]
) -> None:
    committed: list[int] = []
    writer = writer_type(database, after_commit=lambda rows: committed.append(len(rows)))
    writer.start()

    async def many() -> None:
        await asyncio.gather(*(writer.write([_row(i)]) for i in range(300)))

    try:
        asyncio.run(many())
    finally:
        writer.stop()
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 300
    assert writer.rows_written == 300
    assert writer.commits < 300  # concurrent requests shared transactions
    assert sum(committed) == 300 and len(committed) == writer.commits


@pytest.mark.parametrize("writer_type", WRITERS)
def test_failed_group_commit_fails_every_waiter_and_keeps_nothing(
    database: Database, writer_type: type[TicketWriter]
) -> None:
    committed: list[int] = []
    writer = writer_type(database, after_commit=lambda rows: committed.append(len(rows)))
    writer.start()

    async def clash() -> list[BaseException | None]:
        # Same primary key in one group: the whole transaction must roll back, and every
        # request in the group is told so.
        results = await asyncio.gather(
            writer.write([_row(1), _row(1)]), writer.write([_row(2)]), return_exceptions=True
        )
        return list(results)

    try:
        results = asyncio.run(clash())
    finally:
        writer.stop()
    assert all(isinstance(result, StoreUnavailableError) for result in results)
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0
    assert committed == []  # nothing unstored is handed on (to the shadow scorer)


def test_sqlite_commits_on_the_loop_and_server_databases_in_a_thread(
    database: Database, postgres_url: str
) -> None:
    assert isinstance(ticket_writer(database), LoopTicketWriter)
    on_postgres = Database(postgres_url)
    try:
        assert isinstance(ticket_writer(on_postgres), ThreadTicketWriter)
    finally:
        on_postgres.dispose()


def _flood(database: Database, *, checkpoint_seconds: float) -> int:
    """Write 12,000 tickets in groups through the loop writer; the log's size afterwards."""
    writer = LoopTicketWriter(database, checkpoint_seconds=checkpoint_seconds)
    writer.start()

    async def flood() -> None:
        for group in range(240):
            await asyncio.gather(*(writer.write([_row(group * 50 + i)]) for i in range(50)))
            # A service's loop waits on its sockets between passes; without that pause the
            # whole flood can finish before a loaded machine schedules the checkpointer once.
            await asyncio.sleep(0.001)

    try:
        asyncio.run(flood())
        wal = Path(database.engine.url.database or "").with_suffix(".db-wal")
        return wal.stat().st_size
    finally:
        writer.stop()


def test_loop_writer_keeps_the_write_ahead_log_bounded(tmp_path: Path) -> None:
    # The writer never checkpoints on the event loop; the background checkpointer must
    # still copy the log to its end so it restarts instead of growing with every commit.
    checkpointed = Database(f"sqlite:///{tmp_path / 'checkpointed.db'}")
    unattended = Database(f"sqlite:///{tmp_path / 'unattended.db'}")
    try:
        bounded = _flood(checkpointed, checkpoint_seconds=0.02)
        grown = _flood(unattended, checkpoint_seconds=3600)
        with checkpointed.session() as session:
            assert session.scalar(select(func.count()).select_from(Ticket)) == 12_000
    finally:
        checkpointed.dispose()
        unattended.dispose()
    assert bounded < grown / 4, (bounded, grown)


@pytest.mark.postgres
def test_thread_writer_replaces_a_connection_the_server_dropped(postgres_url: str) -> None:
    # The writer keeps one connection (no pool ping per group); when the server ends it,
    # the next group must still commit, as the pool's ping would have made it.
    database = Database(postgres_url)
    writer = ThreadTicketWriter(database)
    writer.start()

    async def write(ticket: int) -> None:
        await writer.write([_row(ticket)])

    try:
        asyncio.run(write(1))
        with database.engine.connect() as connection:
            ended = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).all()
        assert ended  # the writer's connection was among them
        asyncio.run(write(2))
    finally:
        writer.stop()
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 2
    assert writer.commits == 2
    database.dispose()


def test_ticket_ids_are_plain_hex_unique_and_in_creation_order() -> None:
    from boltit.serving.service import new_ticket_id

    ids = [new_ticket_id() for _ in range(2000)]
    assert all(len(i) == 32 and set(i) <= set("0123456789abcdef") for i in ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)  # the primary-key index is appended to, not scattered
