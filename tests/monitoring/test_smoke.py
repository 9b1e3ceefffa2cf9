"""``boltit smoke`` and the monitor's smoke test after a rollback, against a real
``boltit serve`` on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient
from pydantic import SecretStr

from boltit.core.clients import ClientFile, Scope
from boltit.core.db import Database
from boltit.core.polling import wait_until
from boltit.core.ports import free_port
from boltit.core.settings import Settings
from boltit.monitoring import incidents
from boltit.monitoring.monitor import run_once
from boltit.monitoring.smoke import load_smoke_tickets
from tests.console_script import point_cli_at, run_boltit
from tests.monitoring.conftest import TrainedState, force_promote
from tests.monitoring.tickets import add_tickets

# Each test starts its own `boltit serve` (20-50 s with the model load on a busy machine).
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BOLTIT = Path(sys.executable).with_name("boltit")
Trained = tuple[Settings, MlflowClient, Database, TrainedState]


def _served_version(url: str) -> str | None:
    try:
        answer = httpx.get(f"{url}/model/version", timeout=5)
    except httpx.HTTPError:
        return None
    return str(answer.json()["version"]) if answer.status_code == 200 else None


def _wait_for(url: str, version: str, timeout: float = 180) -> None:
    if wait_until(lambda: _served_version(url) == version, timeout=timeout, interval=0.25) is None:
        pytest.fail(f"service does not serve v{version} after {timeout} s")


@pytest.fixture
def service(trained: Trained, smoke_token: str, tmp_path: Path) -> Iterator[str]:
    """``boltit serve`` on the test's stores, v1 in Production (the service refuses to start
    open without a client, hence the smoke test's token first)."""
    settings, client, database, _ = trained
    force_promote(settings, client, database, "1", reason="first version goes live")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "BOLTIT_"))}
    env.update(BOLTIT_STATE_DIR=str(settings.state_dir), BOLTIT_POLL_INTERVAL="0.5")
    port = free_port()
    log = (tmp_path / "service.log").open("w")
    process = subprocess.Popen(
        [str(BOLTIT), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, "1")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@pytest.fixture
def smoke_token(trained: Trained) -> str:
    _, token = ClientFile(trained[0].clients_path).create("smoke-test", {Scope.classify})
    return token


def _smoke(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    *args: str,
) -> tuple[int, str]:
    point_cli_at(settings, monkeypatch)
    code, out, err = run_boltit(monkeypatch, capsys, "smoke", *args)
    return code, out + err


def test_smoke_passes_against_the_production_version(
    trained: Trained,
    service: str,
    smoke_token: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BOLTIT_SMOKE_TOKEN", smoke_token)

    code, output = _smoke(monkeypatch, capsys, trained[0], "--url", service, "--calls", "10")

    assert code == 0, output
    assert "serves v1 = Production" in output
    assert "flag on;" in output and "p95 latency of 10 calls" in output
    tickets = load_smoke_tickets()
    # Every packaged category is one the generated training data has: none skipped.
    assert f"{len(tickets) + 5} passed, 0 failed, 0 skipped" in output


def test_smoke_fails_on_a_wrong_version_or_without_a_token(
    trained: Trained,
    service: str,
    smoke_token: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = trained[0]
    code, output = _smoke(
        monkeypatch, capsys, settings, "--url", service, "--token", smoke_token,
        "--expect-version", "3", "--calls", "3",
    )  # fmt: skip
    assert code == 1
    assert "serves v1, Production is v3" in output and "FAILED" in output

    code, output = _smoke(monkeypatch, capsys, settings, "--url", service, "--calls", "3")
    assert code == 1
    # The service refuses anonymous classification: one clear row, not a 401 per ticket.
    assert "no client token" in output and "HTTP 401" not in output


def test_smoke_fails_when_the_model_predicts_the_wrong_categories(
    trained: Trained,
    service: str,
    smoke_token: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings, client, database, _ = trained
    force_promote(settings, client, database, "2")  # trained on mostly wrong labels
    _wait_for(service, "2", timeout=60)

    code, output = _smoke(
        monkeypatch, capsys, settings, "--url", service, "--token", smoke_token, "--calls", "3"
    )

    assert code == 1, output
    assert "serves v2 = Production" in output
    assert "classified" in output  # at least one known ticket landed in another category


def test_the_monitor_runs_the_smoke_test_after_a_rollback(
    trained: Trained, service: str, smoke_token: str
) -> None:
    settings, client, database, _ = trained
    add_tickets(database, version="1", n=300, accuracy=0.95, seed=41)
    force_promote(settings, client, database, "2")
    _wait_for(service, "2", timeout=60)
    add_tickets(database, version="2", n=120, accuracy=0.3, seed=42)
    settings = settings.model_copy(update={"smoke_token": SecretStr(smoke_token)})

    result = run_once(
        settings=settings, database=database, client=client, service_url=service, verify_timeout=60
    )

    assert result.response.rolled_back_to == "1" and result.response.verified
    assert result.response.smoke_ok is True
    view = incidents.get_incident(database, "latest")
    smoke = [e for e in view.events if e.kind == incidents.SMOKE_TEST]
    assert len(smoke) == 1 and smoke[0].details["ok"]
    assert "passed" in smoke[0].message
    checks = {c["check"]: c for c in smoke[0].details["checks"]}
    assert "serves v1 = Production" in checks["/model/version"]["detail"]
    # The monitor turned auto-apply off; the smoke test expects it off and saw it off.
    assert checks["auto-apply"]["outcome"] == "pass"
    assert checks["auto-apply"]["detail"].startswith("flag off; 0/")
