"""The MLflow UI as a real client: changes made through `mlflow server`'s REST API, synced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow import MlflowClient

from boltit.core.polling import wait_until
from boltit.core.ports import free_port
from boltit.core.settings import Settings
from boltit.core.vocabulary import CHALLENGER, PREVIOUS, PRODUCTION, UI_PRODUCTION_ALIAS
from boltit.registry.history import registry_history
from boltit.registry.lookup import aliases
from boltit.registry.sync import watch
from boltit.registry.validate import validate
from tests.children import killed_with
from tests.registry.conftest import TrainedVersions, clone_version, serve_validated

VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def mlflow_ui(
    registry_settings: Settings, trained_client: MlflowClient, tmp_path: Path
) -> Iterator[str]:
    """`mlflow server` on this test's backend store, as a user would open the UI."""
    port = free_port()
    log = (tmp_path / "mlflow-server.log").open("wb")
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    server = subprocess.Popen(
        [
            str(VENV_BIN / "mlflow"), "server",
            "--backend-store-uri", registry_settings.tracking_uri,
            "--default-artifact-root", (tmp_path / "ui-artifacts").as_uri(),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        preexec_fn=killed_with(os.getpid(), signal.SIGTERM),  # stopped even if pytest is killed
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            if server.poll() is not None:
                pytest.fail(f"mlflow server exited: {(tmp_path / 'mlflow-server.log').read_text()}")
            try:
                return httpx.get(f"{url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        if wait_until(healthy, timeout=180, interval=0.5) is None:
            pytest.fail("mlflow server did not answer /health within 180 s")
        yield url
    finally:
        # The server runs uvicorn as a child; stop the session this test started, by its id.
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        log.close()


def ui_transition_to_production(url: str, *, name: str, version: str) -> None:
    """What the legacy stage control in the UI sends."""
    response = httpx.post(
        f"{url}/ajax-api/2.0/mlflow/model-versions/transition-stage",
        json={
            "name": name,
            "version": version,
            "stage": "Production",
            "archive_existing_versions": False,
        },
        timeout=30,
    )
    response.raise_for_status()


def ui_set_alias(url: str, *, name: str, alias: str, version: str) -> None:
    """What the UI's alias editor sends."""
    response = httpx.post(
        f"{url}/ajax-api/2.0/mlflow/registered-models/alias",
        json={"name": name, "alias": alias, "version": version},
        timeout=30,
    )
    response.raise_for_status()


def _stage(client: MlflowClient, name: str, version: str) -> str:
    return str(client.get_model_version(name, version).current_stage)


@pytest.mark.slow  # `mlflow server` starting is most of its 25 s
def test_ui_changes_are_synced_accepted_or_reverted(
    mlflow_ui: str, boltit, target: dict[str, Any], trained_versions: TrainedVersions
) -> None:
    client, name, registry_db = target["client"], target["name"], target["database"]
    good, bad = trained_versions.good, trained_versions.bad
    serve_validated(target, good)
    twin = clone_version(client, name=name, version=good)
    assert validate(**target, version=twin, actor="alice").passed

    code, out, _ = boltit("registry", "sync")
    assert code == 0 and "nothing to sync" in out

    # A validated version moved to stage Production in the UI is accepted.
    ui_transition_to_production(mlflow_ui, name=name, version=twin)
    assert aliases(client, name=name)[PRODUCTION] == good  # the UI moved only the stage
    code, out, err = boltit("registry", "sync", "--actor", "sync-bot")
    assert code == 0, err
    assert f"stage change to v{twin}" in out and "accepted" in out
    assert aliases(client, name=name) == {PRODUCTION: twin, PREVIOUS: good}
    assert CHALLENGER not in aliases(client, name=name)
    assert (_stage(client, name, twin), _stage(client, name, good)) == ("Production", "Archived")

    # A version that fails its gates, moved to Production in the UI, is reverted.
    ui_transition_to_production(mlflow_ui, name=name, version=bad)
    code, out, _ = boltit("registry", "sync", "--actor", "sync-bot")
    assert code == 0 and "reverted" in out
    assert aliases(client, name=name) == {PRODUCTION: twin, PREVIOUS: good}
    assert (_stage(client, name, bad), _stage(client, name, twin)) == ("Archived", "Production")
    description = client.get_model_version(name, bad).description
    assert "Reverted by `boltit registry sync`" in description
    assert "gates failed: min_accuracy" in description

    # Moving the Production alias by hand is noticed too; --watch keeps polling.
    ui_set_alias(mlflow_ui, name=name, alias=PRODUCTION, version=bad)
    seen = watch(**target, actor="sync-bot", interval=0.1, max_cycles=2)
    assert seen == 1
    assert aliases(client, name=name)[PRODUCTION] == twin

    # The UI's alias editor saves "Production" as typed, lowercased: that asks for a move too,
    # judged like any other, and the lowercase alias goes once it is answered.
    ui_set_alias(mlflow_ui, name=name, alias=UI_PRODUCTION_ALIAS, version=bad)
    code, out, _ = boltit("registry", "sync", "--actor", "sync-bot")
    assert code == 0 and f"ui_alias change to v{bad}" in out and "reverted" in out
    assert aliases(client, name=name) == {PRODUCTION: twin, PREVIOUS: good}
    ui_set_alias(mlflow_ui, name=name, alias=UI_PRODUCTION_ALIAS, version=twin)
    code, out, _ = boltit("registry", "sync", "--actor", "sync-bot")
    assert code == 0 and "nothing to sync" in out  # it already serves
    assert aliases(client, name=name) == {PRODUCTION: twin, PREVIOUS: good}

    events = [
        (e.action, e.from_version, e.to_version, (e.details or {}).get("outcome"),
         (e.details or {}).get("via"))
        for e in registry_history(registry_db, model_name=name)
        if e.action in ("registry_sync", "sync_revert")
    ]  # fmt: skip
    assert events == [
        ("registry_sync", good, twin, "accepted", "stage"),
        ("registry_sync", twin, bad, "reverted", "stage"),
        ("sync_revert", bad, twin, "reverted", "stage"),
        ("registry_sync", twin, bad, "reverted", "alias"),
        ("sync_revert", bad, twin, "reverted", "alias"),
        ("registry_sync", twin, bad, "reverted", "ui_alias"),
        ("sync_revert", bad, twin, "reverted", "ui_alias"),
    ]
    code, out, _ = boltit("history")
    assert code == 0 and "registry_sync" in out and "sync_revert" in out
    code, out, _ = boltit("registry", "sync", "--watch", "--interval", "0.1", "--max-cycles", "1")
    assert code == 0
