"""The automated runbook on real registry versions: disable auto-apply, roll back, never flap."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from mlflow import MlflowClient

from boltit.core import audit, flags
from boltit.core.db import Database
from boltit.core.ports import free_port
from boltit.core.settings import Settings
from boltit.core.vocabulary import AUTO_APPLY_FLAG, PREVIOUS, PRODUCTION, TAG_VALIDATION_STATUS
from boltit.monitoring import incidents
from boltit.monitoring.monitor import run_once
from boltit.monitoring.respond import wait_for_service_version
from boltit.monitoring.rules import Level
from tests.monitoring.conftest import TrainedState, force_promote
from tests.monitoring.tickets import add_tickets

Trained = tuple[Settings, MlflowClient, Database, TrainedState]
GOOD = 0.95  # live accuracy of a healthy version


def _goes_live(
    settings: Settings,
    client: MlflowClient,
    database: Database,
    version: str,
    *,
    n: int,
    accuracy: float,
    seed: int,
    **tickets: Any,
) -> None:
    """``version`` is promoted, then serves ``n`` labelled tickets at ``accuracy``."""
    force_promote(settings, client, database, version)
    add_tickets(database, version=version, n=n, accuracy=accuracy, seed=seed, **tickets)


def _validated(
    client: MlflowClient, name: str, version: str, *, accuracy: float, rows: int = 2000
) -> None:
    """The verdict ``validate`` records on a version that passed (contract 3 tags)."""
    for key, value in {
        TAG_VALIDATION_STATUS: "passed",
        "validation.accuracy": repr(accuracy),
        "validation.evaluation_rows": str(rows),
        "validation.evaluation_set": "model evaluation set",
    }.items():
        client.set_model_version_tag(name, version, key, value)


def _run_metric(client: MlflowClient, name: str, version: str, metric: str) -> float:
    run_id = client.get_model_version(name, version).run_id
    assert run_id is not None
    return float(client.get_run(run_id).data.metrics[metric])


def _serving(client: MlflowClient, name: str) -> dict[str, str]:
    return {k: str(v) for k, v in client.get_registered_model(name).aliases.items()}


def _auto_apply(settings: Settings, database: Database) -> bool:
    with database.session() as session:
        return flags.read_flag(session, AUTO_APPLY_FLAG, default=settings.auto_apply_enabled)


def _actions(database: Database) -> list[str]:
    with database.session() as session:
        return [e.action for e in audit.history(session)]


def test_a_regression_after_a_promotion_is_rolled_back_once(trained: Trained) -> None:
    settings, client, database, _ = trained
    name = settings.model_name
    _goes_live(settings, client, database, "1", n=300, accuracy=GOOD, seed=1)
    _goes_live(settings, client, database, "2", n=120, accuracy=0.3, seed=2)

    first = run_once(settings=settings, database=database, client=client)

    # v2 never passed its gates: what it proved was never accepted, so the runbook's floor
    # holds it, and its accuracy since it went live is far under that floor.
    floor = next(e for e in first.status.evaluations if e.rule == "accuracy_floor")
    assert floor.opens_incident and "never validated" in floor.note
    assert first.response.decision is not None
    assert "never passed its gates" in first.response.decision.reason
    assert first.response.opened and first.response.rolled_back_to == "1"
    assert first.response.verified is True
    assert _serving(client, name)[PRODUCTION] == "1"
    assert _auto_apply(settings, database) is False
    actions = _actions(database)
    # Runbook order: the flag goes off before the alias moves.
    assert actions.index("incident_open") < actions.index("flag_change")
    assert actions.index("flag_change") < len(actions) - 1 - actions[::-1].index("rollback")
    view = incidents.get_incident(database, "latest")
    kinds = [e.kind for e in view.events]
    assert kinds[0] == incidents.ALERT
    assert kinds.index(incidents.AUTO_APPLY_DISABLED) < kinds.index(incidents.ROLLBACK)
    assert kinds.index(incidents.HINT) < kinds.index(incidents.ROLLBACK)
    assert kinds[-2:] == [incidents.VERIFICATION, incidents.STATUS_CHANGE]
    assert view.status == incidents.MITIGATED and view.details["regressed_version"] == "2"
    hints = " | ".join(e.message for e in view.events if e.kind == incidents.HINT)
    assert "v2 went live by promote FORCED" in hints
    assert "drift verdict" in hints and "prediction-log suite" in hints
    assert "evaluation-set recall" in hints  # categories judged against their own recall

    # Later passes see the same bad tickets of v2 but Production is v1: nothing more happens.
    for _ in range(2):
        again = run_once(settings=settings, database=database, client=client)
        assert again.response.incident_id is None and again.response.rolled_back_to is None
    assert _actions(database).count("rollback") == 1
    assert len(incidents.list_incidents(database)) == 1


def test_no_rollback_into_a_version_that_already_regressed(trained: Trained) -> None:
    settings, client, database, _ = trained
    name = settings.model_name
    _goes_live(settings, client, database, "1", n=200, accuracy=GOOD, seed=3)
    _goes_live(settings, client, database, "2", n=120, accuracy=0.3, seed=4)
    assert run_once(settings=settings, database=database, client=client).response.rolled_back_to
    # A human puts v2 back and then v3 on top: previous is now the version that regressed.
    force_promote(settings, client, database, "2")
    force_promote(settings, client, database, "3")
    assert _serving(client, name) == {PRODUCTION: "3", PREVIOUS: "2"}
    add_tickets(database, version="3", n=150, accuracy=0.3, seed=5)

    result = run_once(settings=settings, database=database, client=client)

    assert result.response.opened
    assert result.response.rolled_back_to is None
    assert result.response.decision is not None
    assert "already regressed" in result.response.decision.reason
    assert _serving(client, name)[PRODUCTION] == "3"
    view = incidents.get_incident(database, "latest")
    assert view.events[-1].kind == incidents.ROLLBACK_SKIPPED
    assert view.status == incidents.OPEN


def test_a_stable_model_is_left_alone(trained: Trained) -> None:
    settings, client, database, _ = trained
    name = settings.model_name
    _goes_live(settings, client, database, "1", n=300, accuracy=GOOD, seed=6)
    force_promote(settings, client, database, "3")
    # v3 performs live as well as v1 did: 600 labelled tickets at the same accuracy.
    add_tickets(database, version="3", n=600, accuracy=GOOD, seed=7)

    result = run_once(settings=settings, database=database, client=client)

    assert result.status.sequential is not None and not result.status.sequential.alarm
    assert result.status.incident_alerts() == []
    assert result.response.incident_id is None
    assert _serving(client, name)[PRODUCTION] == "3"
    assert _auto_apply(settings, database) is True
    assert "rollback" not in _actions(database)


def test_a_healthy_model_under_the_runbook_floor_opens_no_incident(trained: Trained) -> None:
    """The issue's case: validated at 0.865, 400 honest labelled tickets at that accuracy."""
    settings, client, database, _ = trained
    name = settings.model_name
    _validated(client, name, "1", accuracy=0.865)
    force_promote(settings, client, database, "1")
    confidence = _run_metric(client, name, "1", "mean_confidence")
    add_tickets(database, version="1", n=400, accuracy=0.865, confidence=confidence, seed=30)

    result = run_once(settings=settings, database=database, client=client)

    floor = next(e for e in result.status.evaluations if e.rule == "accuracy_floor")
    assert floor.level is Level.critical and not floor.opens_incident
    assert "performs as it proved" in floor.note and "v1 proved 0.865" in floor.note
    assert result.status.sequential is not None and not result.status.sequential.alarm
    assert result.status.incident_alerts() == []
    assert result.response.incident_id is None
    assert _auto_apply(settings, database) is True
    assert "incident_open" not in _actions(database)


