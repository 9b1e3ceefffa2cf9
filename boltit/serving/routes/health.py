"""``/health`` (liveness) and ``/ready`` (readiness).

- ``/ready`` is the readiness probe: 200 once a Production version is loaded, 503 before;
  a load balancer sends traffic only to ready replicas.
- ``/health`` is the liveness probe: 200 while the replica serves a model (``ok``, or
  ``degraded`` when it keeps an old version because the new one failed to load or the
  registry is unreachable), 503 ``degraded`` when no model is loaded at all. Failed loads
  are retried with backoff (``BOLTIT_LOAD_RETRY_SECONDS`` doubling to
  ``BOLTIT_LOAD_RETRY_MAX_SECONDS``), so a probe's failure threshold should outlast the cap
  before it restarts the process.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from boltit.core.model_contract import ServedVersion
from boltit.serving.deps import ServiceDep
from boltit.serving.schemas import HealthPublic, LoadFailurePublic, ReadyPublic

router = APIRouter(tags=["health"])

# Both probes are async on purpose: they only read memory, and under load a hop through
# the thread pool (contended by predictions and exports) is most of their latency.


@router.get("/health", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
async def health(service: ServiceDep) -> JSONResponse:
    """Liveness (503 when no model is loaded), the versions loaded, and refusals with why."""
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
    body = HealthPublic(
        status="degraded" if degraded else "ok",
        model=ServedVersion.model_validate(production) if production else None,
        challenger=ServedVersion.model_validate(challenger) if challenger else None,
        load_errors=sorted(failures, key=lambda f: f.at),
        registry_error=registry_error,
        flags=service.flags.values,
        flag_error=service.flags.last_error,
        insecure_open=service.settings.insecure_open,
    )
    return JSONResponse(
        status_code=200 if production is not None else 503, content=body.model_dump(mode="json")
    )


@router.get("/ready", response_model=ReadyPublic, responses={503: {"model": ReadyPublic}})
async def ready(service: ServiceDep) -> JSONResponse:
    """200 once a model version is loaded, 503 before."""
    production = service.production
    body = ReadyPublic(
        ready=production is not None, version=production.version if production else None
    )
    return JSONResponse(status_code=200 if production else 503, content=body.model_dump())
