"""``/admin/reload``: look at the aliases now and reload even an unchanged version."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from boltit.serving.deps import AdminDep, ServiceDep
from boltit.serving.schemas import ReloadPublic

router = APIRouter(tags=["admin"])


@router.post("/admin/reload", response_model=ReloadPublic)
async def reload(service: ServiceDep, _actor: AdminDep) -> ReloadPublic:
    """Force a reload of every followed alias (admin); a refused version leaves the old one."""
    results = await run_in_threadpool(service.follower.check_all, force=True)
    return ReloadPublic(
        results=[
            {"alias": r.alias, "version": r.version, "swapped": r.swapped, "error": r.error}
            for r in results
        ]
    )