def test_a_validated_version_that_regresses_is_caught_by_the_sequential_test(
    trained: Trained,
) -> None:
    settings, client, database, _ = trained
    name = settings.model_name
    _validated(client, name, "1", accuracy=0.95)
    _validated(client, name, "3", accuracy=0.95)
    _goes_live(settings, client, database, "1", n=300, accuracy=GOOD, seed=31)
    force_promote(settings, client, database, "3")
    # v3 proved 0.95 and serves 0.80 live: 15 points under what it proved.
    add_tickets(database, version="3", n=400, accuracy=0.80, seed=32)

    result = run_once(settings=settings, database=database, client=client)

    sequential = result.status.sequential
    assert sequential is not None and sequential.alarm and sequential.alarm_at is not None
    assert sequential.alarm_at < 400
    verdict = next(e for e in result.status.evaluations if e.rule == "sequential_regression")
    assert verdict.opens_incident and "v3 proved 0.950 on 2,000 evaluation rows" in verdict.note
    assert result.response.opened and result.response.rolled_back_to == "1"
    assert result.response.decision is not None
    reason = result.response.decision.reason
    assert "sequential test alarmed after" in reason and "labelled tickets" in reason
    assert _auto_apply(settings, database) is False


def test_no_rollback_while_production_performs_as_it_proved(trained: Trained) -> None:
    """An incident on confidence alone turns auto-apply off, but nothing proves a regression
    in accuracy, so the alias stays."""
    settings, client, database, _ = trained
    name = settings.model_name
    _validated(client, name, "1", accuracy=0.95)
    _validated(client, name, "3", accuracy=0.95)
    _goes_live(settings, client, database, "1", n=300, accuracy=0.99, seed=33)
    force_promote(settings, client, database, "3")
    confidence = _run_metric(client, name, "3", "mean_confidence")
    add_tickets(database, version="3", n=300, accuracy=0.95, confidence=confidence - 0.2, seed=34)

    result = run_once(settings=settings, database=database, client=client)

    assert [e.rule for e in result.status.incident_alerts()] == ["mean_confidence"]
    assert result.response.opened and _auto_apply(settings, database) is False
    assert result.response.rolled_back_to is None
    assert result.response.decision is not None
    assert "performs as it proved" in result.response.decision.reason
    assert _serving(client, name)[PRODUCTION] == "3"


