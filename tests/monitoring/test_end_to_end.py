"""The whole story with no human step, against a real service on loopback.

v1 serves; a worse v2 is forced live; agents' feedback through the API shows the drop;
``boltit monitor --once`` disables auto-apply and rolls back to v1; the running service
switches to v1 without a restart; the incident, its review and the history show each step.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pandas as pd
import pytest
from mlflow import MlflowClient
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from boltit.app.cli import build_app
from boltit.core import audit, flags
from boltit.core.clients import ClientFile
from boltit.core.db import Database
from boltit.core.model_contract import ServedVersion
from boltit.core.polling import wait_until
from boltit.core.ports import free_port
from boltit.core.schema import utcnow
from boltit.core.settings import Settings
from boltit.core.vocabulary import AUTO_APPLY_FLAG, PRODUCTION
from boltit.training.generator import generate_tickets
from tests.monitoring.conftest import AMBIGUITY, TrainedState, force_promote

pytestmark = pytest.mark.e2e

BOLTIT = Path(sys.executable).with_name("boltit")
Trained = tuple[Settings, MlflowClient, Database, TrainedState]


def _environment(settings: Settings, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "BOLTIT_")) and k != "AUTO_APPLY_ENABLED"
    }
    env.update(BOLTIT_STATE_DIR=str(settings.state_dir), BOLTIT_POLL_INTERVAL="0.5", **extra)
    env["PATH"] = f"{BOLTIT.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture
def agent_headers(trained: Trained) -> dict[str, str]:
    """The help desk's client: it classifies and sends feedback with its own token, so the
    monitor counts its labels (anonymous feedback is not ground truth)."""
    from boltit.core.clients import Scope

    settings = trained[0]
    _, token = ClientFile(settings.clients_path).create(
        "help-desk", {Scope.classify, Scope.feedback}
    )
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def service(trained: Trained, agent_headers: dict[str, str], tmp_path: Path) -> Iterator[str]:
    settings, client, database, _ = trained
    force_promote(settings, client, database, "1", reason="first version goes live")
    port = free_port()
    log = (tmp_path / "service.log").open("w")
    process = subprocess.Popen(
        [str(BOLTIT), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=_environment(settings),
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_version(url, "1", timeout=180, process=process, log=tmp_path / "service.log")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _wait_for_version(
    url: str,
    version: str,
    *,
    timeout: float,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    seen = None

    def serves_it() -> bool:
        nonlocal seen
        if process is not None and process.poll() is not None:
            text = log.read_text() if log else ""
            pytest.fail(f"service exited with {process.returncode}:\n{text[-3000:]}")
        try:
            answer = httpx.get(f"{url}/model/version", timeout=5)
            if answer.status_code == 200:
                seen = ServedVersion.model_validate(answer.json()).version
        except httpx.HTTPError:
            pass
        return seen == version

    if wait_until(serves_it, timeout=timeout, interval=0.25) is None:
        pytest.fail(f"service still serves v{seen}, not v{version}, after {timeout} s")


def _classify_with_feedback(
    url: str, frame: pd.DataFrame, headers: dict[str, str]
) -> list[dict[str, object]]:
    """Classify through the API, then post the true category as the agent's feedback."""
    answers: list[dict[str, object]] = []
    with httpx.Client(base_url=url, timeout=30, headers=headers) as http:
        for start in range(0, len(frame), 100):
            chunk = frame.iloc[start : start + 100]
            response = http.post("/classify/batch", json={"texts": chunk["text"].tolist()})
            assert response.status_code == 200, response.text
            answers.extend(response.json()["results"])
        for answer, truth in zip(answers, frame["category"], strict=True):
            response = http.post(
                f"/tickets/{answer['ticket_id']}/feedback", json={"category": truth}
            )
            assert response.status_code == 200, response.text
    return answers


def _swap_recorded(database: Database, *, version: str, after: datetime) -> bool:
    """The replica audits its swap right after it; allow it a moment to commit."""

    def recorded() -> bool:
        with database.session() as session:
            swaps = audit.history(session, actions=["model_swap"], since=after)
        return any(event.to_version == version for event in swaps)

    return wait_until(recorded, timeout=15, interval=0.25) is not None


def _accuracy(answers: list[dict[str, object]], frame: pd.DataFrame) -> float:
    return sum(a["category"] == t for a, t in zip(answers, frame["category"], strict=True)) / len(
        answers
    )


