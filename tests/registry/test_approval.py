"""Human approval before promotion (issue 15): `approval: required` in the gate config."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx
import pytest
from mlflow import MlflowClient

from boltit.core import audit
from boltit.core.errors import BadInputError, GateFailedError
from boltit.core.light import HEAVY_STACKS
from boltit.core.settings import Settings
from boltit.core.vocabulary import PRODUCTION
from boltit.registry.approval import (
    ACTION_APPROVE,
    RUN_USER_TAG,
    TAG_APPROVAL,
    TAG_APPROVAL_REASON,
    TAG_APPROVED_BY,
    approve,
)
from boltit.registry.history import registry_history
from boltit.registry.lookup import aliases
from boltit.registry.promote import promote
from boltit.registry.sync import sync
from boltit.registry.validate import validate
from tests.console_script import Boltit
from tests.registry import test_sync
from tests.registry.conftest import TrainedVersions, clone_version, serve_in_turn

# `mlflow server` on the test's store, as a user opens the UI (defined beside the sync tests).
mlflow_ui = test_sync.mlflow_ui


@pytest.fixture
def approval_required(registry_settings: Settings) -> None:
    """The test gate config, plus `approval: required` (read at each call, CLI included)."""
    assert registry_settings.gates_config is not None
    with registry_settings.gates_config.open("a", encoding="utf-8") as config:
        config.write("approval: required\n")


def _trainer(client: MlflowClient, *, name: str, version: str) -> str:
    """Who MLflow recorded as running the version's training run."""
    run_id = client.get_model_version(name, version).run_id
    user = client.get_run(run_id).data.tags.get(RUN_USER_TAG)
    assert user, "the training run records its user"
    return user


def _validated(target: dict[str, Any], version: str) -> None:
    result = validate(**target, version=version, actor="alice")
    assert result.passed, [r.describe() for r in result.failures]


def _approvals(target: dict[str, Any]) -> list[audit.AuditEvent]:
    with target["database"].session() as session:
        return audit.history(session, model_name=target["name"], actions=[ACTION_APPROVE])


def test_without_the_setting_promotion_needs_no_approval(
    target: dict[str, Any], trained_versions: TrainedVersions
) -> None:
    name, good = target["name"], trained_versions.good
    _validated(target, good)

    result = promote(**target, version=good, actor="alice")

    assert result.changed and aliases(target["client"], name=name)[PRODUCTION] == good
    assert _approvals(target) == []
    promoted = registry_history(target["database"], model_name=name)[-1]
    assert promoted.details is not None and "approval" not in promoted.details


@pytest.mark.usefixtures("approval_required")
def test_promotion_waits_for_an_approval_by_someone_other_than_the_trainer(
    target: dict[str, Any], trained_versions: TrainedVersions
) -> None:
    client, name, good = target["client"], target["name"], trained_versions.good
    trainer = _trainer(client, name=name, version=good)
    _validated(target, good)

    with pytest.raises(GateFailedError, match=f"boltit approve {good} --reason"):
        promote(**target, version=good, actor="alice")
    assert PRODUCTION not in aliases(client, name=name)
    refused = registry_history(target["database"], model_name=name)[-1]
    assert refused.details is not None
    assert (refused.action, refused.details["outcome"]) == ("promote", "refused")
    assert refused.details["approval"] == {"required": True, "approved": False}

    # The run's user trained it: their approval is refused, and the attempt recorded.
    with pytest.raises(BadInputError, match=f"{trainer} trained version {good}"):
        approve(**target, version=good, actor=trainer, reason="looks fine to me")
    # So is an approval by whoever the history says trained it (`train --actor bob`).
    with target["database"].session() as session:
        audit.record(session, action="train", actor="bob", model_name=name, to_version=good)
    with pytest.raises(BadInputError, match="separation of duties"):
        approve(**target, version=good, actor="bob", reason="mine is good")
    with pytest.raises(GateFailedError, match="not been approved"):
        promote(**target, version=good, actor="alice")

    approval = approve(**target, version=good, actor="carol", reason="reviewed the gate report")

    assert approval.approved_by == "carol" and set(approval.trained_by) == {trainer, "bob"}
    tags = client.get_model_version(name, good).tags
    assert tags[TAG_APPROVAL] == "approved"
    assert tags[TAG_APPROVED_BY] == "carol"
    assert tags[TAG_APPROVAL_REASON] == "reviewed the gate report"
    outcomes = [(e.actor, (e.details or {})["outcome"]) for e in _approvals(target)]
    assert outcomes == [(trainer, "refused"), ("bob", "refused"), ("carol", "approved")]

    result = promote(**target, version=good, actor="alice")

    assert result.changed and not result.forced
    assert aliases(client, name=name)[PRODUCTION] == good
    promoted = registry_history(target["database"], model_name=name)[-1]
    assert promoted.details is not None
    assert promoted.details["outcome"] == "promoted"
    assert promoted.details["approval"] == {"required": True, "approved": True}


