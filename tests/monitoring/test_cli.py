"""The runbook's helper commands and the monitor's CLI, through the real root app."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from boltit.app.cli import build_app, main
from boltit.core.db import Database
from boltit.core.settings import Settings
from tests.monitoring.tickets import add_tickets


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("BOLTIT_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("COLUMNS", "200")
    return settings


def _run_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["boltit", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0)


def test_export_predictions_writes_every_ticket_of_the_window(
    cli_env: Settings, database: Database, tmp_path: Path
) -> None:
    add_tickets(database, version="1", n=40, accuracy=0.5, labelled=0.5, seed=1)
    target = tmp_path / "recent.csv"
    result = CliRunner().invoke(
        build_app(), ["export-predictions", "--days", "7", "--out", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert "wrote 40 tickets" in result.output
    frame = pd.read_csv(target)
    assert len(frame) == 40
    assert {"id", "category", "confidence", "model_version", "feedback_category"} <= set(
        frame.columns
    )
    assert 0 < frame["feedback_category"].notna().sum() < 40
    assert not list(tmp_path.glob(".recent.csv.*"))  # no temporary file left behind


def test_export_to_a_missing_folder_is_one_clear_error(
    cli_env: Settings, database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    code = _run_main(monkeypatch, "export-predictions", "--out", str(tmp_path / "absent" / "x.csv"))
    captured = capsys.readouterr()
    assert code == 2
    assert "does not exist" in captured.err and "Traceback" not in captured.err


def test_recompute_accuracy_matches_the_stored_feedback(
    cli_env: Settings, database: Database
) -> None:
    add_tickets(database, version="1", n=100, accuracy=1.0, seed=2)
    add_tickets(database, version="2", n=100, accuracy=0.0, seed=3)
    result = CliRunner().invoke(build_app(), ["recompute-accuracy", "--days", "7"])
    assert result.exit_code == 0, result.output
    assert "200 tickets, 200 with feedback, accuracy 0.500" in result.output
    assert "by version" in result.output and "by category" in result.output


def test_recompute_accuracy_refuses_a_non_positive_window(
    cli_env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run_main(monkeypatch, "recompute-accuracy", "--days", "0") == 2
    assert "--days must be positive" in capsys.readouterr().err


def test_monitor_needs_once_or_watch(
    cli_env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run_main(monkeypatch, "monitor") == 2
    assert "--once or --watch" in capsys.readouterr().err


@pytest.mark.integration  # `monitor status` reads Production from the MLflow store
def test_monitor_status_and_model_metrics_show_the_rules(
    cli_env: Settings, database: Database
) -> None:
    add_tickets(database, version="1", n=120, accuracy=0.5, confidence=0.6, seed=4)
    runner = CliRunner()
    status = runner.invoke(build_app(), ["monitor", "status"])
    assert status.exit_code == 0, status.output
    for rule in (
        "accuracy_floor",
        "mean_confidence",
        "prediction_error_rate",
        "latency_p95_seconds",
    ):
        assert rule in status.output
    # No Production alias yet: quality rules have no data, service rules read every ticket.
    assert "no_data" in status.output
    versions = runner.invoke(build_app(), ["model-metrics"])
    assert versions.exit_code == 0, versions.output
    assert "120" in versions.output
    watched = runner.invoke(build_app(), ["monitor", "--watch", "--interval", "1", "--passes", "2"])
    assert watched.exit_code == 0, watched.output
    assert watched.output.count("prediction_error_rate") == 2  # one table per pass


def test_incident_commands_without_incidents(
    cli_env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = CliRunner().invoke(build_app(), ["incident", "list"])
    assert listed.exit_code == 0 and "no incidents recorded" in listed.output
    assert _run_main(monkeypatch, "incident", "report", "latest") == 2
    assert "no incident has been recorded yet" in capsys.readouterr().err
