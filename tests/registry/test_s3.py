"""S3 through moto's server mode over HTTP: MLflow's artifact store and the manifests."""

from __future__ import annotations

import boto3
import mlflow
import pytest

from boltit.core.db import Database
from boltit.core.settings import Settings
from boltit.core.tracking import configure_mlflow
from boltit.core.vocabulary import PRODUCTION
from boltit.registry.manifests import (
    CURRENT_KEY,
    PREVIOUS_ARTIFACT_KEY,
    PREVIOUS_KEY,
    read_manifest,
)
from boltit.registry.promote import promote
from boltit.registry.rollback import rollback
from boltit.registry.validate import validate
from tests.registry.conftest import clone_version

BUCKET = "boltit-artifacts-pilot"


@pytest.mark.s3
def test_artifacts_and_manifests_on_s3(
    registry_settings: Settings, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from boltit.training.data import from_generator
    from boltit.training.train import TrainConfig, TrainRequest, train

    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    settings = registry_settings.model_copy(
        update={
            "artifact_root_override": f"s3://{BUCKET}/mlflow",
            "s3_endpoint_url": moto_endpoint,
            "artifact_bucket": BUCKET,
        }
    )
    client = configure_mlflow(settings)
    name = settings.model_name
    trained = train(
        TrainRequest(dataset=from_generator(1200, seed=1), config=TrainConfig(latency_samples=10)),
        settings=settings,
        client=client,
    )
    v1 = str(trained.model_version)
    stored = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="mlflow/")["Contents"]]
    assert any(k.endswith("evaluation/eval_split.parquet") for k in stored)
    assert any(k.endswith("MLmodel") for k in stored)
    v2 = clone_version(client, name=name, version=v1)

    database = Database(settings.database_url)
    common = {"client": client, "database": database, "name": name, "settings": settings}
    try:
        assert validate(**common, version=v1, actor="alice").passed  # loads from S3
        first = promote(**common, version=v1, actor="alice")
        assert first.manifests == [f"s3://{BUCKET}/{CURRENT_KEY}"]
        current = read_manifest(settings, CURRENT_KEY)
        assert (current["version"], current["run_id"]) == (v1, trained.run_id)
        assert current["metrics"]["accuracy"] == pytest.approx(trained.metrics["accuracy"])
        assert current["gates"]["validation_status"] == "passed"
        assert current["gates"]["min_accuracy"].startswith("passed")
        assert current["source"] == client.get_model_version(name, v1).source
        assert current["changed_at"] and current["version_created_at"]

        assert validate(**common, version=v2, actor="alice").passed
        promote(**common, version=v2, actor="alice")
        assert read_manifest(settings, CURRENT_KEY)["version"] == v2
        assert read_manifest(settings, PREVIOUS_KEY)["version"] == v1
        pointer = read_manifest(settings, PREVIOUS_ARTIFACT_KEY)
        assert (pointer["artifact_id"], pointer["model_uri"]) == (v1, f"models:/{name}/{v1}")

        # The serving path: load Production's model straight from S3.
        served = mlflow.pyfunc.load_model(f"models:/{name}@{PRODUCTION}")
        answer = served.unwrap_python_model().classifier.predict_frame(["my laptop is broken"])
        assert len(answer) == 1 and answer["confidence"].iloc[0] > 0

        back = rollback(**common, actor="carol", reason="drill")
        assert (back.to_version, back.previous) == (v1, None)
        assert read_manifest(settings, CURRENT_KEY)["version"] == v1
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="models/")["Contents"]}
        assert keys == {CURRENT_KEY}  # nothing served before v1: no stale previous pointer
    finally:
        database.dispose()
