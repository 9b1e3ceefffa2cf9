"""Guarded rollback targets: a version an incident found regressed, or that failed its gates,
does not come back without --force --reason, and every attempt is in the history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from mlflow import MlflowClient
from sqlalchemy.orm import Session

from boltit.core import audit
from boltit.core.db import Database
from boltit.core.errors import BadInputError, GateFailedError
from boltit.core.schema import Incident, utcnow
from boltit.core.vocabulary import PREVIOUS, PRODUCTION
from boltit.monitoring import incidents
from boltit.registry.history import registry_history
from boltit.registry.lookup import aliases
from boltit.registry.rollback import rollback
from tests.registry.conftest import TrainedVersions, clone_version, serve_in_turn


def _monitor_rolls_back(target: dict[str, Any], *, bad: str, to: str) -> int:
    """What the monitor records when ``bad`` regressed (monitoring/respond.py), for real."""
    database, name = target["database"], target["name"]

    def step(
        session: Session,
        incident: Incident,
        step: str,
        marks: dict[str, str],
        extra: dict[str, str],
    ) -> None:
        """One step as respond.py takes it: marks on the incident, a row in the history."""
        incidents.update_details(incident, **marks)
        audit.record(
            session,
            action="incident_action",
            actor="monitor",
            model_name=name,
            from_version=bad,
            reason=f"incident #{incident.id}: {step}",
            details={"incident": incident.id, "step": step, **extra},
        )

    with database.session() as session:
        incident = incidents.open_incident(
            session, title="accuracy dropped", model_name=name, model_version=bad, actor="monitor"
        )
        regressed = {"regressed_version": bad}
        step(session, incident, "mark_regressed", regressed, regressed)
        number = incident.id
    # The monitor's own rollback targets previous, which no guard stops.
    rollback(
        **target, actor="monitor", to_version=to, reason=f"incident #{number}: v{bad} regressed"
    )
    with database.session() as session:
        opened = session.get(Incident, number)
        assert opened is not None
        step(session, opened, "rollback", {"rolled_back_to": to}, {"from": bad, "to": to})
    return number


def _rollbacks(database: Database, name: str) -> list[tuple[str | None, str, bool, list[str]]]:
    return [
        (
            e.to_version,
            (e.details or {}).get("outcome", ""),
            e.forced,
            [g["guard"] for g in (e.details or {}).get("guards", [])],
        )
        for e in registry_history(database, model_name=name)
        if e.action == "rollback"
    ]


def _three_served(target: dict[str, Any], trained_versions: TrainedVersions) -> tuple[str, str]:
    """v1, then two twins of it, v3 and v4, served in turn: (v3, v4)."""
    client, name, v1 = target["client"], target["name"], trained_versions.good
    v3 = clone_version(client, name=name, version=v1)
    v4 = clone_version(client, name=name, version=v1)
    serve_in_turn(target, v1, v3, v4)
    return v3, v4


def test_a_version_an_incident_rolled_back_needs_force_and_a_reason(
    target: dict[str, Any], trained_versions: TrainedVersions
) -> None:
    client, name = target["client"], target["name"]
    registry_db, settings = target["database"], target["settings"]
    v1 = trained_versions.good
    v3, v4 = _three_served(target, trained_versions)
    number = _monitor_rolls_back(target, bad=v4, to=v3)
    assert aliases(client, name=name) == {PRODUCTION: v3, PREVIOUS: v1}

    with pytest.raises(GateFailedError) as refused:
        rollback(**target, actor="carol", to_version=v4, reason="it looked fine to me")
    message = str(refused.value)
    assert message.startswith(f"rollback to v{v4} refused: incident #{number} (open) ")
    assert f"marked v{v4} regressed and rolled back from v{v4}" in message
    assert message.endswith("use --force --reason to restore it anyway")
    summary = client.get_registered_model(name).tags["boltit.last_rollback"]
    assert f"carol rollback REFUSED v{v3} -> v{v4}: it looked fine to me" in summary
    with pytest.raises(BadInputError, match="--force needs a --reason"):
        rollback(**target, actor="carol", to_version=v4, force=True)
    assert aliases(client, name=name) == {PRODUCTION: v3, PREVIOUS: v1}

    # Resolved just now is still recent.
    with registry_db.session() as session:
        incident = session.get(Incident, number)
        assert incident is not None
        incidents.set_status(session, incident, status=incidents.RESOLVED, actor="carol")
    with pytest.raises(GateFailedError, match=rf"incident #{number} \(resolved 0 h ago\)"):
        rollback(**target, actor="carol", to_version=v4)

    forced = rollback(
        **target, actor="carol", to_version=v4, force=True, reason="root cause was the feed"
    )
    assert forced.forced and [g.incident for g in forced.guards] == [number]
    assert aliases(client, name=name)[PRODUCTION] == v4
    refusal_event = [e for e in registry_history(registry_db, model_name=name)][-3]
    assert refusal_event.details is not None
    assert refusal_event.details["refusal"].startswith(f"rollback to v{v4} refused")
    assert _rollbacks(registry_db, name) == [
        (v3, "rolled_back", False, []),  # the monitor's
        (v4, "refused", False, ["incident"]),
        (v4, "refused", False, ["incident"]),
        (v4, "rolled_back", True, ["incident"]),
    ]

    # Once the incident is older than the guard window, the version may come back unforced.
    rollback(**target, actor="carol", to_version=v3)
    with registry_db.session() as session:
        incident = session.get(Incident, number)
        assert incident is not None
        incident.closed_at = utcnow() - timedelta(days=settings.rollback_guard_days + 1)
    longer = settings.model_copy(update={"rollback_guard_days": settings.rollback_guard_days + 5})
    with pytest.raises(GateFailedError, match="resolved"):
        rollback(**{**target, "settings": longer}, actor="carol", to_version=v4)
    back = rollback(**target, actor="carol", to_version=v4)
    assert back.to_version == v4 and not back.forced and back.guards == []


def test_a_version_that_failed_its_gates_needs_force(
    target: dict[str, Any], trained_versions: TrainedVersions
) -> None:
    client, name, registry_db = target["client"], target["name"], target["database"]
    good, bad = trained_versions.good, trained_versions.bad
    serve_in_turn(target, bad, good)
    client.set_model_version_tag(name, bad, "validation_status", "failed")
    client.set_model_version_tag(name, bad, "gate.min_accuracy", "failed (observed 0.12)")
    client.set_model_version_tag(name, bad, "gate.max_ece", "passed (observed 0.02)")

    with pytest.raises(GateFailedError, match=rf"v{bad} failed its gates \(min_accuracy\);"):
        rollback(**target, actor="carol")  # to previous: the guard holds there too
    assert aliases(client, name=name) == {PRODUCTION: good, PREVIOUS: bad}
    forced = rollback(**target, actor="carol", force=True, reason="drill")
    assert forced.forced and [g.name for g in forced.guards] == ["failed_gates"]
    assert _rollbacks(registry_db, name) == [
        (bad, "refused", False, ["failed_gates"]),
        (bad, "rolled_back", True, ["failed_gates"]),
    ]


def test_rollback_command_refuses_a_regressed_version_in_one_line(
    boltit, target: dict[str, Any], trained_versions: TrainedVersions
) -> None:
    client, name = target["client"], target["name"]
    v1 = trained_versions.good
    v3 = clone_version(client, name=name, version=v1)
    serve_in_turn(target, v1, v3)
    number = _monitor_rolls_back(target, bad=v3, to=v1)

    code, _, err = boltit("rollback", "--to", v3, "--actor", "carol")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert f"rollback to v{v3} refused: incident #{number} (open) marked v{v3} regressed" in err
    assert "--force --reason" in err
    code, _, err = boltit("rollback", "--to", v3, "--force")
    assert code == 2 and "--force needs a --reason" in err
    assert aliases(client, name=name)[PRODUCTION] == v1

    code, out, _ = boltit(
        "rollback", "--to", v3, "--force", "--reason", "false alarm", "--actor", "carol"
    )
    assert code == 0, out
    assert f"Production v{v1} -> v{v3} (forced: incident #{number} (open)" in out
    assert aliases(client, name=name)[PRODUCTION] == v3

    code, out, _ = boltit("history", "--limit", "2")
    assert code == 0, out
    refused, forced = [line for line in out.splitlines() if "rollback" in line]
    assert "refused" in refused and f"guarded: incident #{number}" in refused
    assert "forced" in forced and f"guarded: incident #{number}" in forced
    assert "false alarm" in forced


def _ui_moves_production(client: MlflowClient, name: str, version: str) -> None:
    """What the MLflow UI's alias editor does (the same REST call, straight to the store)."""
    client.set_registered_model_alias(name, PRODUCTION, version)


