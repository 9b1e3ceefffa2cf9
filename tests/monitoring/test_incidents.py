"""Incident storage and the post-incident review rendered from its timeline."""

from __future__ import annotations

from datetime import timedelta

import pytest

from boltit.core import audit
from boltit.core.db import Database
from boltit.core.errors import BadInputError, NotFoundError
from boltit.core.schema import Incident, utcnow
from boltit.monitoring import incidents, report


def _incident(database: Database) -> int:
    opened = utcnow()
    with database.session() as session:
        incident = incidents.open_incident(
            session,
            title="Model regression: ticket-classifier v2: sequential_regression",
            model_name="ticket-classifier",
            model_version="2",
            actor="monitor",
            details={
                "impact": {
                    "version": "2",
                    "promoted_at": (opened - timedelta(minutes=30)).isoformat(),
                    "tickets": 400,
                    "labelled": 200,
                    "accuracy": 0.4,
                    "auto_applied": 120,
                    "accuracy_before": 0.95,
                },
                "detection": {
                    "sequential_alarm_at": 14,
                    "baseline": 0.95,
                    "baseline_source": "validation accuracy of previous v1",
                },
            },
        )
        opened = incident.opened_at  # the timeline is relative to the recorded opening
        steps = [
            (incidents.ALERT, "sequential_regression = 12.1 > 10 (critical, 200 observations)", {}),
            (incidents.AUTO_APPLY_DISABLED, "auto-apply disabled", {}),
            (
                incidents.HINT,
                "v2 went live by promote FORCED (gates bypassed) by alice 30 min ago (from v1)",
                {"forced": True, "to_version": "2", "actor": "alice"},
            ),
            (incidents.ROLLBACK, "rolled back ticket-classifier from v2 to v1", {"ok": True}),
            (incidents.VERIFICATION, "rollback to v1 verified", {"ok": True}),
        ]
        for n, (kind, message, details) in enumerate(steps):
            incidents.add_event(
                session,
                incident,
                kind=kind,
                message=message,
                details=details,
                at=opened + timedelta(seconds=n * 2),
            )
        incidents.update_details(incident, rolled_back_to="1", regressed_version="2")
        return incident.id


def test_an_incident_keeps_its_timeline_in_order_and_is_audited(database: Database) -> None:
    number = _incident(database)
    view = incidents.get_incident(database, number)
    assert [e.kind for e in view.events][:2] == [incidents.ALERT, incidents.AUTO_APPLY_DISABLED]
    assert view.details["rolled_back_to"] == "1"
    assert incidents.get_incident(database, "latest").id == number
    with database.session() as session:
        opened = audit.history(session, actions=["incident_open"])
    assert opened and opened[-1].details == {"incident": number, "severity": "SEV-2"}


def test_the_review_follows_the_runbook_template(database: Database) -> None:
    view = incidents.get_incident(database, _incident(database))
    text = report.render_review(view)
    for heading in (
        "## Post-Incident Review: Model Regression",
        "**Date:**",
        "**Duration:** 8 s",
        "**Impact:**",
        "**Root Cause:**",
        "**Timeline:**",
        "**Action Items:**",
        "**What Went Well:**",
        "**What Can Improve:**",
    ):
        assert heading in text
    assert "v2 served 400 tickets" in text and "accuracy 40.0%" in text
    assert "120 categories auto-applied, about 72 of them wrong" in text
    assert "Recent model deployment" in text and "rolling back to v1" in text
    assert "Review why v2 was promoted with --force" in text
    assert "sequential test alarmed after 14 labelled tickets" in text
    assert "Auto-apply disabled 2 s after the alert" in text
    # The timeline keeps the order things happened in.
    assert (
        text.index("Alert triggered") < text.index("Auto-apply disabled:") < text.index("Rollback:")
    )


def test_resolving_closes_the_incident(database: Database) -> None:
    number = _incident(database)
    with database.session() as session:
        row = session.get(Incident, number)
        assert row is not None
        incidents.set_status(session, row, status=incidents.RESOLVED, actor="bob", note="fixed")
        assert (
            incidents.active_incident(session, model_name="ticket-classifier", model_version="2")
            is None
        )
    view = incidents.get_incident(database, number)
    assert view.status == "resolved" and view.closed_at is not None
    assert "(status:" not in report.render_review(view)


def test_unknown_references_are_refused(database: Database) -> None:
    with pytest.raises(NotFoundError, match="no incident"):
        incidents.get_incident(database, "latest")
    with pytest.raises(NotFoundError, match="does not exist"):
        incidents.get_incident(database, 42)
    with pytest.raises(BadInputError, match="number or 'latest'"):
        incidents.get_incident(database, "yesterday")
    number = _incident(database)
    with database.session() as session:
        row = session.get(Incident, number)
        assert row is not None
        with pytest.raises(BadInputError, match="unknown incident status"):
            incidents.set_status(session, row, status="closed-ish", actor="x")


@pytest.mark.postgres
def test_incidents_and_reviews_on_postgres(postgres_url: str) -> None:
    database = Database(postgres_url)
    try:
        number = _incident(database)
        view = incidents.get_incident(database, "latest")
        assert view.id == number and len(view.events) == 5
        assert "**Duration:** 8 s" in report.render_review(view)
    finally:
        database.dispose()
