"""Annotated dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from boltit.core.settings import Settings
from boltit.serving.auth import AdminClient
from boltit.serving.service import ServingService, admin_actor


async def get_service(request: Request) -> ServingService:
    """The replica's service, built by the app factory (async: FastAPI would thread a def)."""
    service: ServingService = request.app.state.service
    return service


async def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.service.settings
    return settings


async def require_admin(client: AdminClient) -> str:
    """Admin writes need a client with scope ``admin``; returns the audit actor."""
    name = client.name if client is not None else "anonymous"  # never None: admin is never open
    return f"{name} via {admin_actor()}"


ServiceDep = Annotated[ServingService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
AdminDep = Annotated[str, Depends(require_admin)]
