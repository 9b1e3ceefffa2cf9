"""The sync watcher `boltit up` runs: it survives what stops `registry sync --watch`."""

from __future__ import annotations

from typing import Any

from mlflow import MlflowClient

from boltit.core.db import Database
from boltit.core.settings import Settings
from boltit.core.vocabulary import PRODUCTION
from boltit.registry.lookup import aliases
from boltit.registry.sync import SyncOutcome
from boltit.registry.sync_watcher import watch_forever
from tests.registry.conftest import TrainedVersions, clone_version, serve_validated


def test_a_store_without_the_model_is_waited_for_and_said_once(
    settings: Settings, mlflow_client: MlflowClient, database: Database
) -> None:
    errors: list[str] = []
    failed = watch_forever(
        client=mlflow_client,
        database=database,
        name=settings.model_name,
        actor="watcher",
        settings=settings,
        interval=0.01,
        on_outcome=lambda outcome: None,
        on_error=errors.append,
        max_passes=3,
    )
    assert failed == 3
    assert errors == [f"no registered model named {settings.model_name!r}"]


def test_a_production_move_made_outside_boltit_is_judged(
    target: dict[str, Any], trained_versions: TrainedVersions
) -> None:
    client, name, good = target["client"], target["name"], trained_versions.good
    serve_validated(target, good)
    twin = clone_version(client, name=name, version=good)
    client.set_registered_model_alias(name, PRODUCTION, twin)  # as the UI's alias editor does

    outcomes: list[SyncOutcome] = []
    errors: list[str] = []
    watch_forever(
        **target,
        actor="watcher",
        interval=0.01,
        on_outcome=outcomes.append,
        on_error=errors.append,
        max_passes=2,
    )
    assert errors == []
    assert [(o.change.version, o.outcome) for o in outcomes] == [(twin, "accepted")]
    assert aliases(client, name=name)[PRODUCTION] == twin