def test_a_human_re_enabling_auto_apply_is_recorded_and_respected(trained: Trained) -> None:
    settings, client, database, _ = trained
    _goes_live(settings, client, database, "1", n=200, accuracy=GOOD, seed=8)
    _goes_live(settings, client, database, "2", n=120, accuracy=0.3, seed=9)
    run_once(settings=settings, database=database, client=client)
    with database.session() as session:
        flags.set_flag(session, AUTO_APPLY_FLAG, enabled=True, actor="carol", reason="v1 is back")
    run_once(settings=settings, database=database, client=client)
    assert _auto_apply(settings, database) is True  # the monitor does not fight the human
    with database.session() as session:
        changes = audit.history(session, actions=["flag_change"])
    assert [(e.actor, e.details["to"]) for e in changes if e.details] == [
        ("monitor", False),
        ("carol", True),
    ]


def _two_monitors_at_once(settings: Settings, client: MlflowClient, database: Database) -> None:
    _goes_live(settings, client, database, "1", n=200, accuracy=GOOD, seed=20)
    _goes_live(settings, client, database, "2", n=100, accuracy=0.3, seed=21)
    with ThreadPoolExecutor(max_workers=2) as pool:
        passes = list(
            pool.map(
                lambda actor: run_once(
                    settings=settings, database=database, client=client, actor=actor
                ),
                ["monitor@host-a", "monitor@host-b"],
            )
        )
    assert sorted(p.response.rolled_back_to or "-" for p in passes) == ["-", "1"]
    assert _serving(client, settings.model_name)[PRODUCTION] == "1"
    assert _actions(database).count("rollback") == 1
    assert len(incidents.list_incidents(database)) == 1


def test_two_monitors_at_once_act_once(trained: Trained) -> None:
    settings, client, database, _ = trained
    _two_monitors_at_once(settings, client, database)


@pytest.mark.postgres
def test_two_monitors_at_once_act_once_on_postgres(trained: Trained, postgres_url: str) -> None:
    settings, client, _, _ = trained
    database = Database(postgres_url)
    try:
        _two_monitors_at_once(settings, client, database)
    finally:
        database.dispose()


@pytest.mark.postgres
def test_the_response_on_a_postgres_project_database(trained: Trained, postgres_url: str) -> None:
    settings, client, _, _ = trained
    database = Database(postgres_url)
    try:
        _goes_live(settings, client, database, "1", n=200, accuracy=GOOD, seed=10)
        _goes_live(settings, client, database, "2", n=100, accuracy=0.3, seed=11)
        result = run_once(settings=settings, database=database, client=client)
        assert result.response.rolled_back_to == "1" and result.response.verified
        assert _auto_apply(settings, database) is False
        assert (
            run_once(settings=settings, database=database, client=client).response.incident_id
            is None
        )
    finally:
        database.dispose()


class _Replica(BaseHTTPRequestHandler):
    """A replica's ``/model/version``: swapping (503), then the old version, then the new."""

    answers: ClassVar[list[tuple[int, dict[str, object]]]] = []

    def do_GET(self) -> None:
        status, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


def _served(version: str) -> dict[str, object]:
    return {
        "name": "ticket-classifier",
        "version": version,
        "alias": PRODUCTION,
        "run_id": None,
        "loaded_at": "2026-01-01T00:00:00Z",
    }


@pytest.mark.parametrize(
    ("answers", "seen"),
    [
        ([(503, {"detail": "swapping"}), (200, _served("2")), (200, _served("1"))], "1"),
        # Another shape of answer is not a version: the wait never reads one from it.
        ([(200, {"production": {"version": "1"}})], None),
    ],
)
def test_the_rollback_check_reads_the_replica_s_version_answer(
    answers: list[tuple[int, dict[str, object]]], seen: str | None
) -> None:
    _Replica.answers = list(answers)
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Replica)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        served, waited = wait_for_service_version(url, version="1", timeout=1.5, interval=0.05)
    finally:
        server.shutdown()
        server.server_close()
    assert served == seen
    assert (waited < 1.5) if seen == "1" else (waited == 1.5)
