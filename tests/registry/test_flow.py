"""The gate and alias flow: good v1, shuffled-label v2, refusal, force, rollback, history."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from boltit.core.db import Database
from boltit.core.errors import BadInputError, GateFailedError, NotFoundError
from boltit.core.settings import Settings
from boltit.core.vocabulary import CHALLENGER, PREVIOUS, PRODUCTION
from boltit.registry.history import registry_history
from boltit.registry.lookup import aliases
from boltit.registry.promote import promote
from boltit.registry.rollback import rollback
from boltit.registry.validate import validate
from tests.registry.conftest import TrainedVersions, clone_version, serve_in_turn, train_pair


def _stage(client: MlflowClient, name: str, version: str) -> str:
    return str(client.get_model_version(name, version).current_stage)


def _steps(database: Database, name: str) -> list[tuple[str, str | None, str | None, str]]:
    return [
        (e.action, e.from_version, e.to_version, (e.details or {}).get("outcome", ""))
        for e in registry_history(database, model_name=name)
    ]


def run_gate_and_alias_flow(target: dict[str, Any], *, good: str, bad: str) -> None:
    client, database, name = target["client"], target["database"], target["name"]

    checked = validate(**target, version=good, actor="alice")
    assert checked.passed, [r.describe() for r in checked.failures]
    assert checked.champion is None
    assert aliases(client, name=name) == {CHALLENGER: good}
    assert _stage(client, name, good) == "Staging"
    tags = client.get_model_version(name, good).tags
    assert tags["validation_status"] == "passed"
    assert tags["gate.min_accuracy"].startswith("passed (observed 0.")
    assert "Validation PASSED" in client.get_model_version(name, good).description
    assert checked.report_artifact and checked.report_artifact.startswith("runs:/")

    promoted = promote(**target, version=good, actor="alice")
    assert promoted.changed and promoted.previous is None
    assert aliases(client, name=name) == {PRODUCTION: good}
    assert _stage(client, name, good) == "Production"
    assert not promote(**target, version=good, actor="alice").changed  # nothing changes

    refused = validate(**target, version=bad, actor="bob")
    assert not refused.passed
    assert refused.champion is not None and refused.champion.version == good
    failing = {r.name: r for r in refused.failures}
    assert failing["min_accuracy"].observed is not None and failing["min_accuracy"].observed < 0.5
    assert client.get_model_version(name, bad).tags["validation_status"] == "failed"
    assert "Validation FAILED" in client.get_model_version(name, bad).description

    with pytest.raises(GateFailedError, match=f"version {bad} has not passed its gates"):
        promote(**target, version=bad, actor="bob")
    assert aliases(client, name=name) == {PRODUCTION: good}
    with pytest.raises(BadInputError, match="--reason"):
        promote(**target, version=bad, actor="bob", force=True)

    forced = promote(**target, version=bad, actor="bob", force=True, reason="incident drill")
    assert forced.forced and forced.previous == good
    assert aliases(client, name=name) == {PRODUCTION: bad, PREVIOUS: good}
    assert _stage(client, name, bad) == "Production"
    assert _stage(client, name, good) == "Archived"

    back = rollback(**target, actor="carol", reason="accuracy regression")
    assert (back.from_version, back.to_version, back.previous) == (bad, good, None)
    assert aliases(client, name=name) == {PRODUCTION: good}
    assert _stage(client, name, good) == "Production"
    assert _stage(client, name, bad) == "Archived"
    with pytest.raises(BadInputError, match="no previous version"):
        rollback(**target, actor="carol")

    assert _steps(database, name) == [
        ("validate", None, good, ""),
        ("promote", None, good, "promoted"),
        ("validate", good, bad, ""),
        ("promote", good, bad, "refused"),
        ("promote", good, bad, "promoted"),
        ("rollback", bad, good, "rolled_back"),
    ]
    events = registry_history(database, model_name=name)
    assert [e.actor for e in events] == ["alice", "alice", "bob", "bob", "bob", "carol"]
    assert events[4].forced and events[4].reason == "incident drill"
    assert events[2].details["gates"]["passed"] is False
    assert "min_accuracy" in events[2].details["gates"]["failed"]
    model_tags = client.get_registered_model(name).tags
    assert "rollback" in model_tags["boltit.last_rollback"]
    assert "FORCED" in model_tags["boltit.last_promote"]


def test_gate_and_alias_flow_on_sqlite(
    target: dict[str, Any], trained_versions: TrainedVersions
) -> None:
    run_gate_and_alias_flow(target, good=trained_versions.good, bad=trained_versions.bad)


@pytest.mark.postgres
def test_gate_and_alias_flow_on_postgres(
    registry_settings: Settings, postgres_url: str, second_postgres_url: str, tmp_path: Path
) -> None:
    """MLflow's backend store and the project database both on PostgreSQL."""
    from boltit.core.tracking import configure_mlflow

    settings = registry_settings.model_copy(
        update={
            "tracking_uri_override": postgres_url,
            "database_url_override": second_postgres_url,
            "artifact_root_override": (tmp_path / "artifacts").as_uri(),
        }
    )
    client = configure_mlflow(settings)
    good, bad = train_pair(settings, client, rows=1200)
    database = Database(settings.database_url)
    try:
        target = {
            "client": client,
            "database": database,
            "name": settings.model_name,
            "settings": settings,
        }
        run_gate_and_alias_flow(target, good=good, bad=bad)
    finally:
        database.dispose()


