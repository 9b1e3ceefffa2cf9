"""Annotated dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from boltit.settings import Settings
from serving.security import check_admin
from serving.service import ServingService, admin_actor


async def get_service(request: Request) -> ServingService:
    """The replica's service, built by the app factory (async: FastAPI would thread a def)."""
    service: ServingService = request.app.state.service
    return service


async def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.service.settings
    return settings


async def require_admin(
    service: Annotated[ServingService, Depends(get_service)],
    authorization: Annotated[str | None, Header()] = None,
) -> str:
    """Admin writes need the configured bearer token; returns the audit actor."""
    check_admin(authorization, expected=service.settings.admin_token_value())
    return admin_actor()


ServiceDep = Annotated[ServingService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
AdminDep = Annotated[str, Depends(require_admin)]
