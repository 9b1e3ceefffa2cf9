"""``check-data``, ``drift`` and ``analyze-recent`` on real files, a real store and MLflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from boltit.core.db import Database
from boltit.core.settings import Settings
from tests.data_checks.conftest import CliResult, store_tickets
from tests.data_checks.test_drift import _shifted

Cli = Callable[..., CliResult]
CHECKS = ("required_columns", "text_not_empty", "min_rows_per_class", "class_imbalance_ratio")


@pytest.fixture
def ticket_csv(tmp_path: Path, good_tickets: pd.DataFrame) -> Path:
    path = tmp_path / "tickets.csv"
    good_tickets.rename(columns={"text": "Document", "category": "Topic_group"}).to_csv(
        path, index=False
    )
    return path


def _confident(frame: pd.DataFrame, seed: int, a: float = 9.0, b: float = 1.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return frame.assign(confidence=rng.beta(a, b, len(frame)))


def test_check_data_passes_clean_file(run_cli: Cli, ticket_csv: Path, settings: Settings) -> None:
    result = run_cli(
        "check-data", str(ticket_csv), "--text-column", "Document", "--label-column", "Topic_group"
    )

    assert result.exit_code == 0, result.output + result.error
    for check in CHECKS:
        assert check in result.output
    assert "FAIL" not in result.output
    docs = settings.state_dir / "data_docs" / "index.html"
    assert f"Data Docs: {docs.resolve()}" in result.output.replace("\n", "")
    assert docs.is_file()
    (saved,) = (settings.state_dir / "data_checks").glob("training_data-*.json")
    assert json.loads(saved.read_text())["success"] is True


def test_check_data_fails_bad_file_and_names_the_checks(
    run_cli: Cli, tmp_path: Path, good_tickets: pd.DataFrame
) -> None:
    bad = good_tickets.copy()
    bad.loc[bad.index[:3], "text"] = "   "
    bad = pd.concat([bad[bad["category"] != "Storage"], bad[bad["category"] == "Storage"].head(9)])
    path = tmp_path / "bad.parquet"
    bad.to_parquet(path)

    result = run_cli("check-data", str(path))

    assert result.exit_code == 1
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    assert "FAIL" in rows["text_not_empty"] and "FAIL" in rows["min_rows_per_class"]
    assert "Storage, 9" in rows["min_rows_per_class"]
    assert "pass" in rows["duplicate_rate"]
    assert "text_not_empty" in result.error and "min_rows_per_class" in result.error


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["nowhere.csv"], "nowhere.csv: no such file"),
        (
            ["tickets.csv", "--text-column", "body"],
            "no column 'body', 'category'; columns are 'Document'",
        ),
        (["garbage.parquet"], "unreadable Parquet file"),
        (["notes.txt"], "unsupported file type '.txt'; use one of .csv, .tsv, .parquet"),
        (["tickets.csv", "--from-store"], "either a PATH or --from-store"),
        ([], "either a PATH or --from-store"),
    ],
)
def test_check_data_bad_input_is_one_clear_error(
    run_cli: Cli, ticket_csv: Path, args: list[str], problem: str
) -> None:
    folder = ticket_csv.parent
    (folder / "garbage.parquet").write_bytes(b"not parquet at all")
    (folder / "notes.txt").write_text("hello")
    args = [str(folder / a) if a.endswith((".csv", ".parquet", ".txt")) else a for a in args]

    result = run_cli("check-data", *args)

    assert result.exit_code == 2
    assert problem in result.error
    assert "\n" not in result.error


@pytest.mark.e2e
def test_real_entry_point_prints_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "BOLTIT_STATE_DIR": str(tmp_path / "state")}
    command = [str(Path(sys.executable).parent / "boltit"), "check-data", "missing.csv"]

    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == ["error: missing.csv: no such file"]


def test_check_data_prediction_log_from_store(
    run_cli: Cli, database: Database, good_tickets: pd.DataFrame
) -> None:
    now = datetime.now(UTC)
    recent = _confident(good_tickets.head(300), 1)
    store_tickets(database, recent, start=now - timedelta(days=2), spacing=timedelta(minutes=1))
    categories = ",".join(sorted(good_tickets["category"].unique()))
    command = ["check-data", "--from-store", "--days", "3", "--suite", "prediction_log"]
    command += ["--categories", categories]

    ok = run_cli(*command)
    assert ok.exit_code == 0, ok.output + ok.error
    assert "prediction_log on 300 rows" in ok.output

    late = recent.head(1).assign(latency_ms=-3.0)
    store_tickets(database, late, start=now + timedelta(hours=1), prefix="future")
    bad = run_cli(*command)
    assert bad.exit_code == 1
    assert "latency_non_negative" in bad.error and "no_future_timestamps" in bad.error


def test_check_data_prediction_log_unknown_version_fails(
    run_cli: Cli, database: Database, good_tickets: pd.DataFrame, mlflow_client: MlflowClient
) -> None:
    # Version 9 is not in the registry, so none of its categories are known.
    store_tickets(
        database,
        _confident(good_tickets.head(50), 1),
        start=datetime.now(UTC) - timedelta(hours=5),
        model_version="9",
    )

    result = run_cli("check-data", "--from-store", "--days", "1", "--suite", "prediction_log")

    assert result.exit_code == 1
    assert "categories_known" in result.error


def test_check_data_labelled_tickets_from_store(
    run_cli: Cli, database: Database, good_tickets: pd.DataFrame
) -> None:
    store_tickets(
        database,
        _confident(good_tickets, 2),
        start=datetime.now(UTC) - timedelta(days=6),
        spacing=timedelta(minutes=4),
        feedback=True,
    )

    result = run_cli("check-data", "--from-store", "--days", "7")

    assert result.exit_code == 0, result.output + result.error
    assert "training_data on 1,600 rows (ticket store, last 7 days)" in result.output


def test_drift_files_calm_and_shifted(run_cli: Cli, tmp_path: Path, settings: Settings) -> None:
    from boltit.training.generator import generate_tickets

    tickets = generate_tickets(3000, seed=31)
    baseline, current = tickets.iloc[::2], tickets.iloc[1::2]
    paths = {}
    for name, frame in {
        "baseline": baseline,
        "current": current,
        "shifted": _shifted(current, new=250),
    }.items():
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)

    calm = run_cli(
        "drift", "--baseline-data", str(paths["baseline"]), "--current-data", str(paths["current"])
    )
    assert calm.exit_code == 0, calm.output + calm.error
    assert "critical" not in calm.output

    shifted = run_cli(
        "drift", "--baseline-data", str(paths["baseline"]), "--current-data", str(paths["shifted"])
    )
    assert shifted.exit_code == 1
    assert "category_mix" in shifted.error and "vocabulary" in shifted.error
    pages = sorted((settings.state_dir / "drift").glob("drift-*.html"))
    assert len(pages) == 2  # one report per run, never overwritten
    assert f"HTML report: {pages[-1]}" in shifted.output.replace("\n", "")


def test_drift_store_windows(run_cli: Cli, database: Database, settings: Settings) -> None:
    from boltit.training.generator import generate_tickets

    tickets = generate_tickets(2400, seed=41)
    october = datetime(2026, 10, 1, tzinfo=UTC)
    november = datetime(2026, 11, 1, tzinfo=UTC)
    store_tickets(
        database,
        _confident(tickets.iloc[:1200], 1),
        start=october,
        spacing=timedelta(minutes=30),
        prefix="oct",
    )
    drifted = _confident(_shifted(tickets.iloc[1200:], new=200), 2, a=4.0, b=2.5)
    store_tickets(database, drifted, start=november, spacing=timedelta(minutes=30), prefix="nov")

    result = run_cli(
        "drift", "--baseline", "2026-10-01..2026-10-31", "--current", "2026-11-01..2026-11-30"
    )

    assert result.exit_code == 1
    for signal in ("category_mix", "vocabulary", "confidence"):
        assert signal in result.error
    saved = json.loads(next((settings.state_dir / "drift").glob("drift-*.json")).read_text())
    assert saved["baseline"]["rows"] == 1200
    assert saved["current"]["label"] == "store 2026-11-01..2026-11-30"

    empty = run_cli(
        "drift", "--baseline", "2025-01-01..2025-01-31", "--current", "2026-11-01..2026-11-30"
    )
    assert empty.exit_code == 2 and "no tickets in the ticket store for 2025-01-01" in empty.error
    wrong = run_cli(
        "drift", "--baseline", "2026-10-31..2026-10-01", "--current", "2026-11-01..2026-11-30"
    )
    assert wrong.exit_code == 2 and "END must come after START" in wrong.error


def test_drift_baseline_from_training_run(
    run_cli: Cli, tmp_path: Path, mlflow_client: MlflowClient, settings: Settings
) -> None:
    from boltit.core.tracking import ensure_experiment
    from boltit.training.generator import generate_tickets

    tickets = generate_tickets(2000, seed=51)
    split = tickets.iloc[:1000].assign(
        predicted_category=tickets["category"].iloc[:1000], confidence=0.9
    )
    split_path = tmp_path / "eval_split.parquet"
    split.to_parquet(split_path)
    run = mlflow_client.create_run(ensure_experiment(mlflow_client, settings))
    mlflow_client.log_artifact(run.info.run_id, str(split_path), "evaluation")
    current = tmp_path / "current.csv"
    tickets.iloc[1000:].to_csv(current, index=False)

    result = run_cli("drift", "--baseline-run", run.info.run_id, "--current-data", str(current))

    assert result.exit_code == 0, result.output + result.error
    assert f"run {run.info.run_id} evaluation split" in result.output.replace("\n", "")

    missing = run_cli("drift", "--baseline-run", "0" * 32, "--current-data", str(current))
    assert missing.exit_code == 2 and "evaluation/eval_split.parquet" in missing.error


def test_drift_needs_one_baseline_and_one_current(run_cli: Cli, ticket_csv: Path) -> None:
    neither = run_cli("drift", "--current-data", str(ticket_csv))
    both = run_cli(
        "drift",
        "--baseline-data",
        str(ticket_csv),
        "--baseline",
        "2026-01-01..2026-01-02",
        "--current-data",
        str(ticket_csv),
    )

    assert neither.exit_code == 2 and "give one baseline" in neither.error
    assert both.exit_code == 2 and "give one baseline" in both.error


def test_analyze_recent_summarises_last_days(
    run_cli: Cli, database: Database, good_tickets: pd.DataFrame, settings: Settings
) -> None:
    now = datetime.now(UTC)
    old = _confident(good_tickets.head(100), 1)
    store_tickets(database, old, start=now - timedelta(days=30), prefix="old")
    recent = good_tickets.iloc[100:300].assign(confidence=np.linspace(0.30, 0.99, 200))
    store_tickets(
        database,
        recent,
        start=now - timedelta(days=3),
        spacing=timedelta(minutes=9),
        model_version="2",
    )

    result = run_cli("analyze-recent", "--days", "7", "--lowest", "3")

    assert result.exit_code == 0, result.output
    threshold = settings.auto_apply_threshold
    low = int((recent["confidence"] < threshold).sum())
    assert f"200 tickets in the last 7 days (v2: 200); {low / 200:.1%} below confidence" in (
        result.output.replace("\n", " ")
    )
    assert "t000000" in result.output  # the least confident ticket
    assert "old000" not in result.output

    as_json = run_cli("analyze-recent", "--days", "7", "--json")
    summary = json.loads(as_json.output)
    assert summary["volume"] == 200 and summary["low_confidence"] == low
    hardware = next(c for c in summary["categories"] if c["category"] == "Hardware")
    expected = recent.loc[recent["category"] == "Hardware", "confidence"].mean()
    assert hardware["mean_confidence"] == pytest.approx(expected)


def test_check_data_from_an_empty_store_says_so(run_cli: Cli) -> None:
    result = run_cli("check-data", "--from-store", "--days", "3", "--suite", "prediction_log")
    labelled = run_cli("check-data", "--from-store")

    assert result.exit_code == 2
    assert result.error == "no predictions in the ticket store in the last 3 days"
    assert labelled.error == "no labelled tickets in the ticket store in the last 30 days"


def test_analyze_recent_with_no_tickets(run_cli: Cli) -> None:
    result = run_cli("analyze-recent")

    assert result.exit_code == 0
    assert "No tickets in the last 7 days." in result.output


def test_mlproject_check_data_entry_point_runs_the_suite(
    run_cli: Cli, ticket_csv: Path, settings: Settings
) -> None:
    import shlex

    import yaml

    project = yaml.safe_load((Path(__file__).parents[2] / "MLproject").read_text())
    entry = project["entry_points"]["check_data"]
    values = {name: spec.get("default", "") for name, spec in entry["parameters"].items()}
    values.update(data=str(ticket_csv), text_column="Document", label_column="Topic_group")
    # MLflow quotes each parameter value when it substitutes it into the command.
    command = shlex.split(entry["command"].format(**{k: shlex.quote(v) for k, v in values.items()}))

    assert command[:2] == ["boltit", "check-data"]
    result = run_cli(*command[1:])

    assert result.exit_code == 0, result.output + result.error
    assert (settings.state_dir / "data_docs" / "index.html").is_file()


def test_check_data_options_change_the_suite(run_cli: Cli, ticket_csv: Path) -> None:
    columns = ["--text-column", "Document", "--label-column", "Topic_group"]

    labels = run_cli("check-data", str(ticket_csv), *columns, "--allowed-labels", "Hardware,Access")
    strict = run_cli("check-data", str(ticket_csv), *columns, "--min-rows-per-class", "5000")
    invalid = run_cli("check-data", str(ticket_csv), *columns, "--min-rows-per-class", "0")

    assert labels.exit_code == 1 and labels.error.endswith("labels_allowed")
    assert strict.exit_code == 1 and strict.error.endswith("min_rows_per_class")
    assert invalid.exit_code == 2 and "min_rows_per_class must be at least 1" in invalid.error


def test_drift_reads_thresholds_from_settings(
    run_cli: Cli, tmp_path: Path, settings: Settings, good_tickets: pd.DataFrame
) -> None:
    baseline, current = tmp_path / "baseline.csv", tmp_path / "current.csv"
    good_tickets.iloc[::2].to_csv(baseline, index=False)
    good_tickets.iloc[1::2].to_csv(current, index=False)
    strict = tmp_path / "drift.yaml"
    strict.write_text("p_value: 0.999999\nsignals:\n  text_length: {warning: 0, critical: 0}\n")
    settings.drift_config = strict

    result = run_cli("drift", "--baseline-data", str(baseline), "--current-data", str(current))

    assert result.exit_code == 1
    assert result.error == "drift: critical shift in text_length"
