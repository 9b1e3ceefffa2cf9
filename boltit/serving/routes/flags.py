"""``/admin/feature-flags``: read by anyone, changed by an admin; every replica follows."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from boltit.core.flags import FlagValues
from boltit.serving.deps import AdminDep, ServiceDep
from boltit.serving.schemas import FeatureFlagsPublic, FeatureFlagsUpdate

router = APIRouter(tags=["admin"])


def _public(values: FlagValues) -> FeatureFlagsPublic:
    return FeatureFlagsPublic(
        auto_apply_enabled=values.auto_apply_enabled,
        shadow_enabled=values.shadow_enabled,
        canary_percent=values.canary_percent,
    )


@router.get("/admin/feature-flags", response_model=FeatureFlagsPublic)
def read_flags(service: ServiceDep) -> FeatureFlagsPublic:
    """The flags this replica currently follows."""
    return _public(service.flags.current)


@router.put("/admin/feature-flags", response_model=FeatureFlagsPublic)
async def update_flags(
    body: FeatureFlagsUpdate, service: ServiceDep, actor: AdminDep
) -> FeatureFlagsPublic:
    """Set auto-apply, shadow scoring or the canary share for every replica (admin; audited)."""
    values = await run_in_threadpool(
        service.set_flags,
        actor=actor,
        reason=body.reason,
        auto_apply_enabled=body.auto_apply_enabled,
        shadow_enabled=body.shadow_enabled,
        canary_percent=body.canary_percent,
    )
    return _public(values)
