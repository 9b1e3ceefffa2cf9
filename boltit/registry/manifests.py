"""S3 manifests the runbook's tooling reads: what serves now, what served before.

Keys (as in the runbook): ``models/current/manifest.json``, ``models/previous/manifest.json``
and ``models/previous_artifact.json`` (``.artifact_id`` is what ``rollback_model.sh`` reads).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from mlflow import MlflowClient

from boltit.core.errors import RegistryUnavailableError
from boltit.core.settings import Settings
from boltit.core.vocabulary import TAG_VALIDATION_STATUS

CURRENT_KEY = "models/current/manifest.json"
PREVIOUS_KEY = "models/previous/manifest.json"
PREVIOUS_ARTIFACT_KEY = "models/previous_artifact.json"


def s3_client(settings: Settings) -> Any:
    """A boto3 S3 client on the configured endpoint (moto, MinIO or AWS)."""
    # Imported here: boto3 costs a second, and a rollback without a bucket needs none of it.
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=15),
    )


def _s3_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return BotoCoreError, ClientError


def check_bucket(settings: Settings) -> None:
    """Fail before any alias moves when the configured bucket cannot be reached."""
    if not settings.artifact_bucket:
        return
    try:
        s3_client(settings).head_bucket(Bucket=settings.artifact_bucket)
    except _s3_errors() as exc:
        raise RegistryUnavailableError(
            f"cannot reach s3://{settings.artifact_bucket} for the model manifests: {exc}"
        ) from exc


def _iso(millis: int | None) -> str | None:
    if millis is None:
        return None
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat()


def build_manifest(
    client: MlflowClient, *, name: str, version: str, role: str, changed_at: datetime
) -> dict[str, Any]:
    """Version, run id, source URI, metrics, gate verdict and timestamps of one version."""
    mv = client.get_model_version(name, version)
    metrics: dict[str, float] = {}
    if mv.run_id:
        metrics = dict(client.get_run(mv.run_id).data.metrics)
    tags = dict(mv.tags or {})
    return {
        "model_name": name,
        "role": role,
        "version": str(mv.version),
        "artifact_id": str(mv.version),
        "run_id": mv.run_id,
        "source": mv.source,
        "model_uri": f"models:/{name}/{mv.version}",
        "metrics": metrics,
        "gates": {
            "validation_status": tags.get(TAG_VALIDATION_STATUS),
            **{k.removeprefix("gate."): v for k, v in tags.items() if k.startswith("gate.")},
        },
        "version_created_at": _iso(mv.creation_timestamp),
        "changed_at": changed_at.isoformat(),
        "written_at": datetime.now(UTC).isoformat(),
    }


def write_manifests(
    settings: Settings,
    client: MlflowClient,
    *,
    name: str,
    current: str,
    previous: str | None,
    changed_at: datetime,
) -> list[str]:
    """Write the manifests when a bucket is configured; returns the keys written."""
    if not settings.artifact_bucket:
        return []
    bucket = settings.artifact_bucket
    s3 = s3_client(settings)
    documents: dict[str, dict[str, Any]] = {
        CURRENT_KEY: build_manifest(
            client, name=name, version=current, role="current", changed_at=changed_at
        )
    }
    if previous is not None:
        previous_manifest = build_manifest(
            client, name=name, version=previous, role="previous", changed_at=changed_at
        )
        documents[PREVIOUS_KEY] = previous_manifest
        documents[PREVIOUS_ARTIFACT_KEY] = {
            "artifact_id": previous_manifest["version"],
            "model_name": name,
            "model_uri": previous_manifest["model_uri"],
            "run_id": previous_manifest["run_id"],
            "written_at": previous_manifest["written_at"],
        }
    try:
        for key, document in documents.items():
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=json.dumps(document, indent=2, sort_keys=True).encode(),
                ContentType="application/json",
            )
        if previous is None:
            # No previous version: a stale pointer would send a rollback to the wrong model.
            for key in (PREVIOUS_KEY, PREVIOUS_ARTIFACT_KEY):
                s3.delete_object(Bucket=bucket, Key=key)
    except _s3_errors() as exc:
        raise RegistryUnavailableError(f"cannot write manifests to s3://{bucket}: {exc}") from exc
    return [f"s3://{bucket}/{key}" for key in documents]


def read_manifest(settings: Settings, key: str) -> dict[str, Any]:
    """One manifest as written (used by tests and ``rollback_model.sh``-style tooling)."""
    if not settings.artifact_bucket:
        raise RegistryUnavailableError("BOLTIT_ARTIFACT_BUCKET is not set")
    body = s3_client(settings).get_object(Bucket=settings.artifact_bucket, Key=key)["Body"]
    loaded: dict[str, Any] = json.loads(body.read())
    return loaded
