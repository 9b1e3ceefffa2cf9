"""The rollout engine on a real project database and a real MLflow registry.

Tickets are written the way serving writes them (its ticket writer), on both sides of the
canary: ``canary`` rows of the challenger, ``canary-fallback`` rows where it raised and
Production answered, ``production`` rows of the champion.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import pytest
from mlflow import MlflowClient
from pydantic import SecretStr
from sqlalchemy.exc import IntegrityError

from boltit.core import audit, flags
from boltit.core.db import Database
from boltit.core.errors import BadInputError, GateFailedError, NotFoundError
from boltit.core.schema import Rollout, utcnow
from boltit.core.settings import Settings
from boltit.core.vocabulary import (
    CHALLENGER,
    PRODUCTION,
    TAG_VALIDATION_STATUS,
    VALIDATION_FAILED,
)
from boltit.monitoring import incidents
from boltit.monitoring.rollout import look, run_rollout, start_rollout
from boltit.monitoring.rollout_plan import RolloutPlan
from boltit.monitoring.rollout_steps import ROLLOUT_ABORTED, RolloutTarget, stop_rollout
from boltit.monitoring.rollout_store import RolloutRunningError
from boltit.registry.lookup import aliases
from tests.console_script import point_cli_at, run_boltit
from tests.monitoring.conftest import TrainedState, force_promote
from tests.monitoring.receiver import receiver
from tests.monitoring.tickets import CATEGORIES, send_feedback, store_tickets, ticket_row

Trained = tuple[Settings, MlflowClient, Database, TrainedState]
ROUTING_KEY = "R0UT1NGKEY0123456789012345678901"
PLAN = RolloutPlan(steps=(5.0, 25.0, 50.0, 100.0), interval_seconds=60.0, min_rows=20)


def _validated(client: MlflowClient, name: str, version: str) -> None:
    """The tag ``validate`` leaves on a version that passed (what ``promote`` reads)."""
    client.set_model_version_tag(name, version, TAG_VALIDATION_STATUS, "passed")


def _target(settings: Settings, client: MlflowClient, database: Database) -> RolloutTarget:
    return RolloutTarget(
        settings=settings, database=database, client=client, name=settings.model_name, actor="bob"
    )


def _serve(
    database: Database,
    *,
    version: str,
    served_by: str,
    n: int,
    start: datetime,
    right: float = 0.9,
    labelled: int = 0,
    latency_ms: float = 20.0,
) -> None:
    """``n`` stored tickets of one side; the first ``labelled`` get the agent's label, a
    share ``right`` of them agreeing with the answer."""
    rows: list[dict[str, Any]] = []
    for index in range(n):
        category = CATEGORIES[index % len(CATEGORIES)]
        row = ticket_row(
            text=f"{served_by} ticket {index} about {category}",
            category=category,
            confidence=0.9,
            version=version,
            created_at=start + timedelta(milliseconds=index),
            latency_ms=latency_ms,
        )
        row["served_by"] = served_by
        if served_by != "production":
            row["auto_applied"] = False  # canary tickets are never auto-applied
        rows.append(row)
    store_tickets(database, rows)
    labels = []
    for index, row in enumerate(rows[:labelled]):
        agrees = index < round(right * labelled)
        wrong = next(c for c in CATEGORIES if c != row["category"])
        labels.append((row["id"], row["category"] if agrees else wrong))
    send_feedback(database, labels)


def _canary(settings: Settings, database: Database) -> float:
    with database.session() as session:
        values = flags.read_values(session, defaults=flags.defaults_from(settings))
    return values.canary_percent


def _actions(database: Database) -> list[str]:
    with database.session() as session:
        return [e.action for e in audit.history(session) if e.action.startswith("rollout_")]


def test_a_rollout_is_refused_before_its_gates_beside_another_and_of_the_champion(
    trained: Trained,
) -> None:
    settings, client, database, _ = trained
    name = settings.model_name
    target = _target(settings, client, database)
    with pytest.raises(BadInputError, match="no Production version"):
        _validated(client, name, "3")
        start_rollout(target, version="3", plan=PLAN)
    force_promote(settings, client, database, "1")
    with pytest.raises(GateFailedError, match=r"version 2 has not passed its gates"):
        start_rollout(target, version="2", plan=PLAN)
    _validated(client, name, "1")
    with pytest.raises(BadInputError, match="already serves"):
        start_rollout(target, version="1", plan=PLAN)
    assert _canary(settings, database) == 0.0 and CHALLENGER not in aliases(client, name=name)

    rollout = start_rollout(target, version="3", plan=PLAN, reason="new quarter's model")
    assert rollout.status == "running" and rollout.percent == 5.0
    assert rollout.champion_version == "1"
    assert aliases(client, name=name)[CHALLENGER] == "3"
    assert _canary(settings, database) == 5.0
    _validated(client, name, "2")
    with pytest.raises(RolloutRunningError, match=f"rollout {rollout.id} of v3 is already"):
        start_rollout(target, version="2", plan=PLAN)
    # The database itself holds the line, whatever a racing process checked before.
    with pytest.raises(IntegrityError), database.session() as session:
        row = session.get_one(Rollout, rollout.id)
        session.add(
            Rollout(
                model_name=name,
                version="2",
                steps=[100.0],
                step_index=0,
                percent=0.0,
                interval_seconds=1.0,
                min_rows=1,
                status="running",
                running_model=name,
                actor="mallory",
                evidence={},
            )
        )
        assert row.status == "running"
    assert _actions(database) == ["rollout_start"]


def _abort_scenario(settings: Settings, client: MlflowClient, database: Database) -> None:
    name = settings.model_name
    force_promote(settings, client, database, "1")
    _validated(client, name, "3")
    with receiver() as pager:
        paging = settings.model_copy(
            update={
                "slack_webhook_url": SecretStr(f"{pager.url}/slack"),
                "pagerduty_routing_key": SecretStr(ROUTING_KEY),
                "pagerduty_url": f"{pager.url}/pagerduty",
            }
        )
        target = _target(paging, client, database)
        rollout = start_rollout(target, version="3", plan=PLAN)
        start = utcnow()
        # The challenger raised on every one of its tickets: Production answered them.
        _serve(database, version="1", served_by="canary-fallback", n=8, start=start)
        _serve(database, version="1", served_by="production", n=150, start=start)
        seen = look(target, rollout.id)
        assert seen.outcome == "aborted", seen.verdict
        triggers = pager.bodies("/pagerduty")
        slack = pager.bodies("/slack")

    assert seen.verdict is not None and seen.verdict.signal == "error_rate"
    ended = seen.rollout
    assert ended.status == "aborted" and ended.step_index == 0 and ended.percent == 0.0
    assert ended.reason is not None and ended.reason.startswith("regression at 5%: error rate")
    assert "8/8 (100.0%)" in ended.reason and "Fisher p =" in ended.reason
    assert ended.history[-1]["verdict"]["action"] == "abort"
    assert _canary(settings, database) == 0.0
    assert _actions(database) == ["rollout_start", "rollout_abort"]

    assert ended.incident_id is not None
    incident = incidents.get_incident(database, ended.incident_id)
    dedup = f"boltit/{name}/incident-{incident.id}"
    assert incident.model_version == "3" and "aborted at 5%" in incident.title
    assert [body["event_action"] for body in triggers] == ["trigger"]
    assert triggers[0]["dedup_key"] == dedup and triggers[0]["routing_key"] == ROUTING_KEY
    assert "canary back to 0%" in triggers[0]["payload"]["summary"]
    assert len(slack) == 1 and f"Incident #{incident.id} opened" in slack[0]["text"]
    kinds = [event.kind for event in incident.events]
    assert kinds[0] == ROLLOUT_ABORTED and kinds.count(incidents.NOTIFICATION) == 2
    paged = [e for e in incident.events if e.details.get("channel") == "pagerduty"]
    assert paged[0].details["ok"] and paged[0].details["dedup_key"] == dedup
    # Nothing more happens to an ended rollout, and the model is free for another.
    assert look(target, ended.id).outcome == "stopped"
    assert start_rollout(target, version="3", plan=PLAN).status == "running"


def test_a_canary_that_errors_is_aborted_at_its_first_step_with_a_page(trained: Trained) -> None:
    settings, client, database, _ = trained
    _abort_scenario(settings, client, database)


@pytest.mark.postgres
def test_the_abort_on_a_postgres_project_database(trained: Trained, postgres_url: str) -> None:
    settings, client, _, _ = trained
    database = Database(postgres_url)
    try:
        _abort_scenario(settings, client, database)
    finally:
        database.dispose()


def test_a_canary_that_is_wrong_on_labelled_tickets_is_aborted(trained: Trained) -> None:
    settings, client, database, _ = trained
    force_promote(settings, client, database, "1")
    _validated(client, settings.model_name, "3")
    target = _target(settings, client, database)
    rollout = start_rollout(target, version="3", plan=PLAN)
    start = utcnow()
    _serve(database, version="3", served_by="canary", n=80, start=start, right=0.4, labelled=80)
    _serve(database, version="1", served_by="production", n=400, start=start, labelled=400)
    seen = look(target, rollout.id)
    assert seen.outcome == "aborted"
    assert seen.verdict is not None and seen.verdict.signal == "accuracy"
    assert "canary 32/80 right vs Production 360/400" in seen.verdict.reason


def _next_step(target: RolloutTarget, rollout_id: int, *, version: str, champion: str) -> Any:
    """Serve a healthy step's tickets, then look once its interval has passed."""
    with target.database.session() as session:
        row = session.get_one(Rollout, rollout_id)
        since, interval = row.step_started_at, row.interval_seconds
    start = utcnow()
    _serve(target.database, version=version, served_by="canary", n=30, start=start, labelled=30)
    _serve(target.database, version=champion, served_by="production", n=60, start=start)
    return look(target, rollout_id, now=since + timedelta(seconds=interval + 1))


