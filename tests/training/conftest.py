"""The training tests' stores and their in-process ``boltit``."""

from __future__ import annotations

import subprocess
from functools import partial
from pathlib import Path

import pytest

from boltit.core.settings import Settings, load_settings
from tests.console_script import Boltit, point_cli_at, run_boltit


def settings_under(state: Path) -> Settings:
    """Settings whose every store is under ``state``, whatever the environment says.

    For module-scoped fixtures, which cannot use the per-test ``settings`` fixture.
    """
    return load_settings(
        state_dir=state,
        tracking_uri_override=f"sqlite:///{state / 'mlflow.db'}",
        registry_uri_override=None,
        database_url_override=f"sqlite:///{state / 'boltit.db'}",
        model_name="ticket-classifier",
    )


def run_to_success(
    command: list[str], *, env: dict[str, str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a child process to its end; a failure fails the test with the tail of its stderr."""
    completed = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI builds its own settings from the environment: point it at tmp_path."""
    return point_cli_at(settings, monkeypatch)


@pytest.fixture
def boltit(
    cli_env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Boltit:
    """``boltit ARGS`` in this process on this test's stores: (exit code, out, err)."""
    return partial(run_boltit, monkeypatch, capsys)