def _monitor(settings: Settings, url: str, moto: str, cwd: Path, token: str) -> str:
    result = subprocess.run(
        [str(BOLTIT), "monitor", "--once", "--service-url", url, "--verify-timeout", "60"],
        env=_environment(
            settings,
            BOLTIT_CLOUDWATCH_ENABLED="true",
            BOLTIT_CLOUDWATCH_ENDPOINT_URL=moto,
            BOLTIT_SMOKE_TOKEN=token,  # the smoke test after the rollback classifies as a client
            COLUMNS="200",
        ),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.s3
@pytest.mark.slow
def test_a_forced_bad_version_is_detected_disabled_rolled_back_and_reviewed(
    trained: Trained,
    service: str,
    agent_headers: dict[str, str],
    moto_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, client, database, _ = trained
    tickets = generate_tickets(360, seed=21, ambiguity=AMBIGUITY)
    v1_frame, v2_frame = tickets.iloc[:240], tickets.iloc[240:]

    # v1 serves well.
    v1_answers = _classify_with_feedback(service, v1_frame, agent_headers)
    assert {a["model_version"] for a in v1_answers} == {"1"}
    assert _accuracy(v1_answers, v1_frame) > 0.85
    assert any(a["auto_applied"] for a in v1_answers)

    # A worse v2 is forced live; the service follows the alias by itself.
    force_promote(settings, client, database, "2", reason="hotfix, gates skipped")
    _wait_for_version(service, "2", timeout=60)
    v2_answers = _classify_with_feedback(service, v2_frame, agent_headers)
    assert {a["model_version"] for a in v2_answers} == {"2"}
    assert _accuracy(v2_answers, v2_frame) < 0.5  # the agents' corrections show the drop

    # The rules are on the service's /metrics too, already critical for v2.
    exposition = httpx.get(f"{service}/metrics", timeout=30).text
    levels = {
        sample.labels["rule"]: sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "boltit_alert_level" and not sample.labels["category"]
    }
    assert levels["accuracy_floor"] == 2 and "latency_p95_seconds" in levels

    # The monitor acts.
    token = agent_headers["Authorization"].removeprefix("Bearer ")
    output = _monitor(settings, service, moto_endpoint, tmp_path, token)
    print(output)
    assert "incident #1 opened" in output
    assert "rolled back to v1 (verified)" in output
    assert "smoke test after the rollback passed" in output
    # v2 was forced live without passing its gates: the runbook's floor holds it as written.
    assert "accuracy_floor" in output and "floor applies as written" in output

    # The registry and the running service are back on v1, without a restart.
    assert str(client.get_model_version_by_alias(settings.model_name, PRODUCTION).version) == "1"
    assert httpx.get(f"{service}/model/version", timeout=10).json()["version"] == "1"
    with database.session() as session:
        assert flags.read_flag(session, AUTO_APPLY_FLAG, default=True) is False
    answers: list[dict[str, Any]] = []

    def applied_by_hand() -> bool:
        answers.append(
            httpx.post(
                f"{service}/classify",
                json={"text": v1_frame.iloc[0]["text"]},
                headers=agent_headers,
            ).json()
        )
        return not answers[-1]["auto_applied"]

    wait_until(applied_by_hand, timeout=5, interval=0.2)
    answer = answers[-1]
    assert answer["model_version"] == "1"
    assert answer["auto_applied"] is False and "turned off" in answer["reason"]

    # The incident and its review exist.
    monkeypatch.setenv("BOLTIT_STATE_DIR", str(settings.state_dir))
    runner = CliRunner()
    listed = runner.invoke(build_app(), ["incident", "list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "mitigated" in listed.output and "v2" in listed.output
    review = runner.invoke(build_app(), ["incident", "report", "latest"])
    assert review.exit_code == 0, review.output
    print(review.output)
    for part in ("**Date:**", "**Duration:**", "**Impact:**", "**Root Cause:**", "**Timeline:**",
                 "**Action Items:**", "**What Went Well:**", "**What Can Improve:**"):  # fmt: skip
        assert part in review.output
    assert "Auto-apply disabled" in review.output and "rolled back" in review.output
    assert "promote FORCED" in review.output and "serves v1" in review.output

    # The history shows each step, in the runbook's order.
    history = runner.invoke(build_app(), ["history"], env={"COLUMNS": "250"})
    assert history.exit_code == 0, history.output
    assert "rollback" in history.output and "promote" in history.output
    with database.session() as session:
        events = audit.history(session)
    steps = [(e.action, e.actor, e.to_version) for e in events]
    disabled = steps.index(("flag_change", "monitor", None))
    rolled = steps.index(("rollback", "monitor", "1"))
    assert steps.index(("incident_open", "monitor", None)) < disabled < rolled
    assert _swap_recorded(database, version="1", after=events[rolled].at)
    incident_steps = [e.details["step"] for e in events if e.action == "incident_action"]
    assert incident_steps == ["disable_auto_apply", "mark_regressed", "rollback", "verify"]

    # CloudWatch received the figures of that pass.
    cloudwatch = boto3.client("cloudwatch", endpoint_url=moto_endpoint, region_name="us-east-1")
    names = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace="BoltIT/Pilot")["Metrics"]}
    assert {"classification_accuracy_7d", "latency_p95_seconds", "auto_apply_rate"} <= names
    stats = cloudwatch.get_metric_statistics(
        Namespace="BoltIT/Pilot",
        MetricName="production_accuracy_7d",
        StartTime=utcnow() - timedelta(hours=1),
        EndTime=utcnow() + timedelta(minutes=5),
        Period=60,
        Statistics=["Average"],
    )
    # An earlier pass may have pushed a datapoint in an earlier minute: judge the newest.
    assert stats["Datapoints"]
    assert max(stats["Datapoints"], key=lambda d: d["Timestamp"])["Average"] < 0.5

    # No flapping: a second pass (the same CLI, in this process) finds v1 healthy, does nothing.
    again = runner.invoke(
        build_app(),
        ["monitor", "--once", "--service-url", service],
        env={"BOLTIT_CLOUDWATCH_ENABLED": "true", "BOLTIT_CLOUDWATCH_ENDPOINT_URL": moto_endpoint},
    )
    assert again.exit_code == 0, again.output
    assert "opened" not in again.output and "rolled back" not in again.output
    with database.session() as session:
        assert len(audit.history(session, actions=["rollback"])) == 1
        assert len(audit.history(session, actions=["incident_open"])) == 1
