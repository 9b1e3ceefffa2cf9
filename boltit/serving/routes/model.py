"""``/model/version``: what this replica serves."""

from __future__ import annotations

from fastapi import APIRouter

from boltit.core.model_contract import ServedVersion
from boltit.serving.deps import ServiceDep
from boltit.serving.service import NoModelError

router = APIRouter(tags=["model"])


@router.get("/model/version", response_model=ServedVersion)
def model_version(service: ServiceDep) -> ServedVersion:
    """The registered model version serving Production traffic here."""
    model = service.production
    if model is None:
        raise NoModelError("no model version is loaded yet")
    return ServedVersion.model_validate(model)
