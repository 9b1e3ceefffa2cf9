"""A Production version whose files are missing at start is retried with backoff and served
as soon as they are back, with no ``POST /admin/reload``; until then /health is a 503."""

from __future__ import annotations

import time

import httpx
from mlflow import MlflowClient

from boltit.core import audit
from boltit.core.db import Database
from boltit.core.settings import Settings
from tests.serving.conftest import MODEL, ServiceThread, version_source, wait_for


def test_a_version_restored_after_a_failed_load_is_served_without_a_reload(
    live_settings: Settings, production_v1: str, mlflow_client: MlflowClient, database: Database
) -> None:
    source = version_source(mlflow_client, production_v1)
    hidden = source.with_name(source.name + "-away")
    source.rename(hidden)  # Production's files are gone when the service starts
    settings = live_settings.model_copy(
        update={"insecure_open": True, "load_retry_seconds": 0.2, "load_retry_max_seconds": 0.8}
    )
    with ServiceThread(settings) as running, httpx.Client(base_url=running.url, timeout=30) as http:
        assert http.get("/ready").status_code == 503
        health = http.get("/health")
        assert health.status_code == 503  # liveness fails while nothing can be served
        assert health.json()["status"] == "degraded"
        assert [e["version"] for e in health.json()["load_errors"]] == [production_v1]
        assert http.post("/classify", json={"text": "vpn down"}).status_code == 503
        wait_for(lambda: _failed_attempts(database) >= 1, timeout=10)
        _wait_a_few_retries(http)

        hidden.rename(source)  # the files come back
        wait_for(lambda: http.get("/ready").status_code == 200, timeout=15, interval=0.1)
        health = http.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        assert health.json()["model"]["version"] == production_v1
        assert http.post("/classify", json={"text": "vpn down"}).status_code == 200

    with database.session() as session:
        failures = audit.history(session, model_name=MODEL, actions=["load_failure"])
        swaps = audit.history(session, model_name=MODEL, actions=["model_swap"])
    assert len(failures) == 1  # retries back off quietly; the history has the refusal once
    assert [s.to_version for s in swaps] == [production_v1]
    assert swaps[0].details is not None and swaps[0].details["failed_attempts"] >= 2


def _failed_attempts(database: Database) -> int:
    with database.session() as session:
        return len(audit.history(session, model_name=MODEL, actions=["load_failure"]))


def _wait_a_few_retries(http: httpx.Client) -> None:
    """Long enough for several backed-off retries (0.2 + 0.4 + 0.8 s) to fail first."""
    time.sleep(2.0)
    assert http.get("/ready").status_code == 503
