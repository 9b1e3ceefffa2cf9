"""MLflow wiring: point MLflow at the configured stores, explicitly and once per entry point."""

from __future__ import annotations

import os

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from boltit.errors import RegistryUnavailableError
from boltit.settings import Settings


def configure_mlflow(settings: Settings) -> MlflowClient:
    """Set tracking and registry URIs from settings and return a client bound to them."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    if settings.s3_endpoint_url and not os.environ.get("MLFLOW_S3_ENDPOINT_URL"):
        # MLflow's S3 store reads this from the process environment only.
        os.environ["MLFLOW_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.registry_uri)
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)


def ensure_experiment(client: MlflowClient, settings: Settings) -> str:
    """The project's experiment id, created with the configured artifact root if missing."""
    try:
        experiment = client.get_experiment_by_name(settings.experiment_name)
        if experiment is not None:
            return str(experiment.experiment_id)
        return str(
            client.create_experiment(
                settings.experiment_name, artifact_location=settings.artifact_root
            )
        )
    except MlflowException as exc:
        raise RegistryUnavailableError(
            f"cannot use MLflow at {settings.tracking_uri}: {exc.message}"
        ) from exc
