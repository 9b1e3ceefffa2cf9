"""Public shapes of internal objects."""

from __future__ import annotations

from boltit.serving.follower import LoadedModel
from boltit.serving.schemas import ModelVersionPublic


def model_public(model: LoadedModel) -> ModelVersionPublic:
    """A loaded model as ``/model/version`` shows it."""
    return ModelVersionPublic(
        name=model.name,
        version=model.version,
        alias=model.alias,
        run_id=model.run_id,
        loaded_at=model.loaded_at,
    )
