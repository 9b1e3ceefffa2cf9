"""Webhook delivery end to end: a real `mlflow server` signs and sends, the service follows.

The service polls only once a minute here, so a switch within seconds can only have come
through the webhook the server delivered.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient
from pydantic import SecretStr
from sqlalchemy import select

from boltit.app.mlflow_server import register_webhook, start_mlflow_server
from boltit.core.db import Database
from boltit.core.ports import free_port
from boltit.core.schema import AuditEvent
from boltit.core.settings import Settings
from boltit.core.vocabulary import PRODUCTION
from boltit.serving.process_tree import stop_process_group
from tests.serving.conftest import (
    MODEL,
    WEBHOOK_SECRET,
    ServiceProcess,
    register_version,
    service_env,
    wait_for,
)

pytestmark = pytest.mark.e2e


@pytest.mark.slow  # over 20 s (a real server process)
def test_alias_change_through_mlflow_server_reaches_the_service_by_webhook(
    settings: Settings, mlflow_client: MlflowClient, model_dir: Path, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"webhook_secret": SecretStr(WEBHOOK_SECRET)})
    v1 = register_version(mlflow_client, model_dir, tmp_path)
    v2 = register_version(mlflow_client, model_dir, tmp_path)
    mlflow_client.set_registered_model_alias(MODEL, PRODUCTION, v1)  # direct: no webhook fires

    mlflow_port = free_port()
    server = start_mlflow_server(settings, port=mlflow_port)
    service = ServiceProcess(
        env=service_env(settings, BOLTIT_POLL_INTERVAL="60", BOLTIT_WEBHOOK_SECRET=WEBHOOK_SECRET),
        cwd=tmp_path,
    )
    mlflow_url = f"http://127.0.0.1:{mlflow_port}"
    try:
        wait_for(lambda: _answers(f"{mlflow_url}/health"), timeout=180, interval=0.5)
        # Registered before any alias event reaches the server, whose webhook list is cached.
        register_webhook(settings, mlflow_url=mlflow_url, service_url=service.url)
        service.start().wait_ready()
        assert httpx.get(f"{service.url}/model/version").json()["version"] == v1

        # What a user does in the UI: move the alias through the tracking server.
        ui = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
        ui.set_registered_model_alias(MODEL, PRODUCTION, v2)
        seconds = wait_for(
            lambda: httpx.get(f"{service.url}/model/version").json()["version"] == v2,
            timeout=20,
            interval=0.1,
        )
    finally:
        service.stop()
        stop_process_group(server)  # mlflow server's uvicorn and job runners too
    assert seconds < 20, service.logs()  # the next poll was a minute away
    database = Database(settings.database_url, migrate_schema=False)
    try:
        with database.session() as session:
            swaps = session.scalars(
                select(AuditEvent.to_version).where(AuditEvent.action == "model_swap")
            ).all()
    finally:
        database.dispose()
    assert v2 in swaps


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
