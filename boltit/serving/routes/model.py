"""``/model/version``: what this replica serves."""

from __future__ import annotations

from fastapi import APIRouter

from boltit.serving.deps import ServiceDep
from boltit.serving.schemas import ModelVersionPublic
from boltit.serving.service import NoModelError
from boltit.serving.views import model_public

router = APIRouter(tags=["model"])


@router.get("/model/version", response_model=ModelVersionPublic)
def model_version(service: ServiceDep) -> ModelVersionPublic:
    """The registered model version serving Production traffic here."""
    model = service.production
    if model is None:
        raise NoModelError("no model version is loaded yet")
    return model_public(model)
