"""``boltit ARGS`` run in this process, as the console script runs it, for CLI tests."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from boltit.app.cli import main
from boltit.core.settings import Settings

# What a CLI test's ``boltit`` fixture gives: boltit("promote", "3") -> (code, out, err).
Boltit = Callable[..., tuple[int, str, str]]


def run_boltit(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``boltit ARGS``; the output is this command's only."""
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["boltit", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        # As the interpreter reads sys.exit's argument: None is 0, a message is 1.
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def point_cli_at(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI builds its own settings from the environment: point it at ``settings``' stores."""
    monkeypatch.setenv("BOLTIT_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    monkeypatch.setenv("COLUMNS", "200")  # wide enough that no tested line wraps
    return settings
