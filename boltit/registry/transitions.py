"""Moving ``Production``, ``previous`` and ``challenger`` and mirroring them as stages.

Aliases are the source of truth; stages are mirrored so the MLflow UI's legacy stage
column tells the same story.
"""

from __future__ import annotations

import warnings

from mlflow import MlflowClient

from boltit.core.vocabulary import (
    CHALLENGER,
    PREVIOUS,
    PRODUCTION,
    STAGE_ARCHIVED,
    STAGE_PRODUCTION,
    STAGE_STAGING,
)
from boltit.registry.lookup import aliases, registry_errors


def set_stage(client: MlflowClient, *, name: str, version: str, stage: str) -> None:
    """Mirror a move as a (deprecated, still shown) stage; never archives others implicitly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client.transition_model_version_stage(name, version, stage, archive_existing_versions=False)


def production_stage_versions(client: MlflowClient, *, name: str) -> list[str]:
    """Versions whose stage is Production, newest first."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        versions = client.search_model_versions(f"name = '{name}'")
    found = [str(v.version) for v in versions if v.current_stage == STAGE_PRODUCTION]
    return sorted(found, key=int, reverse=True)


def move_production(
    client: MlflowClient,
    *,
    name: str,
    to_version: str,
    previous: str | None,
) -> None:
    """Point ``Production`` at ``to_version`` and ``previous`` at ``previous`` (or nowhere).

    ``challenger`` is cleared when it marks the version now serving. Every other version
    left in stage Production is archived.
    """
    with registry_errors(f"cannot move the aliases of {name!r}"):
        current = aliases(client, name=name)
        client.set_registered_model_alias(name, PRODUCTION, to_version)
        if previous is not None:
            client.set_registered_model_alias(name, PREVIOUS, previous)
        elif PREVIOUS in current:
            client.delete_registered_model_alias(name, PREVIOUS)
        if current.get(CHALLENGER) == to_version:
            client.delete_registered_model_alias(name, CHALLENGER)
        set_stage(client, name=name, version=to_version, stage=STAGE_PRODUCTION)
        for version in production_stage_versions(client, name=name):
            if version != to_version:
                set_stage(client, name=name, version=version, stage=STAGE_ARCHIVED)


def mark_challenger(client: MlflowClient, *, name: str, version: str) -> None:
    """A version that passed its gates: alias ``challenger`` and stage Staging."""
    with registry_errors(f"cannot mark version {version} of {name!r} as challenger"):
        client.set_registered_model_alias(name, CHALLENGER, version)
        set_stage(client, name=name, version=version, stage=STAGE_STAGING)


def clear_challenger(client: MlflowClient, *, name: str, version: str) -> None:
    """Drop ``challenger`` when it marks ``version`` (which just failed its gates)."""
    with registry_errors(f"cannot clear the challenger of {name!r}"):
        if aliases(client, name=name).get(CHALLENGER) == version:
            client.delete_registered_model_alias(name, CHALLENGER)
