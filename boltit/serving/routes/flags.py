"""``/admin/feature-flags``: read by anyone, changed by an admin; every replica follows."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from boltit.serving.deps import AdminDep, ServiceDep
from boltit.serving.schemas import FeatureFlagsPublic, FeatureFlagsUpdate

router = APIRouter(tags=["admin"])


@router.get("/admin/feature-flags", response_model=FeatureFlagsPublic)
def read_flags(service: ServiceDep) -> FeatureFlagsPublic:
    """The flags this replica currently follows."""
    return FeatureFlagsPublic(auto_apply_enabled=service.flags.auto_apply_enabled)


@router.put("/admin/feature-flags", response_model=FeatureFlagsPublic)
async def update_flags(
    body: FeatureFlagsUpdate, service: ServiceDep, actor: AdminDep
) -> FeatureFlagsPublic:
    """Turn auto-apply on or off for every replica (admin; recorded in the audit history)."""
    values = await run_in_threadpool(
        service.set_auto_apply, enabled=body.auto_apply_enabled, actor=actor, reason=body.reason
    )
    return FeatureFlagsPublic(auto_apply_enabled=values["auto_apply_enabled"])