@pytest.mark.usefixtures("approval_required")
def test_a_version_that_failed_its_gates_cannot_be_approved(
    target: dict[str, Any], trained_versions: TrainedVersions
) -> None:
    bad = trained_versions.bad
    assert not validate(**target, version=bad, actor="alice").passed

    with pytest.raises(GateFailedError, match="has not passed its gates"):
        approve(**target, version=bad, actor="carol", reason="ship it")

    assert TAG_APPROVAL not in target["client"].get_model_version(target["name"], bad).tags


@pytest.mark.usefixtures("approval_required")
def test_forced_promotion_without_approval_is_audited(
    target: dict[str, Any], trained_versions: TrainedVersions
) -> None:
    good = trained_versions.good
    _validated(target, good)

    result = promote(**target, version=good, actor="alice", force=True, reason="P1 outage")

    assert result.forced
    event = registry_history(target["database"], model_name=target["name"])[-1]
    assert event.forced and event.reason == "P1 outage"
    assert event.details is not None
    assert event.details["approval"] == {"required": True, "approved": False}


@pytest.mark.usefixtures("approval_required")
def test_sync_adopts_an_approval_tagged_in_the_ui_and_refuses_a_self_approval(
    target: dict[str, Any], trained_versions: TrainedVersions
) -> None:
    client, name, good = target["client"], target["name"], trained_versions.good
    trainer = _trainer(client, name=name, version=good)
    twin = clone_version(client, name=name, version=good)
    _validated(target, good)
    _validated(target, twin)
    # What a user types into the version's tag editor in the UI (the REST call it sends).
    client.set_model_version_tag(name, good, TAG_APPROVAL, "approved")
    client.set_model_version_tag(name, good, TAG_APPROVED_BY, "carol")
    client.set_model_version_tag(name, twin, TAG_APPROVAL, "approved")
    client.set_model_version_tag(name, twin, TAG_APPROVED_BY, trainer)
    # A tag alone is not an approval until sync records it.
    with pytest.raises(GateFailedError, match="not been approved"):
        promote(**target, version=good, actor="alice")

    assert sync(**target, actor="sync-bot") == []  # no Production change to handle

    adopted, refused = _approvals(target)
    assert (adopted.actor, adopted.to_version, adopted.reason) == (
        "carol",
        good,
        "approved in the MLflow UI",
    )
    assert adopted.details == {"outcome": "approved", "via": "ui", "trained_by": [trainer]}
    assert (refused.actor, refused.to_version) == (trainer, twin)
    assert refused.details is not None and refused.details["outcome"] == "refused"
    twin_tags = client.get_model_version(name, twin).tags
    assert twin_tags[TAG_APPROVAL] == "refused"
    assert "cannot approve" in twin_tags[TAG_APPROVAL_REASON]
    assert sync(**target, actor="sync-bot") == [] and len(_approvals(target)) == 2  # once

    assert promote(**target, version=good, actor="alice").changed
    with pytest.raises(GateFailedError, match="not been approved"):
        promote(**target, version=twin, actor="alice")


