"""Reading the registry with errors a user can act on, and failing fast when it is down."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

import requests
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from boltit.core.errors import BadInputError, NotFoundError, RegistryUnavailableError
from boltit.core.settings import Settings

_NOT_FOUND_CODES = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"}


def prepare_mlflow_for_cli(settings: Settings) -> None:
    """Quiet MLflow's progress bars; over HTTP, make it give up at once instead of retrying.

    MLflow reads these from the process environment only; a value the user set wins.
    """
    # Download progress bars would bury the one line a command prints.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if settings.registry_uri.startswith(("http://", "https://")):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


@contextmanager
def registry_errors(what: str) -> Iterator[None]:
    """Turn MLflow and transport failures inside the block into one-line BoltIT errors."""
    try:
        yield
    except MlflowException as exc:
        if exc.error_code in _NOT_FOUND_CODES:
            raise NotFoundError(f"{what}: {_first_line(exc.message)}") from exc
        if exc.error_code == "INVALID_PARAMETER_VALUE":
            raise BadInputError(f"{what}: {_first_line(exc.message)}") from exc
        raise RegistryUnavailableError(f"{what}: {_unreachable(exc.message)}") from exc
    except (requests.exceptions.RequestException, ConnectionError, TimeoutError) as exc:
        raise RegistryUnavailableError(f"{what}: registry unreachable ({exc})") from exc


def _unreachable(message: str) -> str:
    """MLflow wraps transport failures in a long line; keep what the user needs."""
    url = re.search(r"API request to (\S+?)(?:/api/|/ajax-api/|\s)", message)
    where = f" at {url.group(1)}" if url else ""
    for needle, short in (
        ("Connection refused", "connection refused"),
        ("timed out", "timed out"),
        ("Name or service not known", "unknown host"),
        ("Max retries exceeded", "no response"),
    ):
        if needle in message:
            return f"MLflow registry{where} is unreachable ({short})"
    return _first_line(message)


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message


def get_version(client: MlflowClient, *, name: str, version: str | int) -> ModelVersion:
    """The model version, or NotFoundError naming the model and version."""
    text = str(version).strip()
    if not text.isdigit():
        raise BadInputError(f"model version must be a number, got {version!r}")
    with registry_errors(f"cannot read version {text} of {name!r}"):
        _get_model(client, name)
        try:
            return client.get_model_version(name, text)
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND_CODES:
                raise NotFoundError(f"model {name!r} has no version {text}") from exc
            raise


def _get_model(client: MlflowClient, name: str) -> object:
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code in _NOT_FOUND_CODES:
            raise NotFoundError(f"no registered model named {name!r}") from exc
        raise


def aliases(client: MlflowClient, *, name: str) -> dict[str, str]:
    """Alias → version for the model (read from the registered model; see MLFLOW_NOTES)."""
    with registry_errors(f"cannot read model {name!r}"):
        model = _get_model(client, name)
    return {alias: str(version) for alias, version in getattr(model, "aliases", {}).items()}
