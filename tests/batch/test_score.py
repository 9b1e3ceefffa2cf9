"""``boltit score`` on the local engine with real registered versions: CSV, Parquet folder and
store inputs, the MLflow run and the audit event, refusals, and ``--compare``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from boltit.core.audit import history
from boltit.core.db import Database
from boltit.core.settings import Settings
from boltit.core.tickets import add_feedback
from boltit.serving.decision import auto_apply_decision
from tests.batch.conftest import BAD, GOOD, labelled_tickets
from tests.console_script import Boltit
from tests.monitoring.tickets import store_tickets, ticket_row


def test_a_csv_is_scored_once_per_row_logged_and_audited(
    boltit: Boltit,
    scoring_client: MlflowClient,
    database: Database,
    settings: Settings,
    tickets_csv: Path,
    tmp_path: Path,
) -> None:
    out = tmp_path / "scored"
    code, stdout, stderr = boltit(
        "score",
        str(tickets_csv),
        "--model",
        "Production",
        "--output",
        str(out),
        "--chunk-rows",
        "500",
        "--actor",
        "carol",
    )
    assert code == 0, stderr
    assert f"Scored 1,200 rows with ticket-classifier v{GOOD} (@Production)" in stdout
    scored = pd.read_parquet(out)
    source = pd.read_csv(tickets_csv)
    assert sorted(scored["id"]) == sorted(source["id"])  # every ticket, each once
    assert sorted(p.name for p in out.glob("part-*.parquet")) == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    assert (out / "_SUCCESS").exists()
    assert set(scored["model_version"]) == {GOOD}
    # The service's decision, at the configured threshold, row by row.
    for confidence, applied, reason in scored[["confidence", "auto_applied", "reason"]].values:
        assert (applied, reason) == auto_apply_decision(
            confidence=confidence, threshold=settings.auto_apply_threshold, enabled=True
        )
    right = (scored.set_index("id")["category"] == source.set_index("id")["category"]).mean()
    assert right > 0.7  # a real model answered, not a constant

    experiment = scoring_client.get_experiment_by_name("batch-scoring")
    assert experiment is not None
    (run,) = scoring_client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["model_version"] == GOOD
    assert run.data.params["engine"] == "local"
    assert len(run.data.params["input_digest"]) == 64
    assert run.data.metrics["rows"] == 1200
    assert run.data.metrics["rows_per_second"] > 0
    counts = scored["category"].value_counts()
    for category, rows in counts.items():
        assert run.data.metrics[f"category_rows.{category}"] == rows

    with database.session() as session:
        (event,) = history(session, actions=["batch_score"])
        assert (event.actor, event.to_version) == ("carol", GOOD)
        assert event.details is not None
        assert event.details["rows"] == 1200 and event.details["mlflow_run_id"] == run.info.run_id


def test_a_parquet_folder_and_a_store_query_are_scored_by_version_number(
    boltit: Boltit, scoring_client: MlflowClient, database: Database, tmp_path: Path
) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    frame = labelled_tickets(300, seed=5).drop(columns=["id"])
    frame.iloc[:200].to_parquet(parts / "a.parquet")
    frame.iloc[200:].to_parquet(parts / "b.parquet")
    code, _, stderr = boltit(
        "score",
        str(parts),
        "--model",
        BAD,
        "--output",
        str(tmp_path / "o1"),
        "--chunk-rows",
        "128",
    )
    assert code == 0, stderr
    scored = pd.read_parquet(tmp_path / "o1")
    assert sorted(scored["row"]) == list(range(300))  # numbered in input order
    assert set(scored["model_version"]) == {BAD}

    store_tickets(
        database,
        [
            ticket_row(
                text=t,
                category="Access",
                confidence=0.9,
                version="1",
                created_at=pd.Timestamp("2026-11-02", tz="UTC") + pd.Timedelta(minutes=n),
            )
            for n, t in enumerate(frame["text"].iloc[:40])
        ],
    )
    code, _, stderr = boltit(
        "score",
        "--query",
        "SELECT id, text FROM tickets",
        "--output",
        str(tmp_path / "o2"),
    )
    assert code == 0, stderr
    assert len(set(pd.read_parquet(tmp_path / "o2")["id"])) == 40


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--text-column", "body"], "has no column 'body'"),
        (["--model", "9"], "has no version 9"),
        (["--model", "champion"], "has no alias 'champion'"),
        (["--engine", "gpu"], "--engine must be one of local, spark"),
        (["--chunk-rows", "0"], "--chunk-rows must be at least 1"),
    ],
)
def test_bad_arguments_exit_2_with_the_problem_and_write_nothing(
    boltit: Boltit,
    scoring_client: MlflowClient,
    tickets_csv: Path,
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    out = tmp_path / "scored"
    code, _, stderr = boltit("score", str(tickets_csv), "--output", str(out), *args)
    assert code == 2
    assert message in " ".join(stderr.split())
    assert not out.exists()


def test_resuming_with_another_version_is_refused(
    boltit: Boltit, scoring_client: MlflowClient, tickets_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scored"
    code, _, stderr = boltit("score", str(tickets_csv), "--output", str(out), "--model", GOOD)
    assert code == 0, stderr
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    code, _, stderr = boltit("score", str(tickets_csv), "--output", str(out), "--model", BAD)
    assert code == 2
    assert f"model_version: '{GOOD}' -> '{BAD}'" in " ".join(stderr.split())
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_compare_shows_the_worse_version_on_a_file_and_on_the_store(
    boltit: Boltit,
    scoring_client: MlflowClient,
    database: Database,
    tickets_csv: Path,
    tmp_path: Path,
) -> None:
    out = tmp_path / "cmp"
    code, stdout, stderr = boltit(
        "score",
        str(tickets_csv),
        "--compare",
        "Production",
        "challenger",
        "--output",
        str(out),
    )
    assert code == 0, stderr
    report = json.loads((out / "compare.json").read_text())
    good, bad = report["versions"]
    assert (good["version"], bad["version"]) == (GOOD, BAD)
    assert report["rows"] == 1200
    assert good["accuracy"] > 0.7 > bad["accuracy"]
    assert good["interval"][0] < good["accuracy"] < good["interval"][1]
    assert bad["interval"][1] < good["interval"][0]  # far apart, beyond the noise
    drop = report["accuracy_drop"]  # good minus bad: clearly positive
    assert drop["low"] > 0 and drop["observed"] == pytest.approx(good["accuracy"] - bad["accuracy"])
    assert 0 < report["agreement"] < 1
    assert set(good["per_category"]) == set(pd.read_csv(tickets_csv)["category"])
    assert "Accuracy per true category" in stdout

    # The store's labelled tickets: only labels from an authenticated client count.
    tickets = labelled_tickets(200, seed=9)
    rows = [
        ticket_row(
            text=t,
            category="Access",
            confidence=0.9,
            version=GOOD,
            created_at=pd.Timestamp("2026-11-03", tz="UTC") + pd.Timedelta(minutes=n),
        )
        for n, t in enumerate(tickets["text"])
    ]
    store_tickets(database, rows)
    with database.session() as session:
        for row, truth in zip(rows[:150], tickets["category"][:150], strict=True):
            add_feedback(session, row["id"], category=truth, client="agent-1")
    code, _, stderr = boltit(
        "score",
        "--compare",
        GOOD,
        BAD,
        "--output",
        str(tmp_path / "store"),
    )
    assert code == 0, stderr
    stored = json.loads((tmp_path / "store" / "compare.json").read_text())
    assert stored["rows"] == 150
    assert stored["versions"][0]["accuracy"] > stored["versions"][1]["accuracy"]
    with database.session() as session:
        assert len(history(session, actions=["batch_compare"])) == 2
