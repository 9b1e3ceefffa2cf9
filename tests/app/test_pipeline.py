"""``boltit pipeline retrain``: data checks → retrain → validate → promote, or a stop.

Real MLflow store and SQLite ticket store under tmp_path; v1 serves, agents have labelled
recent tickets, and the pipeline runs in this process as the console script runs it.
"""

from __future__ import annotations

import shlex
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.projects._project_spec import load_project

from boltit.core import audit
from boltit.core.db import Database
from boltit.core.settings import Settings
from boltit.core.vocabulary import PREVIOUS, PRODUCTION
from boltit.registry.lookup import aliases
from boltit.training.generator import generate_tickets
from tests.console_script import Boltit, point_cli_at, run_boltit
from tests.monitoring.tickets import send_feedback, store_tickets, ticket_row
from tests.registry.conftest import write_test_gates

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[2]
BASE_ROWS = "1200"
STORE_ROWS = 250
STEPS = ("data checks", "retrain", "validate", "approval", "promote")


@pytest.fixture
def gates(tmp_path: Path) -> Path:
    """The tests' gate config (latency in dry run); the CLI reads it at each call."""
    return write_test_gates(tmp_path)


@pytest.fixture
def boltit(
    settings: Settings,
    gates: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Boltit:
    """``boltit ARGS`` on this test's stores, gated by ``gates``."""
    point_cli_at(settings, monkeypatch)
    monkeypatch.setenv("BOLTIT_GATES_CONFIG", str(gates))
    return partial(run_boltit, monkeypatch, capsys)


@pytest.fixture
def v1_serving_with_labelled_tickets(
    boltit: Boltit, settings: Settings, mlflow_client: MlflowClient, database: Database
) -> Path:
    """v1 trained on a base file and in Production; agents labelled tickets served since."""
    base = settings.state_dir.parent / "base.csv"
    # The base file ends two days ago, so every labelled ticket below (the last few hours)
    # arrived after v1's cut-off whatever the time of day the test runs.
    started = datetime.now(UTC) - timedelta(days=32)
    generate_tickets(int(BASE_ROWS), seed=1, start=started).to_csv(base, index=False)
    code, out, err = boltit("train", "--data", str(base))
    assert code == 0, out + err
    mlflow_client.set_registered_model_alias(settings.model_name, PRODUCTION, "1")
    now = datetime.now(UTC)
    rows = [
        ticket_row(
            text=t.text,
            category=t.category,
            confidence=0.9,
            version="1",
            created_at=now - timedelta(minutes=STORE_ROWS - i),
        )
        for i, t in enumerate(generate_tickets(STORE_ROWS, seed=21).itertuples())
    ]
    store_tickets(database, rows)
    send_feedback(database, [(r["id"], r["category"]) for r in rows])
    return base


def _summary(out: str) -> dict[str, tuple[str, str]]:
    """The summary table's rows: step -> (outcome, details)."""
    rows = {}
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if len(cells) == 3 and cells[0] in STEPS:
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def _actions(database: Database, settings: Settings) -> list[tuple[str, str, str | None]]:
    with database.session() as session:
        events = audit.history(session, model_name=settings.model_name)
        return [(e.action, e.actor, e.to_version) for e in events]


def test_a_passing_run_retrains_on_recent_labels_and_promotes(
    boltit: Boltit,
    settings: Settings,
    mlflow_client: MlflowClient,
    database: Database,
    v1_serving_with_labelled_tickets: Path,
) -> None:
    base = v1_serving_with_labelled_tickets
    recent = ("--include-recent-days", "30")
    code, out, err = boltit(
        "pipeline", "retrain", "--data", str(base), *recent, "--actor", "scheduler"
    )

    assert code == 0, out + err
    assert "ticket store: 250 labelled tickets from the last 30 days" in out
    summary = _summary(out)
    assert [outcome for outcome, _ in summary.values()] == ["ok", "ok", "ok", "skipped", "ok"]
    assert summary["approval"][1] == "not required by the gate config"
    # v1's 240 held-out tickets stay out; 200 of the 250 labelled arrivals train, 50 evaluate.
    assert "50 join the evaluation set, 200 store tickets train" in out
    assert summary["retrain"][1].startswith(f"v2 trained on {960 + 200:,} tickets")
    assert "v2 passed its gates (against v1)" in summary["validate"][1]
    assert summary["promote"][1] == "Production v1 -> v2"
    assert aliases(mlflow_client, name=settings.model_name) == {PRODUCTION: "2", PREVIOUS: "1"}
    v2 = mlflow_client.get_model_version(settings.model_name, "2")
    assert v2.tags["source"] == "pipeline"
    assert v2.tags["validation_status"] == "passed"
    # Each step left the history row its own command leaves, under the scheduler's name.
    assert [a for a in _actions(database, settings) if a[1] == "scheduler"] == [
        ("train", "scheduler", "2"),
        ("validate", "scheduler", "2"),
        ("promote", "scheduler", "2"),
    ]


def test_a_failing_gate_stops_the_mlproject_run_before_promotion(
    boltit: Boltit,
    settings: Settings,
    mlflow_client: MlflowClient,
    database: Database,
    v1_serving_with_labelled_tickets: Path,
) -> None:
    # The MLproject entry point's command as `mlflow run` renders it, run in this process.
    entry = load_project(str(PROJECT)).get_entry_point("pipeline_retrain")
    command = entry.compute_command(
        {
            "data": str(v1_serving_with_labelled_tickets),
            "include_recent_days": "30",
            "min_accuracy": "0.999",
            "actor": "scheduler",
        },
        storage_dir=None,
    )
    program, *args = shlex.split(command)
    assert program == "boltit", command

    code, out, err = boltit(*args)

    assert code == 5, out + err
    summary = _summary(out)
    assert [outcome for outcome, _ in summary.values()] == [
        "ok",
        "ok",
        "STOPPED",
        "not run",
        "not run",
    ]
    assert summary["validate"][1].startswith("v2 failed its gates (against v1): min_accuracy")
    assert aliases(mlflow_client, name=settings.model_name) == {PRODUCTION: "1"}
    v2 = mlflow_client.get_model_version(settings.model_name, "2")
    assert v2.tags["validation_status"] == "failed"
    assert [a[0] for a in _actions(database, settings) if a[1] == "scheduler"] == [
        "train",
        "validate",
    ]


def test_under_required_approval_a_passing_version_waits_unpromoted(
    boltit: Boltit,
    gates: Path,
    settings: Settings,
    mlflow_client: MlflowClient,
    database: Database,
    v1_serving_with_labelled_tickets: Path,
) -> None:
    with gates.open("a", encoding="utf-8") as config:
        config.write("approval: required\n")
    base = v1_serving_with_labelled_tickets

    code, out, err = boltit("pipeline", "retrain", "--data", str(base), "--actor", "scheduler")

    assert code == 6, out + err
    summary = _summary(out)
    assert [outcome for outcome, _ in summary.values()] == [
        "ok",
        "ok",
        "ok",
        "awaiting approval",
        "not run",
    ]
    assert summary["approval"][1].startswith("v2 is challenger; after `boltit approve 2")
    assert aliases(mlflow_client, name=settings.model_name) == {PRODUCTION: "1", "challenger": "2"}
    # Waiting is not a refused promotion: the history holds no promote row for it.
    assert [a[0] for a in _actions(database, settings) if a[1] == "scheduler"] == [
        "train",
        "validate",
    ]
    # The person's step finishes what the schedule started.
    code, out, err = boltit("approve", "2", "--reason", "read the gate report", "--actor", "alice")
    assert code == 0, out + err
    code, out, err = boltit("promote", "2", "--actor", "alice")
    assert code == 0, out + err
    assert aliases(mlflow_client, name=settings.model_name)[PRODUCTION] == "2"


def test_failing_training_data_stops_before_anything_is_trained(
    boltit: Boltit, settings: Settings, mlflow_client: MlflowClient, tmp_path: Path
) -> None:
    # One category with 5 tickets: under the suite's 50 per category.
    tickets = generate_tickets(int(BASE_ROWS), seed=4)
    rare = tickets["category"].iloc[0]
    kept = tickets[tickets["category"] != rare]
    thin = tmp_path / "thin.csv"
    pd.concat([kept, tickets[tickets["category"] == rare].head(5)]).to_csv(thin, index=False)

    code, out, err = boltit("pipeline", "retrain", "--data", str(thin))

    assert code == 3, out + err
    summary = _summary(out)
    assert [outcome for outcome, _ in summary.values()] == [
        "STOPPED",
        "not run",
        "not run",
        "not run",
        "not run",
    ]
    assert summary["data checks"][1].startswith(f"min_rows_per_class ({rare})")
    assert mlflow_client.search_registered_models() == []
