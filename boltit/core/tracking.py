"""MLflow wiring: point MLflow at the configured stores, explicitly and once per entry point."""

from __future__ import annotations

import os
from contextlib import ExitStack

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import OperationalError

from boltit.core.db import initialisation_lock
from boltit.core.errors import RegistryUnavailableError
from boltit.core.settings import Settings, normalise_database_url


def configure_mlflow(settings: Settings) -> MlflowClient:
    """Set tracking and registry URIs from settings and return a client bound to them.

    SQLite and PostgreSQL stores are opened here, under a lock, so a fresh one is
    migrated once.
    """
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    if settings.s3_endpoint_url and not os.environ.get("MLFLOW_S3_ENDPOINT_URL"):
        # MLflow's S3 store reads this from the process environment only.
        os.environ["MLFLOW_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.registry_uri)
    return _open_stores(settings)


def _open_stores(settings: Settings) -> MlflowClient:
    # MLflow creates and migrates an empty SQL store on first use with no lock of its
    # own: processes that start together each run the migrations, print tracebacks and can
    # leave ``_alembic_tmp_*`` tables behind for good. The first process here migrates;
    # the others wait, then find the schema current. Stores are cached per process.
    # One lock per database: two connections of this process asking for the same advisory
    # lock would wait for each other forever.
    database_uris = sorted(
        {
            normalise_database_url(uri)
            for uri in (settings.tracking_uri, settings.registry_uri)
            if _is_database(uri)
        }
    )
    try:
        with ExitStack() as locks:
            for uri in database_uris:
                locks.enter_context(initialisation_lock(uri))
            # The client builds the tracking store when it is created, the registry store on
            # first use; a cheap search makes both exist before the lock is released.
            client = MlflowClient(
                tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri
            )
            if database_uris:
                client.search_registered_models(max_results=1)
    except MlflowException as exc:
        raise RegistryUnavailableError(
            f"cannot open the MLflow store at {settings.tracking_uri}: {exc.message}"
        ) from exc
    except OperationalError as exc:
        raise RegistryUnavailableError(
            f"cannot reach the MLflow store at {settings.tracking_uri}: {exc.orig}"
        ) from exc
    return client


def _is_database(uri: str) -> bool:
    return uri.startswith(("sqlite", "postgresql", "postgres:"))


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
