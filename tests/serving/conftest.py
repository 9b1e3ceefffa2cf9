"""Serving fixtures: a real trained classifier, real registries, and the service running live.

The classifier is trained once per session (small generated data) and saved as an MLflow
model directory; each test registers versions of it into its own fresh registry, so
tests never share registry state and never pay for training twice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from mlflow import MlflowClient
from pydantic import SecretStr

from boltit.core.polling import wait_until
from boltit.core.ports import free_port
from boltit.core.settings import Settings, load_settings
from boltit.core.tracking import configure_mlflow
from tests.children import killed_with
from tests.conftest import PROJECT_ENV
from tests.once import built_once

VENV_BIN = Path(sys.executable).parent
ADMIN_TOKEN = "test-admin-token"
ALL_SCOPES = ("classify", "feedback", "read", "admin")
WEBHOOK_SECRET = "test-webhook-secret"
MODEL = "ticket-classifier"


@pytest.fixture(scope="package", autouse=True)
def _serving_tests_run_open() -> Iterator[None]:
    """Tests that are not about access control call the service without a token.

    They run it as ``BOLTIT_INSECURE_OPEN=true`` does (admin routes still need the admin
    token); ``test_auth.py`` and the contract test turn it off and use client tokens.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BOLTIT_INSECURE_OPEN", "true")
        yield


def add_client(settings: Settings, name: str, *scopes: str) -> str:
    """Create client ``name`` in the settings' clients file; returns its token."""
    from boltit.core.clients import ClientFile

    _, token = ClientFile(settings.clients_path).create(name, scopes or ALL_SCOPES)
    return token


def bearer(token: str) -> dict[str, str]:
    """The header a client sends."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client_token(live_settings: Settings) -> str:
    """A client with every scope in ``live_settings``' clients file (services built on
    ``live_settings`` accept it: the file is read when it changes)."""
    return add_client(live_settings, "tests", *ALL_SCOPES)


@pytest.fixture
def client_headers(client_token: str) -> dict[str, str]:
    """Default headers for an ``httpx.Client`` that acts as the all-scope test client."""
    return bearer(client_token)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained classifier (3,000 generated tickets) as a local MLflow model directory,
    trained once per run (shared by xdist workers: tests/once.py)."""
    return built_once(tmp_path_factory, "serving-model", _train_model_dir)


def _train_model_dir(root: Path) -> Path:
    import mlflow

    settings = load_settings(state_dir=root / "state")
    client = configure_mlflow(settings)
    from boltit.training.data import from_generator
    from boltit.training.train import TrainRequest, train

    result = train(
        TrainRequest(dataset=from_generator(3000, seed=5), register=True),
        settings=settings,
        client=client,
    )
    target = root / "model"
    mlflow.artifacts.download_artifacts(
        f"models:/{settings.model_name}/{result.model_version}", dst_path=str(target)
    )
    return target


def register_version(
    client: MlflowClient, model_dir: Path, where: Path, *, run_id: str | None = None
) -> str:
    """Register a copy of the trained model as a new version (of ``run_id``, when given);
    returns its number."""
    copy = where / f"model-copy-{time.monotonic_ns()}"
    shutil.copytree(model_dir, copy)
    try:
        client.get_registered_model(MODEL)
    except Exception:
        client.create_registered_model(MODEL)
    version = client.create_model_version(MODEL, source=copy.as_uri(), run_id=run_id)
    return str(version.version)


def version_source(client: MlflowClient, version: str) -> Path:
    """The local folder a registered version was made from."""
    source = client.get_model_version(MODEL, version).source
    assert source is not None
    return Path(source.removeprefix("file://"))


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for a service process built on ``settings``'s stores."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOLTIT_", "MLFLOW_"))}
    env.pop("AUTO_APPLY_ENABLED", None)
    env.update(
        {
            "BOLTIT_STATE_DIR": str(settings.state_dir),
            "BOLTIT_DATABASE_URL": settings.database_url,
            "MLFLOW_TRACKING_URI": settings.tracking_uri,
            "BOLTIT_POLL_INTERVAL": "0.2",
            # Callers without a token are served (see _serving_tests_run_open).
            "BOLTIT_INSECURE_OPEN": "true",
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    env.update(extra)
    return env


@dataclass
class ServiceProcess:
    """``boltit serve`` in a subprocess on a free loopback port."""

    env: dict[str, str]
    cwd: Path
    workers: int = 1
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        self.log = self.cwd / f"serve-{self.port}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    str(VENV_BIN / "boltit"),
                    "serve",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                ],
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # Its own session for killpg; killed with pytest even when pytest is killed -9.
                preexec_fn=killed_with(os.getpid()),
            )
        return self

    def wait_ready(self, timeout: float = 120) -> None:
        process = self.process
        assert process is not None

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"service exited {process.returncode}: {self.logs()}")
            try:
                return httpx.get(f"{self.url}/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        if wait_until(ready, timeout=timeout, interval=0.3) is None:
            raise AssertionError(f"service not ready after {timeout} s: {self.logs()}")

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, 15)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait(timeout=10)


class ServiceThread:
    """The app on ``uvicorn.Server`` in a thread of the test process (quicker to start)."""

    def __init__(self, settings: Settings) -> None:
        from boltit.serving.app import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServiceThread:
        self.thread.start()

        def started() -> bool:
            if not self.thread.is_alive():
                raise AssertionError("in-thread service did not start")
            return bool(self.server.started)

        if wait_until(started, timeout=60, interval=0.05) is None:
            raise AssertionError("in-thread service did not start")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def wait_for(predicate: Any, *, timeout: float, interval: float = 0.05) -> float:
    """Seconds until ``predicate()`` is true; fails the test after ``timeout``."""
    waited = wait_until(lambda: bool(predicate()), timeout=timeout, interval=interval)
    if waited is None:
        raise AssertionError(f"condition not met within {timeout} s")
    return waited


@pytest.fixture
def live_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Test settings with an admin token, a webhook secret and a fast poll."""
    return settings.model_copy(
        update={
            "admin_token": SecretStr(ADMIN_TOKEN),
            "webhook_secret": SecretStr(WEBHOOK_SECRET),
            "poll_interval_seconds": 0.2,
        }
    )


@pytest.fixture
def production_v1(mlflow_client: MlflowClient, model_dir: Path, tmp_path: Path) -> str:
    """Version 1 registered and aliased Production in this test's registry."""
    version = register_version(mlflow_client, model_dir, tmp_path)
    mlflow_client.set_registered_model_alias(MODEL, "Production", version)
    return version


def iter_lines(text: str) -> Iterator[str]:
    """Non-comment lines of a Prometheus exposition."""
    return (line for line in text.splitlines() if line and not line.startswith("#"))


@pytest.fixture(scope="module")
def module_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings for a module-wide service: admin token, webhook secret, 0.2 s poll."""
    root = tmp_path_factory.mktemp("module")
    with pytest.MonkeyPatch.context() as patch:
        for name in PROJECT_ENV:
            patch.delenv(name, raising=False)
        yield load_settings(
            state_dir=root / "state",
            admin_token=ADMIN_TOKEN,
            webhook_secret=WEBHOOK_SECRET,
            poll_interval_seconds=0.2,
        )