def test_two_rollbacks_walk_back_through_what_served(
    target: dict[str, Any], trained_versions: TrainedVersions
) -> None:
    client, name = target["client"], target["name"]
    v1 = trained_versions.good
    v3 = clone_version(client, name=name, version=v1)
    v4 = clone_version(client, name=name, version=v1)
    serve_in_turn(target, v1, v3, v4)
    assert aliases(client, name=name) == {PRODUCTION: v4, PREVIOUS: v3}

    first = rollback(**target, actor="carol")
    assert (first.to_version, first.previous) == (v3, v1)
    second = rollback(**target, actor="carol")
    assert (second.to_version, second.previous) == (v1, None)
    assert aliases(client, name=name) == {PRODUCTION: v1}
    with pytest.raises(BadInputError, match="no previous version"):
        rollback(**target, actor="carol")

    again = rollback(**target, actor="carol", to_version=v4)  # it served once
    assert (again.from_version, again.to_version) == (v1, v4)
    assert aliases(client, name=name) == {PRODUCTION: v4, PREVIOUS: v3}
    with pytest.raises(BadInputError, match=f"version {trained_versions.bad} never served"):
        rollback(**target, actor="carol", to_version=trained_versions.bad)
    with pytest.raises(NotFoundError, match="has no version 99"):
        rollback(**target, actor="carol", to_version="99")
    assert aliases(client, name=name) == {PRODUCTION: v4, PREVIOUS: v3}


def _race(target: dict[str, Any], *, base: str, racers: list[str]) -> None:
    client, database, name = target["client"], target["database"], target["name"]
    promote(**target, version=base, actor="setup", force=True, reason="baseline")
    errors: list[BaseException] = []
    start = threading.Barrier(len(racers))

    def run(version: str) -> None:
        try:
            start.wait(10)
            promote(**target, version=version, actor=f"racer-{version}", force=True, reason="race")
        except BaseException as exc:  # surfaced below with the thread's version
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(v,)) for v in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors

    events = [e for e in registry_history(database, model_name=name) if e.actor != "setup"]
    assert sorted(e.to_version or "" for e in events) == sorted(racers)
    first, second = events
    # Serialised: the second promotion saw the first one's result.
    assert first.from_version == base
    assert second.from_version == first.to_version
    assert aliases(client, name=name) == {PRODUCTION: second.to_version, PREVIOUS: first.to_version}
    assert client.get_model_version(name, second.to_version).current_stage == "Production"
    for version in (base, first.to_version):
        assert client.get_model_version(name, version).current_stage == "Archived"


def _racers(target: dict[str, Any], trained_versions: TrainedVersions) -> list[str]:
    """Two loadable twins of the good version, to be promoted at once."""
    client, name = target["client"], target["name"]
    return [clone_version(client, name=name, version=trained_versions.good) for _ in range(2)]


def test_racing_promotions_stay_consistent_on_sqlite(
    target: dict[str, Any], trained_versions: TrainedVersions
) -> None:
    racers = _racers(target, trained_versions)
    _race(target, base=trained_versions.good, racers=racers)


@pytest.mark.postgres
def test_racing_promotions_stay_consistent_with_postgres_lock(
    target: dict[str, Any], postgres_url: str, trained_versions: TrainedVersions
) -> None:
    racers = _racers(target, trained_versions)
    database = Database(postgres_url)
    try:
        _race({**target, "database": database}, base=trained_versions.good, racers=racers)
    finally:
        database.dispose()
