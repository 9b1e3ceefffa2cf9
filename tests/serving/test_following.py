"""Replica processes follow the registry: hot swap under load, rollback, a broken version."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient
from sqlalchemy import func, select

from boltit.core import audit
from boltit.core.db import Database
from boltit.core.schema import Ticket
from boltit.core.settings import Settings
from boltit.core.tracking import configure_mlflow
from tests.serving.conftest import (
    MODEL,
    ServiceProcess,
    register_version,
    service_env,
    version_source,
    wait_for,
)

# Two `boltit serve` replicas start for the module: over 20 s whichever test runs.
pytestmark = pytest.mark.slow


@dataclass
class Cluster:
    """Two ``boltit serve`` processes on one registry and one ticket store."""

    settings: Settings
    client: MlflowClient
    database: Database
    root: Path
    v1: str
    v2: str
    replicas: list[ServiceProcess] = field(default_factory=list)

    def versions(self) -> list[str | None]:
        found: list[str | None] = []
        for replica in self.replicas:
            answer = httpx.get(f"{replica.url}/model/version", timeout=10)
            found.append(answer.json()["version"] if answer.status_code == 200 else None)
        return found


@pytest.fixture(scope="module")
def cluster(
    module_settings: Settings, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    client = configure_mlflow(module_settings)
    database = Database(module_settings.database_url)
    v1 = register_version(client, model_dir, root)
    v2 = register_version(client, model_dir, root)
    client.set_registered_model_alias(MODEL, "Production", v1)
    env = service_env(module_settings)
    replicas = [ServiceProcess(env=env, cwd=root).start() for _ in range(2)]
    try:
        for replica in replicas:
            replica.wait_ready()
        yield Cluster(module_settings, client, database, root, v1, v2, replicas)
    finally:
        for replica in replicas:
            replica.stop()
        database.dispose()


class Load:
    """Classify calls that keep arriving on every replica until stopped (60 s at most)."""

    def __init__(self, urls: list[str], *, per_replica: int = 3) -> None:
        self.answers: list[tuple[float, int, str | None]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(url, i), daemon=True)
            for url in urls
            for i in range(per_replica)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _run(self, url: str, seed: int) -> None:
        deadline = time.monotonic() + 60
        i = 0
        with httpx.Client(base_url=url, timeout=30) as http:
            while not self._stop.is_set() and time.monotonic() < deadline:
                i += 1
                try:
                    answer = http.post("/classify", json={"text": f"ticket {seed}-{i}: no vpn"})
                    record = (
                        time.monotonic(),
                        answer.status_code,
                        answer.json().get("model_version") if answer.status_code == 200 else None,
                    )
                except httpx.HTTPError as exc:
                    record = (time.monotonic(), 0, repr(exc))
                with self._lock:
                    self.answers.append(record)

    def failures(self) -> list[tuple[float, int, str | None]]:
        with self._lock:
            return [a for a in self.answers if a[1] != 200]


def _tickets(database: Database) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).select_from(Ticket)) or 0)


def test_hot_swap_under_load_promote_and_rollback(cluster: Cluster) -> None:
    from boltit.registry.promote import promote
    from boltit.registry.rollback import rollback

    assert cluster.versions() == [cluster.v1, cluster.v1]
    before = _tickets(cluster.database)
    with Load([r.url for r in cluster.replicas]) as load:
        wait_for(lambda: len(load.answers) >= 20, timeout=30)

        promote(
            client=cluster.client,
            database=cluster.database,
            name=MODEL,
            version=cluster.v2,
            actor="test",
            reason="hot swap test",
            force=True,
            settings=cluster.settings,
        )
        switched = wait_for(lambda: cluster.versions() == [cluster.v2] * 2, timeout=2.0)
        served_before = len(load.answers)
        wait_for(lambda: len(load.answers) >= served_before + 20, timeout=30)

        rollback(
            client=cluster.client,
            database=cluster.database,
            name=MODEL,
            actor="test",
            reason="hot swap test",
            settings=cluster.settings,
        )
        rolled_back = wait_for(lambda: cluster.versions() == [cluster.v1] * 2, timeout=2.0)
        served_before = len(load.answers)
        wait_for(lambda: len(load.answers) >= served_before + 20, timeout=30)

    assert load.failures() == []
    versions_seen = {version for _, _, version in load.answers}
    assert versions_seen == {cluster.v1, cluster.v2}
    # Every 200 was a committed row.
    assert _tickets(cluster.database) - before == len(load.answers)
    assert switched <= 2.0 and rolled_back <= 2.0
    with cluster.database.session() as session:
        swaps = audit.history(session, model_name=MODEL, actions=["model_swap"])
    replicas_swapped_to_v2 = {
        e.details["replica"] for e in swaps if e.to_version == cluster.v2 and e.details
    }
    assert len(replicas_swapped_to_v2) == 2


def test_a_broken_version_is_refused_and_the_old_one_keeps_serving(cluster: Cluster) -> None:
    serving = cluster.versions()[0]
    assert serving is not None
    broken = register_version(cluster.client, version_source(cluster.client, serving), cluster.root)
    shutil.rmtree(version_source(cluster.client, broken))  # its artifact is gone
    # boltit.registry.promote refuses an unloadable version even with force, so the alias is
    # moved as the MLflow UI (or a script talking to MLflow directly) would.
    cluster.client.set_registered_model_alias(MODEL, "Production", broken)

    def refused_everywhere() -> bool:
        for replica in cluster.replicas:
            health = httpx.get(f"{replica.url}/health", timeout=10).json()
            if not any(e["version"] == broken for e in health["load_errors"]):
                return False
        return True

    with Load([r.url for r in cluster.replicas], per_replica=2) as load:
        wait_for(refused_everywhere, timeout=10)
        served_before = len(load.answers)
        wait_for(lambda: len(load.answers) >= served_before + 20, timeout=30)
    assert load.failures() == []
    assert {version for _, _, version in load.answers} == {serving}
    assert cluster.versions() == [serving, serving]
    for replica in cluster.replicas:
        health = httpx.get(f"{replica.url}/health", timeout=10).json()
        assert health["status"] == "degraded"
        assert health["model"]["version"] == serving
        assert httpx.get(f"{replica.url}/ready", timeout=10).status_code == 200
    with cluster.database.session() as session:
        failures = audit.history(session, model_name=MODEL, actions=["load_failure"])
    refused_by = {e.details["replica"] for e in failures if e.to_version == broken and e.details}
    assert len(refused_by) == 2  # each replica refused it once, not once per poll
    assert len([e for e in failures if e.to_version == broken]) == 2
    assert all(e.details and e.details["still_serving"] == serving for e in failures)
    # Putting the alias back to a good version recovers without a restart.
    cluster.client.set_registered_model_alias(MODEL, "Production", cluster.v2)
    wait_for(lambda: cluster.versions() == [cluster.v2] * 2, timeout=2.0)
    for replica in cluster.replicas:
        health = httpx.get(f"{replica.url}/health", timeout=10).json()
        assert health["status"] == "ok"
        assert any(e["version"] == broken for e in health["load_errors"])  # history kept
