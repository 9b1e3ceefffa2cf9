"""Scoped client tokens: who may classify, label, export and administer; an open service only
on purpose; and the monitor never acting on labels nobody vouched for."""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient
from pydantic import SecretStr
from sqlalchemy import select

from boltit.core import audit, flags
from boltit.core.clients import ClientFile, Scope, hash_token
from boltit.core.db import Database
from boltit.core.schema import Ticket
from boltit.core.settings import Settings
from boltit.core.vocabulary import AUTO_APPLY_FLAG
from boltit.monitoring.feedback_sources import FEEDBACK_FLOOD
from boltit.monitoring.monitor import run_once
from boltit.monitoring.snapshot import load_tickets
from boltit.serving.app import create_app
from boltit.serving.auth import InsecureStartError, ServiceAuth
from boltit.serving.security import AuthError
from boltit.training.generator import generate_tickets
from tests.serving.conftest import (
    ADMIN_TOKEN,
    VENV_BIN,
    ServiceThread,
    add_client,
    bearer,
    service_env,
)


@pytest.fixture
def secure(live_settings: Settings) -> Settings:
    """``live_settings`` with the service closed to callers without a token."""
    return live_settings.model_copy(update={"insecure_open": False})


@pytest.fixture
def secure_service(secure: Settings, production_v1: str) -> Iterator[ServiceThread]:
    with ServiceThread(secure) as running:
        yield running


