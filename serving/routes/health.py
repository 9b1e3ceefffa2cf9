"""``/health`` (liveness, with load errors) and ``/ready`` (a model is loaded)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from serving.deps import ServiceDep
from serving.schemas import HealthPublic, LoadFailurePublic, ReadyPublic
from serving.views import model_public

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthPublic)
def health(service: ServiceDep) -> HealthPublic:
    """Liveness, the versions loaded, and versions refused with why."""
    production = service.production
    challenger = service.challenger()
    failures = [
        LoadFailurePublic(version=f.version, alias=f.alias, error=f.error, at=f.at)
        for follower in service.follower.followers()
        for f in follower.failures
    ]
    follower = service.follower.production
    registry_error = follower.last_error
    # Degraded: nothing loaded, the registry unreachable, or the alias points at a version
    # this replica refused (it keeps serving the old one).
    degraded = (
        production is None
        or registry_error is not None
        or (follower.wanted is not None and follower.wanted != production.version)
    )
    return HealthPublic(
        status="degraded" if degraded else "ok",
        model=model_public(production) if production else None,
        challenger=model_public(challenger) if challenger else None,
        load_errors=sorted(failures, key=lambda f: f.at),
        registry_error=registry_error,
        flags=service.flags.values,
        flag_error=service.flags.last_error,
    )


@router.get("/ready", response_model=ReadyPublic, responses={503: {"model": ReadyPublic}})
def ready(service: ServiceDep) -> JSONResponse:
    """200 once a model version is loaded, 503 before."""
    production = service.production
    body = ReadyPublic(
        ready=production is not None, version=production.version if production else None
    )
    return JSONResponse(status_code=200 if production else 503, content=body.model_dump())
