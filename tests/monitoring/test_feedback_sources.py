"""A flood of labels from one client is reported and audited, never acted on; anonymous
labels are counted as ignored."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from boltit.app.cli import build_app
from boltit.core import audit
from boltit.core.db import Database
from boltit.core.schema import Ticket, utcnow
from boltit.core.settings import Settings
from boltit.core.tickets import add_feedback
from boltit.monitoring.feedback_sources import FEEDBACK_FLOOD, check_feedback, find_floods
from tests.monitoring.tickets import add_tickets

HOUR = timedelta(hours=1)


def _labels(client: str, n: int, *, start: pd.Timestamp, every: timedelta) -> pd.DataFrame:
    return pd.DataFrame({"client": [client] * n, "at": [start + i * every for i in range(n)]})


def test_a_burst_over_the_share_is_a_flood_and_steady_feedback_is_not() -> None:
    start = pd.Timestamp("2026-11-20T08:00:00Z")
    steady = _labels("help-desk", 850, start=start, every=timedelta(minutes=10))  # ~6 days
    burst = _labels("scripted", 150, start=start + timedelta(days=2), every=timedelta(seconds=2))
    labels = pd.concat([steady, burst], ignore_index=True)

    # 150 of 1,000 within the hour: a flood at a 10 % share, not at 25 %.
    floods = find_floods(labels, share=0.10, window=HOUR, minimum=100)
    assert [(f.client, f.count, f.window_total) for f in floods] == [("scripted", 150, 1000)]
    assert floods[0].started_at == (start + timedelta(days=2)).to_pydatetime()
    assert "not acted on" in floods[0].describe() and "boltit token revoke" in floods[0].describe()
    assert find_floods(labels, share=0.25, window=HOUR, minimum=100) == []
    # The same burst spread over two days is not one.
    spread = _labels("scripted", 150, start=start, every=timedelta(minutes=20))
    spread_labels = pd.concat([steady, spread], ignore_index=True)
    assert find_floods(spread_labels, share=0.10, window=HOUR, minimum=100) == []
    # A small pilot's first hour is everything it has, but too few labels to call a flood.
    few = _labels("help-desk", 30, start=start, every=timedelta(minutes=1))
    assert find_floods(few, share=0.25, window=HOUR, minimum=100) == []
    assert find_floods(few.iloc[:0], share=0.25, window=HOUR, minimum=1) == []


def _label_all(database: Database, *, client: str | None, category: str) -> None:
    with database.session() as session:
        ids = session.scalars(select(Ticket.id).where(Ticket.feedback_category.is_(None))).all()
        for ticket_id in ids:
            add_feedback(session, ticket_id, category=category, client=client)


@pytest.mark.integration  # `monitor status` opens the MLflow store
def test_monitor_status_reports_a_flood_and_ignored_labels_and_audits_once(
    settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_tickets(database, version="1", n=40, accuracy=1.0, labelled=0.0, seed=1)
    _label_all(database, client=None, category="Hardware")  # anonymous: ignored
    add_tickets(database, version="1", n=120, accuracy=1.0, labelled=0.0, seed=2)
    _label_all(database, client="scripted", category="Access")
    flooding = settings.model_copy(update={"feedback_flood_min": 100})

    since = utcnow() - timedelta(days=7)
    sources = check_feedback(database, settings=flooding, since=since)
    assert sources.per_client == {"scripted": 120} and sources.anonymous == 40
    assert [f.client for f in sources.floods] == ["scripted"]
    with database.session() as session:
        assert audit.history(session, actions=[FEEDBACK_FLOOD]) == []  # reading audits nothing

    for _ in range(2):
        check_feedback(database, settings=flooding, since=since, actor="monitor")
    with database.session() as session:
        recorded = audit.history(session, actions=[FEEDBACK_FLOOD])
    assert len(recorded) == 1 and recorded[0].actor == "monitor"
    assert recorded[0].details is not None and recorded[0].details["count"] == 120

    monkeypatch.setenv("BOLTIT_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("BOLTIT_FEEDBACK_FLOOD_MIN", "100")
    monkeypatch.setenv("COLUMNS", "200")
    status = CliRunner().invoke(build_app(), ["monitor", "status"])
    assert status.exit_code == 0, status.output
    assert "feedback flood: client 'scripted' sent 120" in status.output
    assert "40 labels from callers without a token were ignored" in status.output