def _cli(settings: Settings, *args: str) -> tuple[int, str, str]:
    """``boltit ARGS`` as a user runs it: exit code, stdout, stderr."""
    env = service_env(settings, COLUMNS="200")
    done = subprocess.run(
        [str(VENV_BIN / "boltit"), *args],
        env=env,
        cwd=settings.state_dir.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.e2e
def test_token_create_prints_the_token_once_and_stores_only_its_hash(settings: Settings) -> None:
    code, stdout, stderr = _cli(
        settings, "token", "create", "helpdesk", "--scope", "classify", "--scope", "feedback"
    )
    assert code == 0, stderr
    token = stdout.strip()
    assert token.startswith("boltit_") and len(token) > 40
    assert "classify, feedback" in stderr
    stored = settings.clients_path.read_text()
    assert token not in stored
    entry = json.loads(stored)["clients"][0]
    assert entry["name"] == "helpdesk" and entry["token_sha256"] == hash_token(token)
    assert entry["scopes"] == ["classify", "feedback"]
    assert stat.S_IMODE(settings.clients_path.stat().st_mode) == 0o600

    code, stdout, stderr = _cli(settings, "token", "create", "helpdesk", "--scope", "read")
    assert code == 2
    assert "already exists" in stderr and "Traceback" not in stdout + stderr
    assert len(json.loads(settings.clients_path.read_text())["clients"]) == 1

    code, _, stderr = _cli(settings, "token", "create", "bot", "--scope", "everything")
    assert code == 2 and "unknown scope 'everything'" in stderr
    code, _, stderr = _cli(settings, "token", "create", "admin", "--scope", "admin")
    assert code == 2 and "reserved" in stderr
    code, _, stderr = _cli(settings, "token", "create", "Bad Name!", "--scope", "read")
    assert code == 2 and "client name" in stderr

    code, stdout, _ = _cli(settings, "token", "list")
    assert code == 0 and "helpdesk" in stdout and token not in stdout

    code, stdout, _ = _cli(settings, "token", "revoke", "helpdesk")
    assert code == 0 and "revoked" in stdout
    assert json.loads(settings.clients_path.read_text())["clients"] == []
    code, _, stderr = _cli(settings, "token", "revoke", "helpdesk")
    assert code == 2 and "no client named 'helpdesk'" in stderr


@pytest.mark.e2e
def test_a_broken_clients_file_is_one_clear_error(settings: Settings) -> None:
    settings.clients_path.parent.mkdir(parents=True, exist_ok=True)
    settings.clients_path.write_text('{"clients": [{"name": "x"}]}')
    code, stdout, stderr = _cli(settings, "token", "list")
    assert code == 2
    assert "clients file" in stderr and "not valid" in stderr
    assert "Traceback" not in stdout + stderr


@pytest.mark.e2e
def test_the_service_refuses_to_start_open_unless_asked(settings: Settings, tmp_path: Path) -> None:
    closed = settings.model_copy(update={"insecure_open": False})
    with pytest.raises(InsecureStartError, match="BOLTIT_INSECURE_OPEN=true"):
        create_app(closed)

    # `boltit serve` says so in one line, before any worker starts.
    env = service_env(closed, BOLTIT_INSECURE_OPEN="false")
    done = subprocess.run(
        [str(VENV_BIN / "boltit"), "serve", "--port", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no client token is configured" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr

    # Asked for: it starts, and /health says it is open.
    from fastapi.testclient import TestClient

    opened = settings.model_copy(update={"insecure_open": True})
    with TestClient(create_app(opened)) as http:
        assert http.get("/health").json()["insecure_open"] is True
    # Any client (here the admin token) is enough to start closed.
    admin_only = closed.model_copy(update={"admin_token": SecretStr(ADMIN_TOKEN)})
    with TestClient(create_app(admin_only)) as http:
        assert http.get("/health").json()["insecure_open"] is False


def test_each_route_needs_its_scope(secure_service: ServiceThread, secure: Settings) -> None:
    classify_only = bearer(add_client(secure, "classifier", "classify"))
    agent = bearer(add_client(secure, "agent", "feedback"))
    reader = bearer(add_client(secure, "exporter", "read"))
    with httpx.Client(base_url=secure_service.url, timeout=30) as http:
        # Open to anyone: nothing here carries ticket text or changes state.
        for path in ("/health", "/ready", "/metrics", "/model/version", "/admin/feature-flags"):
            assert http.get(path).status_code == 200, path

        answer = http.post("/classify", json={"text": "vpn is down"}, headers=classify_only)
        assert answer.status_code == 200
        ticket = answer.json()["ticket_id"]
        batch = {"texts": ["disk full"]}
        assert http.post("/classify/batch", json=batch, headers=classify_only).status_code == 200
        label = {"category": "Hardware"}
        feedback_path = f"/tickets/{ticket}/feedback"

        # No token: 401 with the scheme to use.
        for method, path, body in (
            ("POST", "/classify", {"text": "vpn is down"}),
            ("POST", "/classify/batch", batch),
            ("POST", feedback_path, label),
            ("PUT", feedback_path, label),
            ("GET", "/tickets", None),
            ("PUT", "/admin/feature-flags", {"auto_apply_enabled": False}),
            ("POST", "/admin/reload", None),
        ):
            refused = http.request(method, path, json=body)
            assert refused.status_code == 401, (method, path, refused.text)
            assert refused.headers["www-authenticate"] == "Bearer"
            assert set(refused.json()) == {"detail"}

        # A token without the scope: 403 naming what is missing.
        refused = http.post(feedback_path, json=label, headers=classify_only)
        assert refused.status_code == 403
        assert "lacks scope 'feedback'" in refused.json()["detail"]
        assert http.get("/tickets", headers=classify_only).status_code == 403
        assert http.post("/classify", json={"text": "x y"}, headers=agent).status_code == 403
        assert http.get("/tickets", headers=agent).status_code == 403
        assert http.post("/admin/reload", headers=reader).status_code == 403
        flag = {"auto_apply_enabled": False}
        assert http.put("/admin/feature-flags", json=flag, headers=agent).status_code == 403
        wrong = bearer("boltit_not-a-real-token")
        assert http.post(feedback_path, json=label, headers=wrong).status_code == 403
        basic = {"Authorization": "Basic dXNlcjpwYXNz"}
        assert http.post(feedback_path, json=label, headers=basic).status_code == 401

        # With the scope: allowed, and the feedback records who sent it.
        stored = http.post(feedback_path, json=label, headers=agent)
        assert stored.status_code == 200, stored.text
        assert stored.json()["feedback_client"] == "agent"
        exported = http.get("/tickets", headers=reader)
        assert exported.status_code == 200
        assert any(t["id"] == ticket for t in exported.json())
        # The legacy admin token is the client `admin`, with every scope.
        admin = bearer(ADMIN_TOKEN)
        assert http.put("/admin/feature-flags", json=flag, headers=admin).status_code == 200
        relabel = http.put(feedback_path, json={"category": "Access"}, headers=admin)
        assert relabel.json()["feedback_client"] == "admin"

        # Revoked: refused from the next request on, without a restart.
        ClientFile(secure.clients_path).revoke("agent")
        assert http.post(feedback_path, json=label, headers=agent).status_code == 403
    database = Database(secure.database_url)
    try:
        with database.session() as session:
            events = audit.history(session, actions=["flag_change"])
            assert events[-1].actor.startswith("admin via admin-api@")
    finally:
        database.dispose()


def _wrong_labels(
    http: httpx.Client, n: int, *, classify: dict[str, str], label: dict[str, str], status: int
) -> list[str]:
    """Classify ``n`` tickets, then mark every one wrong: a poisoning run; every label is
    answered ``status``."""
    frame = generate_tickets(n, seed=3)
    answers = http.post(
        "/classify/batch", json={"texts": frame["text"].tolist()}, headers=classify
    ).json()["results"]
    ids = []
    for answer in answers:
        other = "Purchase" if answer["category"] != "Purchase" else "Access"
        ids.append(answer["ticket_id"])
        response = http.post(
            f"/tickets/{answer['ticket_id']}/feedback", json={"category": other}, headers=label
        )
        assert response.status_code == status, response.text
    return ids


def test_poisoning_without_a_token_is_refused_and_never_reaches_the_monitor(
    secure: Settings, production_v1: str, mlflow_client: MlflowClient, database: Database
) -> None:
    n = 120
    classifier = bearer(add_client(secure, "intake", "classify"))
    # Closed service: every unauthenticated label is a 401 and nothing is stored.
    with (
        ServiceThread(secure) as running,
        httpx.Client(base_url=running.url, timeout=60) as http,
    ):
        ticket = http.post("/classify", json={"text": "mouse broken"}, headers=classifier)
        poisoned = http.post(
            f"/tickets/{ticket.json()['ticket_id']}/feedback", json={"category": "Purchase"}
        )
        assert poisoned.status_code == 401
        ids = _wrong_labels(http, n, classify=classifier, label={}, status=401)
    with database.session() as session:
        labelled = session.scalars(select(Ticket).where(Ticket.id.in_(ids))).all()
        assert len(labelled) == n and all(t.feedback_category is None for t in labelled)

    # Open on purpose: the same anonymous labels are stored, but the monitor ignores them.
    opened = secure.model_copy(update={"insecure_open": True, "feedback_flood_min": 50})
    with (
        ServiceThread(opened) as running,
        httpx.Client(base_url=running.url, timeout=60) as http,
    ):
        anonymous_ids = _wrong_labels(http, n, classify={}, label={}, status=200)
    with database.session() as session:
        stored = session.scalars(select(Ticket).where(Ticket.id.in_(anonymous_ids))).all()
        assert all(t.feedback_category is not None and t.feedback_client is None for t in stored)
        assert load_tickets(session)["feedback_category"].notna().sum() == 0
    result = run_once(settings=opened, database=database, client=mlflow_client)
    assert result.status.quality.labelled == 0
    assert result.response.opened is False
    assert result.feedback is not None and result.feedback.anonymous == n
    assert result.feedback.floods == []
    with database.session() as session:
        assert flags.read_flag(session, AUTO_APPLY_FLAG, default=True) is True
        assert audit.history(session, actions=["incident_open", "rollback"]) == []

    # The control: the same labels from an authenticated client are what the monitor reads,
    # and one client sending all of them at once is reported as a flood, not acted on for it.
    poisoner = bearer(add_client(secure, "poisoner", "classify", "feedback"))
    with (
        ServiceThread(opened) as running,
        httpx.Client(base_url=running.url, timeout=60) as http,
    ):
        _wrong_labels(http, n, classify=poisoner, label=poisoner, status=200)
    result = run_once(settings=opened, database=database, client=mlflow_client)
    assert result.status.quality.labelled == n
    assert result.status.quality.accuracy == 0.0
    assert result.response.opened  # these labels the monitor acts on
    assert result.feedback is not None
    assert [f.client for f in result.feedback.floods] == ["poisoner"]
    assert result.feedback.floods[0].count == n
    again = run_once(settings=opened, database=database, client=mlflow_client)
    assert again.feedback is not None and again.feedback.floods  # still reported...
    with database.session() as session:
        floods = audit.history(session, actions=[FEEDBACK_FLOOD])
    assert len(floods) == 1  # ...but audited once
    assert floods[0].details is not None and floods[0].details["client"] == "poisoner"


@pytest.mark.parametrize(
    ("header", "admin_token", "insecure_open", "status"),
    [
        ("Bearer t", None, False, 403),  # no client holds admin: admin writes are off
        (None, None, False, 403),
        (None, "t", False, 401),
        (None, "t", True, 401),  # an open service is never open for admin
        ("Basic t", "t", False, 401),
        ("Bearer", "t", False, 401),
        ("Bearer wrong", "t", False, 403),
    ],
)
def test_admin_refusals(
    settings: Settings,
    header: str | None,
    admin_token: str | None,
    insecure_open: bool,
    status: int,
) -> None:
    configured = settings.model_copy(
        update={
            "admin_token": SecretStr(admin_token) if admin_token else None,
            "insecure_open": insecure_open,
        }
    )
    with pytest.raises(AuthError) as refused:
        ServiceAuth(configured).authorize(header, Scope.admin)
    assert refused.value.status == status


def test_tokens_are_matched_by_hash_and_anonymous_only_when_open(settings: Settings) -> None:
    token = add_client(settings, "agent", "feedback")
    closed = ServiceAuth(settings.model_copy(update={"insecure_open": False}))
    with pytest.raises(AuthError, match="no client has scope 'classify'"):
        closed.authorize(f"Bearer {token}", Scope.classify)
    add_client(settings, "intake", "classify")
    closed = ServiceAuth(settings.model_copy(update={"insecure_open": False}))
    client = closed.authorize(f"Bearer {token}", Scope.feedback)
    assert client is not None and client.name == "agent"
    assert closed.authorize(f"bearer  {token} ", Scope.feedback) == client
    with pytest.raises(AuthError, match="lacks scope 'classify'"):
        closed.authorize(f"Bearer {token}", Scope.classify)
    with pytest.raises(AuthError) as refused:
        closed.authorize(None, Scope.feedback)
    assert refused.value.status == 401
    opened = ServiceAuth(settings.model_copy(update={"insecure_open": True}))
    assert opened.authorize(None, Scope.feedback) is None
    with pytest.raises(AuthError):  # a token, when sent, is still checked
        opened.authorize("Bearer wrong", Scope.feedback)
