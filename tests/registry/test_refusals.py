"""Every refused promotion is in the history, with why, even a ``--force`` one (issue 13)."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from boltit.core.errors import BadInputError
from boltit.core.schema import AuditEvent
from boltit.core.vocabulary import PREVIOUS, PRODUCTION
from boltit.registry.history import history_table, registry_history
from boltit.registry.lookup import aliases
from boltit.registry.promote import promote
from boltit.registry.rollback import rollback
from tests.registry.conftest import TrainedVersions, serve_in_turn


def _says_refused(event: AuditEvent) -> None:
    """The history table marks the event refused."""
    console = Console(width=250, record=True)
    console.print(history_table([event]))
    assert "refused" in console.export_text()


@pytest.mark.parametrize("force", [True, False], ids=["forced", "unforced"])
def test_promotion_of_an_unloadable_version_is_refused_and_recorded(
    force: bool, target: dict[str, Any], trained_versions: TrainedVersions, broken: str
) -> None:
    name, good, client = target["name"], trained_versions.good, target["client"]
    serve_in_turn(target, good)

    with pytest.raises(BadInputError, match="cannot be loaded"):
        promote(
            **target,
            version=broken,
            actor="mallory",
            force=force,
            reason="ship it" if force else None,
        )

    assert aliases(client, name=name) == {PRODUCTION: good}
    event = registry_history(target["database"], model_name=name)[-1]
    assert (event.action, event.actor) == ("promote", "mallory")
    assert (event.from_version, event.to_version) == (good, broken)
    assert event.details is not None
    assert event.details["outcome"] == "refused"
    assert "cannot be loaded" in event.details["refusal"]
    assert event.details["force_requested"] is force
    assert event.forced is False  # nothing was bypassed
    assert event.reason == ("ship it" if force else None)
    # The history table says "refused"; the model's tag summary names the attempt.
    _says_refused(event)
    tag = client.get_registered_model(name).tags["boltit.last_promote"]
    assert "mallory promote" in tag and f"v{broken}" in tag


def test_an_unloadable_production_version_is_not_reported_as_unchanged(
    target: dict[str, Any], broken: str
) -> None:
    """Re-promoting the serving version whose files broke is a refusal, not a no-op."""
    # It went live before its files broke (moved directly, as a UI user would).
    target["client"].set_registered_model_alias(target["name"], PRODUCTION, broken)

    with pytest.raises(BadInputError, match="cannot be loaded"):
        promote(**target, version=broken, actor="alice", force=True, reason="re-assert")

    event = registry_history(target["database"], model_name=target["name"])[-1]
    assert event.details is not None and event.details["outcome"] == "refused"
    assert event.to_version == broken


def test_validation_of_an_unloadable_version_is_refused_and_recorded(
    target: dict[str, Any], trained_versions: TrainedVersions, broken: str
) -> None:
    """A version that cannot load gets no verdict, but the attempt and why are in the history."""
    from boltit.registry.validate import validate

    name, good = target["name"], trained_versions.good
    serve_in_turn(target, good)

    with pytest.raises(BadInputError, match=f"candidate version {broken} .* cannot be loaded"):
        validate(**target, version=broken, actor="mallory")

    event = registry_history(target["database"], model_name=name)[-1]
    assert (event.action, event.actor) == ("validate", "mallory")
    assert (event.from_version, event.to_version) == (good, broken)
    assert event.details is not None and event.details["outcome"] == "refused"
    assert "cannot be loaded" in event.details["refusal"]
    assert event.details["unloadable"] == {"version": broken, "role": "candidate"}
    tags = target["client"].get_model_version(name, broken).tags
    assert "validation_status" not in tags  # no verdict: nothing was judged
    _says_refused(event)


def test_rollback_to_an_unloadable_previous_is_refused_and_recorded(
    target: dict[str, Any], trained_versions: TrainedVersions, broken: str
) -> None:
    """A ``previous`` set outside boltit that never served is test-loaded, and its refusal kept."""
    client, name, good = target["client"], target["name"], trained_versions.good
    serve_in_turn(target, good)
    client.set_registered_model_alias(name, PREVIOUS, broken)

    with pytest.raises(BadInputError, match="cannot be loaded"):
        rollback(**target, actor="oncall", reason="page")

    assert aliases(client, name=name) == {PRODUCTION: good, PREVIOUS: broken}
    event = registry_history(target["database"], model_name=name)[-1]
    assert (event.action, event.actor, event.to_version) == ("rollback", "oncall", broken)
    assert event.details is not None
    assert event.details["outcome"] == "refused"
    assert "cannot be loaded" in event.details["refusal"]