def test_a_healthy_rollout_advances_step_by_step_and_promotes_through_the_gates(
    trained: Trained,
) -> None:
    settings, client, database, _ = trained
    name = settings.model_name
    force_promote(settings, client, database, "1")
    _validated(client, name, "3")
    target = _target(settings, client, database)
    plan = replace(PLAN, steps=(10.0, 50.0, 100.0))
    rollout = start_rollout(target, version="3", plan=plan)

    # Before its interval, a step holds however good it looks.
    start = utcnow()
    _serve(database, version="3", served_by="canary", n=30, start=start)
    held = look(target, rollout.id)
    assert held.outcome == "running" and held.verdict is not None
    assert "s of the interval" in held.verdict.reason and _canary(settings, database) == 10.0

    shares = []
    for _ in range(2):
        seen = _next_step(target, rollout.id, version="3", champion="1")
        assert seen.outcome == "advanced", seen.verdict
        shares.append(_canary(settings, database))
    assert shares == [50.0, 100.0]
    final = _next_step(target, rollout.id, version="3", champion="1")
    assert final.outcome == "finished" and final.promoted is True
    assert final.rollout.status == "finished" and "promoted v3" in (final.rollout.reason or "")
    assert [entry["verdict"]["action"] for entry in final.rollout.history] == ["advance"] * 3
    assert aliases(client, name=name)[PRODUCTION] == "3"
    assert CHALLENGER not in aliases(client, name=name)
    assert _canary(settings, database) == 0.0
    assert _actions(database) == ["rollout_start", "rollout_step", "rollout_step", "rollout_finish"]
    with database.session() as session:
        promotions = audit.history(session, actions=["promote"])
    assert promotions[-1].to_version == "3" and not promotions[-1].forced
    assert "gradual rollout" in (promotions[-1].reason or "")


