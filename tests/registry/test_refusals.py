"""Every refused promotion is in the history, with why, even a ``--force`` one (issue 13)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from rich.console import Console

from boltit.core.db import Database
from boltit.core.errors import BadInputError
from boltit.core.settings import Settings
from boltit.core.vocabulary import PREVIOUS, PRODUCTION
from boltit.registry.history import history_table, registry_history
from boltit.registry.lookup import aliases
from boltit.registry.promote import promote
from boltit.registry.rollback import rollback
from tests.registry.conftest import TrainedVersions


def _broken_version(client: MlflowClient, *, name: str, like: str, where: Path) -> str:
    """A registered version whose model folder is empty: it exists but cannot load."""
    run_id = client.get_model_version(name, like).run_id
    empty = where / "deleted-model"
    empty.mkdir()
    return str(client.create_model_version(name, empty.as_uri(), run_id).version)


@pytest.mark.parametrize("force", [True, False], ids=["forced", "unforced"])
def test_promotion_of_an_unloadable_version_is_refused_and_recorded(
    force: bool,
    registry_settings: Settings,
    trained_client: MlflowClient,
    trained_versions: TrainedVersions,
    registry_db: Database,
    tmp_path: Path,
) -> None:
    name, good = registry_settings.model_name, trained_versions.good
    common: dict[str, Any] = {
        "client": trained_client,
        "database": registry_db,
        "name": name,
        "settings": registry_settings,
    }
    promote(**common, version=good, actor="alice", force=True, reason="setup")
    broken = _broken_version(trained_client, name=name, like=good, where=tmp_path)

    with pytest.raises(BadInputError, match="cannot be loaded"):
        promote(
            **common,
            version=broken,
            actor="mallory",
            force=force,
            reason="ship it" if force else None,
        )

    assert aliases(trained_client, name=name) == {PRODUCTION: good}
    event = registry_history(registry_db, model_name=name)[-1]
    assert (event.action, event.actor) == ("promote", "mallory")
    assert (event.from_version, event.to_version) == (good, broken)
    assert event.details is not None
    assert event.details["outcome"] == "refused"
    assert "cannot be loaded" in event.details["refusal"]
    assert event.details["force_requested"] is force
    assert event.forced is False  # nothing was bypassed
    assert event.reason == ("ship it" if force else None)
    # The history table says "refused"; the model's tag summary names the attempt.
    console = Console(width=250, record=True)
    console.print(history_table([event]))
    assert "refused" in console.export_text()
    tag = trained_client.get_registered_model(name).tags["boltit.last_promote"]
    assert "mallory promote" in tag and f"v{broken}" in tag


def test_an_unloadable_production_version_is_not_reported_as_unchanged(
    registry_settings: Settings,
    trained_client: MlflowClient,
    trained_versions: TrainedVersions,
    registry_db: Database,
    tmp_path: Path,
) -> None:
    """Re-promoting the serving version whose files broke is a refusal, not a no-op."""
    name, good = registry_settings.model_name, trained_versions.good
    common: dict[str, Any] = {
        "client": trained_client,
        "database": registry_db,
        "name": name,
        "settings": registry_settings,
    }
    broken = _broken_version(trained_client, name=name, like=good, where=tmp_path)
    # It went live before its files broke (moved directly, as a UI user would).
    trained_client.set_registered_model_alias(name, PRODUCTION, broken)

    with pytest.raises(BadInputError, match="cannot be loaded"):
        promote(**common, version=broken, actor="alice", force=True, reason="re-assert")

    event = registry_history(registry_db, model_name=name)[-1]
    assert event.details is not None and event.details["outcome"] == "refused"
    assert event.to_version == broken


def test_validation_of_an_unloadable_version_is_refused_and_recorded(
    registry_settings: Settings,
    trained_client: MlflowClient,
    trained_versions: TrainedVersions,
    registry_db: Database,
    tmp_path: Path,
) -> None:
    """A version that cannot load gets no verdict, but the attempt and why are in the history."""
    from boltit.registry.validate import validate

    name, good = registry_settings.model_name, trained_versions.good
    promote(
        client=trained_client,
        database=registry_db,
        name=name,
        version=good,
        actor="alice",
        force=True,
        reason="setup",
        settings=registry_settings,
    )
    broken = _broken_version(trained_client, name=name, like=good, where=tmp_path)

    with pytest.raises(BadInputError, match=f"candidate version {broken} .* cannot be loaded"):
        validate(
            client=trained_client,
            database=registry_db,
            name=name,
            version=broken,
            actor="mallory",
            settings=registry_settings,
        )

    event = registry_history(registry_db, model_name=name)[-1]
    assert (event.action, event.actor) == ("validate", "mallory")
    assert (event.from_version, event.to_version) == (good, broken)
    assert event.details is not None and event.details["outcome"] == "refused"
    assert "cannot be loaded" in event.details["refusal"]
    assert event.details["unloadable"] == {"version": broken, "role": "candidate"}
    tags = trained_client.get_model_version(name, broken).tags
    assert "validation_status" not in tags  # no verdict: nothing was judged
    console = Console(width=250, record=True)
    console.print(history_table([event]))
    assert "refused" in console.export_text()


def test_rollback_to_an_unloadable_previous_is_refused_and_recorded(
    registry_settings: Settings,
    trained_client: MlflowClient,
    trained_versions: TrainedVersions,
    registry_db: Database,
    tmp_path: Path,
) -> None:
    """A ``previous`` set outside boltit that never served is test-loaded, and its refusal kept."""
    name, good = registry_settings.model_name, trained_versions.good
    promote(
        client=trained_client,
        database=registry_db,
        name=name,
        settings=registry_settings,
        version=good,
        actor="alice",
        force=True,
        reason="setup",
    )
    broken = _broken_version(trained_client, name=name, like=good, where=tmp_path)
    trained_client.set_registered_model_alias(name, PREVIOUS, broken)

    with pytest.raises(BadInputError, match="cannot be loaded"):
        rollback(
            client=trained_client,
            database=registry_db,
            name=name,
            settings=registry_settings,
            actor="oncall",
            reason="page",
        )

    assert aliases(trained_client, name=name) == {PRODUCTION: good, PREVIOUS: broken}
    event = registry_history(registry_db, model_name=name)[-1]
    assert (event.action, event.actor, event.to_version) == ("rollback", "oncall", broken)
    assert event.details is not None
    assert event.details["outcome"] == "refused"
    assert "cannot be loaded" in event.details["refusal"]
