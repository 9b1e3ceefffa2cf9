"""Issue 15 end to end: a bad version on a gradual rollout is aborted at its first step.

v1 serves with auto-apply on, in a real ``boltit serve``; v4 is v1's classifier behind model
code that raises on some tickets (it passed its gates: the evaluation set has none of those
tickets). ``boltit rollout start 4`` runs as a real console script with PagerDuty and Slack
pointed at a loopback receiver, while the test sends the help desk's traffic. The rollout
must abort at 5 %, page with the incident's dedup key, put the canary share back to 0, and
v4 must have auto-applied nothing while v1's confident tickets did.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient
from sqlalchemy import select

from boltit.core import flags
from boltit.core.clients import ClientFile, Scope
from boltit.core.db import Database
from boltit.core.model_contract import ServedVersion
from boltit.core.polling import wait_until
from boltit.core.ports import free_port
from boltit.core.schema import Ticket
from boltit.core.settings import Settings
from boltit.core.vocabulary import TAG_VALIDATION_STATUS, VALIDATION_PASSED
from boltit.monitoring import incidents
from boltit.monitoring.rollout import latest_rollout
from boltit.monitoring.rollout_steps import ROLLOUT_ABORTED
from tests.children import killed_with
from tests.model_code import register_model_code
from tests.monitoring.conftest import TrainedState, force_promote
from tests.monitoring.receiver import receiver
from tests.serving.raising_model_code import RAISE_MARKER

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BOLTIT = Path(sys.executable).with_name("boltit")
RAISING_CODE = Path(__file__).parents[1] / "serving" / "raising_model_code.py"
ROUTING_KEY = "R0UT1NGKEY0123456789012345678901"
Trained = tuple[Settings, MlflowClient, Database, TrainedState]
TEXTS = [
    "my laptop screen is cracked and flickers",
    "cannot connect to the office wifi since this morning",
    "please reset my password for the payroll portal",
    "need a new keyboard and mouse for the new starter",
    "shared drive is full and I cannot save files",
    "vpn drops every few minutes when working from home",
]


def _environment(settings: Settings, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "BOLTIT_")) and k != "AUTO_APPLY_ENABLED"
    }
    env.update(
        BOLTIT_STATE_DIR=str(settings.state_dir),
        BOLTIT_POLL_INTERVAL="0.5",
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        COLUMNS="250",
        **extra,
    )
    env["PATH"] = f"{BOLTIT.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _served_version(url: str) -> str | None:
    try:
        answer = httpx.get(f"{url}/model/version", timeout=5)
    except httpx.HTTPError:
        return None
    return ServedVersion.model_validate(answer.json()).version if answer.is_success else None


@pytest.fixture
def service(trained: Trained, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """v1 in Production behind a real ``boltit serve``; the help desk's token."""
    settings, client, database, _ = trained
    force_promote(settings, client, database, "1", reason="first version goes live")
    _, token = ClientFile(settings.clients_path).create(
        "help-desk", {Scope.classify, Scope.feedback}
    )
    port = free_port()
    log_path = tmp_path / "service.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(BOLTIT), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=_environment(settings),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=killed_with(os.getpid()),
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def serving_v1() -> bool:
            if process.poll() is not None:
                pytest.fail(f"service exited:\n{log_path.read_text()[-3000:]}")
            return _served_version(url) == "1"

        assert wait_until(serving_v1, timeout=180, interval=0.25) is not None
        yield url, {"Authorization": f"Bearer {token}"}
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class Traffic:
    """The help desk classifying tickets in batches on a thread until stopped; every other
    ticket carries the text the bad version raises on."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self._http = httpx.Client(base_url=url, headers=headers, timeout=30)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.sent = 0
        self.failures: list[str] = []

    def _run(self) -> None:
        while not self._stop.is_set():
            texts = []
            for _ in range(20):
                marker = f" {RAISE_MARKER}" if self.sent % 2 else ""
                texts.append(f"{TEXTS[self.sent % len(TEXTS)]} (ref {self.sent}){marker}")
                self.sent += 1
            answer = self._http.post("/classify/batch", json={"texts": texts})
            if answer.status_code != 200:
                self.failures.append(answer.text[:300])
            self._stop.wait(0.05)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        self._http.close()


def _canary_percent(settings: Settings, database: Database) -> float:
    with database.session() as session:
        return flags.read_values(session, defaults=flags.defaults_from(settings)).canary_percent


def test_a_bad_version_on_a_gradual_rollout_is_aborted_at_its_first_step(
    trained: Trained, service: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    settings, client, database, _ = trained
    url, headers = service
    name = settings.model_name
    v1 = tmp_path / "v1"
    mlflow.artifacts.download_artifacts(f"models:/{name}/1", dst_path=str(v1))
    bad = register_model_code(RAISING_CODE, model_dir=v1, name=name)
    # It passed its gates: what `promote` and `rollout start` read.
    client.set_model_version_tag(name, bad, TAG_VALIDATION_STATUS, VALIDATION_PASSED)

    with receiver() as pager, Traffic(url, headers) as traffic:
        started = subprocess.run(
            [
                str(BOLTIT),
                "rollout",
                "start",
                bad,
                "--steps",
                "5,25,50,100",
                "--interval",
                "20s",
                "--min-rows",
                "20",
                "--reason",
                "issue 15 end to end",
            ],
            env=_environment(
                settings,
                BOLTIT_PAGERDUTY_ROUTING_KEY=ROUTING_KEY,
                BOLTIT_PAGERDUTY_URL=f"{pager.url}/pagerduty",
                BOLTIT_SLACK_WEBHOOK_URL=f"{pager.url}/slack",
            ),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=240,
            preexec_fn=killed_with(os.getpid()),
        )
        triggers = pager.bodies("/pagerduty")
    output = started.stdout + started.stderr
    assert started.returncode == 1, output
    assert not traffic.failures, traffic.failures[:3]  # callers never saw the canary fail
    assert f"v{bad} of {name} at 5%" in started.stdout, output
    assert "step 1/4 at 5%" in started.stdout and "abort: error rate regressed" in output

    rollout = latest_rollout(database, model_name=name)
    assert rollout.status == "aborted" and rollout.step_index == 0, rollout
    assert rollout.reason is not None and rollout.reason.startswith("regression at 5%")
    [entry] = rollout.history
    assert entry["evidence"]["percent"] == 5.0 and entry["evidence"]["canary_errors"] > 0
    assert _canary_percent(settings, database) == 0.0

    assert rollout.incident_id is not None
    incident = incidents.get_incident(database, rollout.incident_id)
    dedup = f"boltit/{name}/incident-{incident.id}"
    assert [(body["event_action"], body["dedup_key"]) for body in triggers] == [("trigger", dedup)]
    assert triggers[0]["payload"]["custom_details"]["rollout"] == rollout.id
    timeline = {event.kind: event for event in incident.events}
    assert ROLLOUT_ABORTED in timeline
    paged = [e for e in incident.events if e.details.get("channel") == "pagerduty"]
    assert paged and paged[0].details["ok"] and paged[0].details["dedup_key"] == dedup

    with database.session() as session:
        rows = session.execute(
            select(Ticket.model_version, Ticket.served_by, Ticket.auto_applied)
        ).all()
    bad_rows = [row for row in rows if row.model_version == bad]
    assert bad_rows, "the bad version answered no ticket: the check below would prove nothing"
    assert {row.served_by for row in bad_rows} == {"canary"}
    assert not any(row.auto_applied for row in bad_rows)
    assert any(row.auto_applied for row in rows if row.model_version == "1")
    assert any(row.served_by == "canary-fallback" for row in rows)

    # The replica has let go of the canary: new tickets are all Production's.
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:

        def all_production() -> bool:
            texts = [f"{TEXTS[i % len(TEXTS)]} after the abort {i}" for i in range(100)]
            answers = http.post("/classify/batch", json={"texts": texts}).json()["results"]
            return {answer["model_version"] for answer in answers} == {"1"}

        assert wait_until(all_production, timeout=15, interval=0.5) is not None

    # A rollout whose loop is stopped (SIGTERM, as a deploy or Ctrl-C would) puts the share
    # back to 0 on its way out and records why.
    client.set_model_version_tag(name, "3", TAG_VALIDATION_STATUS, VALIDATION_PASSED)
    with (tmp_path / "second.log").open("w") as log:
        second = subprocess.Popen(
            [str(BOLTIT), "rollout", "start", "3", "--interval", "10m", "--reason", "good v3"],
            env=_environment(settings),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=killed_with(os.getpid()),
        )
    try:

        def rolling_out() -> bool:
            assert second.poll() is None, (tmp_path / "second.log").read_text()
            return _canary_percent(settings, database) == 5.0

        assert wait_until(rolling_out, timeout=120, interval=0.25) is not None
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 130, (tmp_path / "second.log").read_text()
    finally:
        if second.poll() is None:
            second.kill()
    interrupted = latest_rollout(database, model_name=name)
    assert interrupted.version == "3" and interrupted.status == "aborted"
    assert interrupted.reason is not None and interrupted.reason.endswith(": interrupted")
    assert _canary_percent(settings, database) == 0.0