def test_a_gate_refusal_at_the_end_leaves_production_unchanged(trained: Trained) -> None:
    settings, client, database, _ = trained
    name = settings.model_name
    force_promote(settings, client, database, "1")
    _validated(client, name, "3")
    target = _target(settings, client, database)
    rollout = start_rollout(target, version="3", plan=replace(PLAN, steps=(100.0,)))
    # Re-validated meanwhile (against a new gate config) and failed: promote must refuse.
    client.set_model_version_tag(name, "3", TAG_VALIDATION_STATUS, VALIDATION_FAILED)
    final = _next_step(target, rollout.id, version="3", champion="1")
    assert final.outcome == "finished" and final.promoted is False
    assert "promotion was refused (Production unchanged)" in (final.rollout.reason or "")
    assert aliases(client, name=name)[PRODUCTION] == "1"
    assert _canary(settings, database) == 0.0
    with database.session() as session:
        finish = audit.history(session, actions=["rollout_finish"])[-1]
    assert finish.details is not None and finish.details["promoted"] is False


def test_an_abort_from_another_shell_stops_the_running_loop(trained: Trained) -> None:
    settings, client, database, _ = trained
    force_promote(settings, client, database, "1")
    _validated(client, settings.model_name, "3")
    target = _target(settings, client, database)
    with pytest.raises(NotFoundError, match="no rollout"):
        stop_rollout(target, reason="nothing runs")
    rollout = start_rollout(target, version="3", plan=PLAN)
    looks: list[str] = []
    elsewhere = replace(target, actor="carol")

    def other_shell(seconds: float) -> None:
        # While the loop waits for its next look, someone aborts from another shell.
        assert seconds == pytest.approx(PLAN.interval_seconds / 5)
        stop_rollout(elsewhere, reason="customer escalation")

    last = run_rollout(
        target, rollout.id, progress=lambda seen: looks.append(seen.outcome), sleep=other_shell
    )
    assert looks == ["running", "stopped"]
    assert last.rollout.status == "aborted"
    assert last.rollout.reason == "aborted by carol: customer escalation"
    assert last.rollout.incident_id is None  # a human's abort pages nobody
    assert _canary(settings, database) == 0.0
    with database.session() as session:
        abort = audit.history(session, actions=["rollout_abort"])[-1]
    assert abort.actor == "carol"


