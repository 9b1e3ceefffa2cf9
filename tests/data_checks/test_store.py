"""Ticket-store queries behind ``analyze-recent``, ``drift`` windows and ``check-data``,
on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from boltit.core.db import Database
from boltit.core.errors import BadInputError
from boltit.core.settings import Settings
from boltit.data_checks.recent import summarize_recent
from boltit.data_checks.suites import run_prediction_log_suite
from boltit.data_checks.ticket_frames import parse_window, prediction_log
from tests.data_checks.conftest import store_tickets


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Database]:
    if request.param == "sqlite":
        url = settings.database_url
    else:
        url = request.getfixturevalue("postgres_url")
    database = Database(url)
    yield database
    database.dispose()


def test_recent_summary_and_prediction_log(store: Database, good_tickets: pd.DataFrame) -> None:
    now = datetime.now(UTC)
    frame = good_tickets.head(120).assign(confidence=np.linspace(0.2, 0.98, 120))
    store_tickets(store, frame, start=now - timedelta(days=2), spacing=timedelta(minutes=10))
    store_tickets(store, frame.head(10), start=now - timedelta(days=20), prefix="old")

    with store.session() as session:
        summary = summarize_recent(
            session, since=now - timedelta(days=7), low_confidence_below=0.75, lowest=4
        )
        log = prediction_log(session, since=now - timedelta(days=7))

    low = int((frame["confidence"] < 0.75).sum())
    assert summary.volume == 120 and summary.low_confidence == low
    assert summary.low_confidence_share == pytest.approx(low / 120)
    assert [t.id for t in summary.lowest] == ["t000000", "t000001", "t000002", "t000003"]
    assert summary.categories[0].mean_confidence <= summary.categories[-1].mean_confidence
    by_category = frame.groupby("category")["confidence"].mean()
    for category in summary.categories:
        assert category.mean_confidence == pytest.approx(by_category[category.category])
    assert len(log) == 120 and log["created_at"].dt.tz is not None
    known = set(frame["category"])
    assert run_prediction_log_suite(log, known_categories={"1": known}).success


def test_windows_parse_dates_and_datetimes() -> None:
    day = parse_window("2026-10-01..2026-10-31")
    assert day.start == datetime(2026, 10, 1, tzinfo=UTC)
    assert day.end == datetime(2026, 11, 1, tzinfo=UTC)  # END's whole day is included
    moment = parse_window("2026-10-01T08:00..2026-10-01T09:30+00:00")
    assert moment.end - moment.start == timedelta(minutes=90)
    for bad in ("2026-10-01", "2026-10-01..", "yesterday..today", "2026-10-02..2026-10-01"):
        with pytest.raises(BadInputError, match="window"):
            parse_window(bad)