@pytest.mark.usefixtures("approval_required")
def test_sync_reverts_a_ui_move_to_an_unapproved_version(
    target: dict[str, Any], trained_versions: TrainedVersions
) -> None:
    client, name, good = target["client"], target["name"], trained_versions.good
    twin = clone_version(client, name=name, version=good)
    serve_in_turn(target, good)
    _validated(target, twin)  # passes against the champion it equals
    client.set_registered_model_alias(name, PRODUCTION, twin)  # the UI's alias control

    (outcome,) = sync(**target, actor="sync-bot")

    assert outcome.outcome == "reverted" and outcome.gates_passed is True
    assert "not been approved" in outcome.reason
    assert aliases(client, name=name)[PRODUCTION] == good


def _ui_set_tag(url: str, *, name: str, version: str, key: str, value: str) -> None:
    """What the UI's version tag editor sends."""
    response = httpx.post(
        f"{url}/ajax-api/2.0/mlflow/model-versions/set-tag",
        json={"name": name, "version": version, "key": key, "value": value},
        timeout=30,
    )
    response.raise_for_status()


@pytest.mark.slow  # `mlflow server` starting is most of it
@pytest.mark.usefixtures("approval_required")
def test_an_approval_and_a_production_move_made_in_the_ui_are_accepted_by_sync(
    mlflow_ui: str, boltit: Boltit, target: dict[str, Any], trained_versions: TrainedVersions
) -> None:
    client, name, good = target["client"], target["name"], trained_versions.good
    twin = clone_version(client, name=name, version=good)
    serve_in_turn(target, good)
    _validated(target, twin)
    for key, value in {
        TAG_APPROVAL: "approved",
        TAG_APPROVED_BY: "carol",
        TAG_APPROVAL_REASON: "read the shadow report",
    }.items():
        _ui_set_tag(mlflow_ui, name=name, version=twin, key=key, value=value)
    test_sync.ui_set_alias(mlflow_ui, name=name, alias=PRODUCTION, version=twin)

    code, output, error = boltit("registry", "sync", "--actor", "sync-bot")

    assert code == 0, error
    assert f"UI approval of v{twin}: approved by carol: read the shadow report" in output
    assert f"alias change to v{twin}" in output and "accepted" in output
    assert aliases(client, name=name)[PRODUCTION] == twin
    (approval,) = _approvals(target)
    assert (approval.actor, approval.to_version) == ("carol", twin)


@pytest.mark.usefixtures("approval_required")
def test_the_approve_command(
    boltit: Boltit, target: dict[str, Any], trained_versions: TrainedVersions
) -> None:
    client, name, good = target["client"], target["name"], trained_versions.good
    trainer = _trainer(client, name=name, version=good)
    _validated(target, good)

    code, output, _ = boltit("registry", "gates")
    assert code == 0 and "approval before promotion: required" in output
    code, _, error = boltit("promote", good, "--actor", "alice")
    assert code == 1 and f"boltit approve {good}" in error
    code, _, error = boltit("approve", good, "--actor", "carol")
    assert code == 2 and "--reason" in error
    code, _, error = boltit("approve", good, "--actor", trainer, "--reason", "mine")
    assert code == 2 and "cannot approve" in error

    code, output, _ = boltit("approve", good, "--actor", "carol", "--reason", "reviewed")

    assert code == 0, output
    assert f"v{good} approved by carol (trained by {trainer}): reviewed" in output
    code, output, _ = boltit("promote", good, "--actor", "alice")
    assert code == 0 and f"-> v{good}" in output


@pytest.mark.e2e
def test_approve_and_promote_stay_light() -> None:
    # An approver on call must not wait for pandas or scikit-learn to import.
    code = (
        "import sys, json\n"
        "from boltit.core.light import import_mlflow_light\n"
        "import_mlflow_light()\n"
        "import boltit.registry.approval, boltit.registry.promote, boltit.registry.cli\n"
        f"print(json.dumps(sorted(h for h in {HEAVY_STACKS!r} if h in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