def test_sync_reverts_a_ui_move_back_to_a_version_an_incident_rolled_back(
    target: dict[str, Any], trained_versions: TrainedVersions
) -> None:
    from boltit.registry.gate_config import load_gate_config
    from boltit.registry.sync import sync

    client, name, registry_db = target["client"], target["name"], target["database"]
    v3, v4 = _three_served(target, trained_versions)
    number = _monitor_rolls_back(target, bad=v4, to=v3)

    _ui_moves_production(client, name, v4)
    (outcome,) = sync(**target, actor="sync")

    assert (outcome.outcome, outcome.judged, outcome.gates_passed) == ("reverted", "guarded", None)
    assert [(g.name, g.incident) for g in outcome.guards] == [("incident", number)]
    assert outcome.reason.startswith(f"guarded: incident #{number} (open) marked v{v4} regressed")
    assert "sync.on_guarded: revert" in outcome.reason
    assert aliases(client, name=name)[PRODUCTION] == v3
    synced, reverted = registry_history(registry_db, model_name=name)[-2:]
    assert (synced.action, reverted.action) == ("registry_sync", "sync_revert")
    for event in (synced, reverted):
        assert event.details is not None and event.details["outcome"] == "reverted"
        assert event.details["judged"] == "guarded"
        assert [g["incident"] for g in event.details["guards"]] == [number]
    assert f"incident #{number}" in (client.get_model_version(name, v4).description or "")

    # The gate config can let the gates decide instead; the guard is still recorded.
    judging = load_gate_config(target["settings"].gates_config)
    judging = judging.model_copy(
        update={"sync": judging.sync.model_copy(update={"on_guarded": "judge"})}
    )
    _ui_moves_production(client, name, v4)
    (outcome,) = sync(**target, actor="sync", config=judging)
    assert outcome.outcome == "accepted" and outcome.gates_passed is True, outcome.reason
    assert outcome.judged == "current_config" and [g.incident for g in outcome.guards] == [number]
    assert aliases(client, name=name)[PRODUCTION] == v4
    accepted = registry_history(registry_db, model_name=name)[-1]
    assert accepted.details is not None and accepted.details["guards"][0]["incident"] == number


def test_sync_reverts_a_ui_move_to_a_version_that_failed_its_gates_without_judging(
    target: dict[str, Any], trained_versions: TrainedVersions
) -> None:
    from boltit.registry.sync import sync

    client, name, registry_db = target["client"], target["name"], target["database"]
    good, bad = trained_versions.good, trained_versions.bad
    serve_in_turn(target, good)
    client.set_model_version_tag(name, bad, "validation_status", "failed")
    client.set_model_version_tag(name, bad, "gate.min_accuracy", "failed (observed 0.12)")

    _ui_moves_production(client, name, bad)
    (outcome,) = sync(**target, actor="sync")

    assert (outcome.outcome, outcome.judged) == ("reverted", "guarded")
    assert outcome.reason.startswith(f"guarded: v{bad} failed its gates (min_accuracy)")
    assert aliases(client, name=name)[PRODUCTION] == good
    events = registry_history(registry_db, model_name=name)
    assert not [e for e in events if e.action == "validate"]  # reverted without judging
    assert events[-1].details is not None
    assert [g["guard"] for g in events[-1].details["guards"]] == ["failed_gates"]
