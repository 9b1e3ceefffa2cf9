"""The promotion lock on SQLite and PostgreSQL, alias/stage moves, S3 manifests over HTTP."""

from __future__ import annotations

import json
import threading
import time

import boto3
import pytest
from mlflow import MlflowClient
from sqlalchemy import func, insert, select

from boltit.core import audit
from boltit.core.db import Database
from boltit.core.errors import RegistryUnavailableError
from boltit.core.locks import LockKind, hold
from boltit.core.schema import Ticket, utcnow
from boltit.core.settings import Settings
from boltit.core.vocabulary import CHALLENGER, PREVIOUS, PRODUCTION
from boltit.registry.lookup import aliases
from boltit.registry.manifests import (
    CURRENT_KEY,
    PREVIOUS_ARTIFACT_KEY,
    PREVIOUS_KEY,
    check_bucket,
    read_manifest,
    write_manifests,
)
from boltit.registry.transitions import mark_challenger, move_production, production_stage_versions

NAME = "lock-test-model"


def _exercise_lock(database: Database) -> list[str]:
    order: list[str] = []
    first_holds = threading.Event()

    def first() -> None:
        with hold(database, LockKind.registry, model_name=NAME, holder="first"):
            order.append("first in")
            first_holds.set()
            time.sleep(0.5)  # long enough for the second to be waiting on the lock
            order.append("first out")

    def second() -> None:
        first_holds.wait(10)
        with hold(database, LockKind.registry, model_name=NAME, holder="second"):
            order.append("second in")
            order.append("second out")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return order


def test_lock_serialises_holders_on_sqlite(database: Database) -> None:
    assert _exercise_lock(database) == ["first in", "first out", "second in", "second out"]


def test_sqlite_registry_lock_leaves_ticket_commits_free(database: Database) -> None:
    # A promotion can take seconds of MLflow calls; the service's ticket commits must not
    # wait for it (with no busy timeout, a held database write lock fails the insert at once).
    with hold(database, LockKind.registry, model_name=NAME, holder="promoting") as session:
        with database.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA busy_timeout=0")
            connection.execute(
                insert(Ticket).values(
                    id="ab" * 16,
                    text="printer is down",
                    category="Hardware",
                    confidence=0.9,
                    model_name=NAME,
                    model_version="1",
                    served_by="production",
                    latency_ms=1.0,
                    auto_applied=True,
                    reason="test",
                    created_at=utcnow(),
                )
            )
            connection.commit()
        audit.record(session, action="promote", actor="promoting", model_name=NAME)
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1


@pytest.mark.postgres
def test_lock_serialises_holders_on_postgres(postgres_url: str) -> None:
    database = Database(postgres_url)
    try:
        assert _exercise_lock(database) == ["first in", "first out", "second in", "second out"]
    finally:
        database.dispose()


def _placeholder_versions(client: MlflowClient, count: int) -> list[str]:
    """Registered versions with a real run (metrics only; no model to load)."""
    experiment = client.create_experiment("placeholders")
    client.create_registered_model(NAME)
    versions = []
    for i in range(count):
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "accuracy", 0.9 + i / 100)
        client.set_terminated(run.info.run_id)
        mv = client.create_model_version(NAME, f"runs:/{run.info.run_id}/model", run.info.run_id)
        versions.append(str(mv.version))
    return versions


def test_alias_moves_mirror_stages(mlflow_client: MlflowClient) -> None:
    v1, v2, v3 = _placeholder_versions(mlflow_client, 3)
    move_production(mlflow_client, name=NAME, to_version=v1, previous=None)
    mark_challenger(mlflow_client, name=NAME, version=v2)
    move_production(mlflow_client, name=NAME, to_version=v2, previous=v1)
    assert aliases(mlflow_client, name=NAME) == {PRODUCTION: v2, PREVIOUS: v1}
    assert production_stage_versions(mlflow_client, name=NAME) == [v2]
    assert mlflow_client.get_model_version(NAME, v1).current_stage == "Archived"

    mark_challenger(mlflow_client, name=NAME, version=v3)
    move_production(mlflow_client, name=NAME, to_version=v1, previous=None)
    # A challenger waiting for another version stays; previous goes when there is none.
    assert aliases(mlflow_client, name=NAME) == {PRODUCTION: v1, CHALLENGER: v3}
    assert mlflow_client.get_model_version(NAME, v3).current_stage == "Staging"


@pytest.mark.s3
def test_manifests_over_http(
    settings: Settings, mlflow_client: MlflowClient, moto_endpoint: str
) -> None:
    bucket = "boltit-artifacts-test"
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket=bucket)
    configured = settings.model_copy(
        update={"artifact_bucket": bucket, "s3_endpoint_url": moto_endpoint}
    )
    v1, v2 = _placeholder_versions(mlflow_client, 2)
    mlflow_client.set_model_version_tag(NAME, v2, "validation_status", "passed")
    check_bucket(configured)
    from datetime import UTC, datetime

    written = write_manifests(
        configured, mlflow_client, name=NAME, current=v2, previous=v1, changed_at=datetime.now(UTC)
    )
    assert written == [
        f"s3://{bucket}/{k}" for k in (CURRENT_KEY, PREVIOUS_KEY, PREVIOUS_ARTIFACT_KEY)
    ]
    current = read_manifest(configured, CURRENT_KEY)
    assert current["version"] == v2
    assert current["gates"]["validation_status"] == "passed"
    assert current["metrics"] == {"accuracy": pytest.approx(0.91)}
    assert current["run_id"] == mlflow_client.get_model_version(NAME, v2).run_id
    assert read_manifest(configured, PREVIOUS_KEY)["version"] == v1
    pointer = json.loads(s3.get_object(Bucket=bucket, Key=PREVIOUS_ARTIFACT_KEY)["Body"].read())
    assert pointer["artifact_id"] == v1

    # With no previous version, stale previous manifests are removed.
    write_manifests(
        configured,
        mlflow_client,
        name=NAME,
        current=v1,
        previous=None,
        changed_at=datetime.now(UTC),
    )
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {CURRENT_KEY}

    missing = configured.model_copy(update={"artifact_bucket": "no-such-bucket"})
    with pytest.raises(RegistryUnavailableError, match="no-such-bucket"):
        check_bucket(missing)
