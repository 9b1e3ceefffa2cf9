"""``boltit rollout shadow|canary|show``: audited flag changes that a running service follows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient
from sqlalchemy import select

from boltit.core import audit
from boltit.core.db import Database
from boltit.core.schema import FeatureFlag
from boltit.core.settings import Settings
from tests.console_script import point_cli_at, run_boltit
from tests.serving.conftest import (  # noqa: F401  (fixtures used by name)
    MODEL,
    ServiceThread,
    model_dir,
    production_v1,
    register_version,
    wait_for,
)


@pytest.fixture
def cli_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    return point_cli_at(settings, monkeypatch)


def test_shadow_and_canary_from_the_cli_are_stored_audited_and_shown(
    cli_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def boltit(*args: str) -> tuple[int, str, str]:
        return run_boltit(monkeypatch, capsys, *args)

    code, out, err = boltit("rollout", "canary", "12.5%", "--reason", "step 1", "--actor", "alice")
    assert (code, out.strip()) == (0, "canary_percent: 0 -> 12.5"), err
    code, out, err = boltit("rollout", "shadow", "on", "--actor", "bob")
    assert (code, out.strip()) == (0, "shadow_enabled: off -> on"), err
    code, out, err = boltit("rollout", "canary", "0", "--reason", "stop", "--actor", "alice")
    assert (code, out.strip()) == (0, "canary_percent: 12.5 -> 0"), err

    code, out, err = boltit("rollout", "show")
    assert code == 0, err
    assert out.splitlines() == [
        "shadow_enabled = on",
        "canary_percent = 0",
        "challenger = never loaded by a replica",
    ]
    code, out, err = boltit("flags", "show")
    assert code == 0, err
    assert out.splitlines() == [
        "auto_apply_enabled = on",
        "shadow_enabled = on",
        "canary_percent = 0",
    ]

    database = Database(cli_settings.database_url)
    try:
        with database.session() as session:
            events = audit.history(session)
    finally:
        database.dispose()
    seeds = [e.details for e in events if e.action == "flag_seed"]
    assert seeds == [
        {"flag": "auto_apply_enabled", "enabled": True, "value": True},
        {"flag": "shadow_enabled", "enabled": False, "value": False},
        {"flag": "canary_percent", "enabled": False, "value": 0.0},
    ]
    changes = [(e.actor, e.reason, e.details) for e in events if e.action == "flag_change"]
    assert changes == [
        ("alice", "step 1", {"flag": "canary_percent", "from": 0.0, "to": 12.5}),
        ("bob", None, {"flag": "shadow_enabled", "from": False, "to": True}),
        ("alice", "stop", {"flag": "canary_percent", "from": 12.5, "to": 0.0}),
    ]


@pytest.mark.parametrize(
    ("percent", "problem"),
    [
        ("150", "canary percent must be from 0 to 100, got 150.0"),
        ("100.01", "canary percent must be from 0 to 100"),
        ("ten", "canary percent must be a number from 0 to 100, got 'ten'"),
        ("nan", "canary percent must be from 0 to 100, got nan"),
        ("inf", "canary percent must be from 0 to 100"),
    ],
)
def test_a_bad_canary_share_exits_2_naming_it_and_writes_nothing(
    cli_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    percent: str,
    problem: str,
) -> None:
    code, out, err = run_boltit(monkeypatch, capsys, "rollout", "canary", percent)

    assert code == 2, out
    assert problem in err
    database = Database(cli_settings.database_url)
    try:
        with database.session() as session:
            assert list(session.scalars(select(FeatureFlag))) == []
            assert audit.history(session) == []
    finally:
        database.dispose()


def test_a_bad_switch_exits_2(
    cli_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_boltit(monkeypatch, capsys, "rollout", "shadow", "maybe")

    assert code == 2
    assert "'maybe' is not one of" in err


def test_a_running_service_follows_the_cli_within_a_second(
    cli_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    production_v1: str,  # noqa: F811
    mlflow_client: MlflowClient,
    model_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    challenger = register_version(mlflow_client, model_dir, tmp_path)
    mlflow_client.set_registered_model_alias(MODEL, "challenger", challenger)
    open_settings = cli_settings.model_copy(
        update={"insecure_open": True, "poll_interval_seconds": 0.2}
    )
    with (
        ServiceThread(open_settings) as running,
        httpx.Client(base_url=running.url, timeout=30) as http,
    ):
        assert http.get("/health").json()["challenger"] is None
        code, _, err = run_boltit(monkeypatch, capsys, "rollout", "canary", "100")
        assert code == 0, err
        followed = wait_for(
            lambda: http.get("/admin/feature-flags").json()["canary_percent"] == 100.0,
            timeout=1.0,
        )
        assert followed <= 1.0
        wait_for(lambda: http.get("/health").json()["challenger"] is not None, timeout=15)
        answer = http.post("/classify", json={"text": "my laptop will not boot"}).json()
        code, out, err = run_boltit(monkeypatch, capsys, "rollout", "show")

    assert answer["model_version"] == challenger
    assert answer["auto_applied"] is False and "on trial" in answer["reason"]
    assert code == 0, err
    assert f"challenger = version {challenger} (loaded by serving@" in out


@pytest.mark.e2e
def test_a_bad_share_is_refused_before_the_database_stack_loads(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "from boltit.app.cli import main\n"
        "sys.argv = ['boltit', 'rollout', 'canary', '250']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    print(json.dumps([exc.code, 'sqlalchemy' in sys.modules, 'mlflow' in sys.modules]))\n"
    )
    env = {**os.environ, "BOLTIT_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )

    assert json.loads(done.stdout.strip().splitlines()[-1]) == [2, False, False], done.stderr
    assert "canary percent must be from 0 to 100, got 250.0" in done.stderr
    assert not (tmp_path / "state").exists()  # nothing opened, nothing written


def test_flags_set_turns_shadow_on_too(
    cli_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_boltit(monkeypatch, capsys, "flags", "set", "shadow", "on")
    assert (code, out.strip()) == (0, "shadow_enabled: off -> on"), err

    code, out, err = run_boltit(monkeypatch, capsys, "rollout", "show")
    assert code == 0, err
    assert out.splitlines()[:2] == ["shadow_enabled = on", "canary_percent = 0"]
