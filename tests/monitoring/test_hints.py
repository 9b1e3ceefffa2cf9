"""Root-cause hints name only what really happened to the serving version."""

from __future__ import annotations

from typing import Any

import pytest
from mlflow import MlflowClient

from boltit.core.db import Database
from boltit.core.errors import GateFailedError
from boltit.core.settings import Settings
from boltit.core.vocabulary import PRODUCTION
from boltit.monitoring.hints import promotion_hint
from boltit.monitoring.status import collect_status
from boltit.registry.promote import promote
from tests.monitoring.conftest import TrainedState

Trained = tuple[Settings, MlflowClient, Database, TrainedState]


def test_a_refused_promotion_is_not_described_as_going_live(trained: Trained) -> None:
    settings, client, database, _ = trained
    name = settings.model_name
    common: dict[str, Any] = {
        "client": client,
        "database": database,
        "name": name,
        "settings": settings,
    }
    promote(**common, version="1", actor="alice", force=True, reason="pilot")
    # v2 never passed its gates: the promotion is refused (and recorded as refused) ...
    with pytest.raises(GateFailedError):
        promote(**common, version="2", actor="mallory")
    # ... and then someone moves the alias by hand, before any sync has seen it.
    client.set_registered_model_alias(name, PRODUCTION, "2")

    status = collect_status(settings=settings, database=database, client=client)
    hint = promotion_hint(database=database, status=status)

    assert status.production == "2"
    assert "went live" not in hint.message and "mallory" not in hint.message, hint.message
    assert hint.message == "no recorded promotion of v2"

    # The real promotion after it is the one described (the hand move undone first).
    client.set_registered_model_alias(name, PRODUCTION, "1")
    promote(**common, version="2", actor="alice", force=True, reason="accepted risk")
    hint = promotion_hint(
        database=database,
        status=collect_status(settings=settings, database=database, client=client),
    )
    assert hint.message.startswith("v2 went live by promote FORCED (gates bypassed) by alice")
    assert hint.suspicious