def test_the_rollout_commands_report_and_refuse_clearly(
    trained: Trained, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, client, database, _ = trained
    point_cli_at(settings, monkeypatch)
    boltit = partial(run_boltit, monkeypatch, capsys)
    code, _, err = boltit("rollout", "start", "3", "--interval", "10 minutes")
    assert code == 2 and "--interval must be a duration like 30s, 10m or 1h" in err
    code, _, err = boltit("rollout", "start", "3", "--steps", "5,25")
    assert code == 2 and "--steps must end at 100" in err
    code, _, err = boltit("rollout", "status")
    assert code == 2 and "has had no gradual rollout yet" in err
    code, _, err = boltit("rollout", "abort")
    assert code == 2 and "needs a --reason" in err
    code, _, err = boltit("rollout", "abort", "--reason", "test")
    assert code == 2 and "no rollout of ticket-classifier is running" in err

    force_promote(settings, client, database, "1")
    _validated(client, settings.model_name, "3")
    rollout = start_rollout(_target(settings, client, database), version="3", plan=PLAN)
    code, out, _ = boltit("rollout", "status")
    assert code == 0, out
    assert f"rollout {rollout.id}: v3 vs Production v1 of ticket-classifier, running" in out
    assert "now at 5%" in out
    code, out, _ = boltit("rollout", "abort", "--reason", "wrong version", "--actor", "dave")
    assert code == 0 and f"rollout {rollout.id} of v3 aborted" in out
    code, out, _ = boltit("rollout", "status")
    assert "aborted" in out and "reason: aborted by dave: wrong version" in out
    assert _canary(settings, database) == 0.0
