"""The automated runbook on real registry versions: disable auto-apply, roll back, never flap."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from mlflow import MlflowClient

from boltit import audit, flags
from boltit.db import Database
from boltit.names import AUTO_APPLY_FLAG, PREVIOUS, PRODUCTION
from boltit.settings import Settings
from monitoring import incidents
from monitoring.monitor import run_once
from registry.promote import promote
from tests.monitoring.conftest import TrainedState
from tests.monitoring.tickets import add_tickets

Trained = tuple[Settings, MlflowClient, Database, TrainedState]
GOOD = 0.95  # live accuracy of a healthy version


def _promote(settings: Settings, client: MlflowClient, database: Database, version: str) -> None:
    promote(
        client=client,
        database=database,
        name=settings.model_name,
        version=version,
        actor="alice",
        reason=f"test promotes v{version}",
        force=True,
        settings=settings,
    )


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
    _promote(settings, client, database, "1")
    add_tickets(database, version="1", n=300, accuracy=GOOD, seed=1)
    _promote(settings, client, database, "2")
    add_tickets(database, version="2", n=120, accuracy=0.3, seed=2)

    first = run_once(settings=settings, database=database, client=client)

    assert first.status.sequential is not None and first.status.sequential.alarm
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

    # Later passes see the same bad tickets of v2 but Production is v1: nothing more happens.
    for _ in range(2):
        again = run_once(settings=settings, database=database, client=client)
        assert again.response.incident_id is None and again.response.rolled_back_to is None
    assert _actions(database).count("rollback") == 1
    assert len(incidents.list_incidents(database)) == 1


def test_no_rollback_into_a_version_that_already_regressed(trained: Trained) -> None:
    settings, client, database, _ = trained
    name = settings.model_name
    _promote(settings, client, database, "1")
    add_tickets(database, version="1", n=200, accuracy=GOOD, seed=3)
    _promote(settings, client, database, "2")
    add_tickets(database, version="2", n=120, accuracy=0.3, seed=4)
    assert run_once(settings=settings, database=database, client=client).response.rolled_back_to
    # A human puts v2 back and then v3 on top: previous is now the version that regressed.
    _promote(settings, client, database, "2")
    _promote(settings, client, database, "3")
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
    _promote(settings, client, database, "1")
    add_tickets(database, version="1", n=300, accuracy=GOOD, seed=6)
    _promote(settings, client, database, "3")
    # v3 performs live as well as v1 did: 600 labelled tickets at the same accuracy.
    add_tickets(database, version="3", n=600, accuracy=GOOD, seed=7)

    result = run_once(settings=settings, database=database, client=client)

    assert result.status.sequential is not None and not result.status.sequential.alarm
    assert result.status.critical_quality() == []
    assert result.response.incident_id is None
    assert _serving(client, name)[PRODUCTION] == "3"
    assert _auto_apply(settings, database) is True
    assert "rollback" not in _actions(database)


def test_a_human_re_enabling_auto_apply_is_recorded_and_respected(trained: Trained) -> None:
    settings, client, database, _ = trained
    _promote(settings, client, database, "1")
    add_tickets(database, version="1", n=200, accuracy=GOOD, seed=8)
    _promote(settings, client, database, "2")
    add_tickets(database, version="2", n=120, accuracy=0.3, seed=9)
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
    _promote(settings, client, database, "1")
    add_tickets(database, version="1", n=200, accuracy=GOOD, seed=20)
    _promote(settings, client, database, "2")
    add_tickets(database, version="2", n=100, accuracy=0.3, seed=21)
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
        _promote(settings, client, database, "1")
        add_tickets(database, version="1", n=200, accuracy=GOOD, seed=10)
        _promote(settings, client, database, "2")
        add_tickets(database, version="2", n=100, accuracy=0.3, seed=11)
        result = run_once(settings=settings, database=database, client=client)
        assert result.response.rolled_back_to == "1" and result.response.verified
        assert _auto_apply(settings, database) is False
        assert (
            run_once(settings=settings, database=database, client=client).response.incident_id
            is None
        )
    finally:
        database.dispose()
