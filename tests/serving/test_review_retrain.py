"""End to end: labels given on the /review page are what `boltit retrain` trains on."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from boltit.core.db import Database
from boltit.core.evaluation_sets import row_digest, training_digests
from boltit.core.settings import Settings
from tests.serving.conftest import VENV_BIN, ServiceThread, add_client, service_env
from tests.serving.review_tickets import insert_tickets, ticket_rows

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
LABELLED = 30


def _texts() -> list[str]:
    doors = ("north", "south", "east", "west", "loading", "lab")
    return [
        f"badge reader at the {doors[i % 6]} door {i} rejects my card after the office move"
        for i in range(LABELLED)
    ]


def test_retrain_uses_the_labels_made_on_the_review_page(
    live_settings: Settings, production_v1: str, mlflow_client: MlflowClient, tmp_path: Path
) -> None:
    texts = _texts()
    rows = ticket_rows(LABELLED, seed=31, texts=texts)
    for row in rows:
        row["confidence"] = 0.4
        row["category"] = "Hardware"  # the model's (wrong) answer; reviewers correct most
    database = Database(live_settings.database_url)
    try:
        insert_tickets(database, rows)
    finally:
        database.dispose()
    token = add_client(live_settings, "sme-retrain", "review")
    corrected: dict[str, str] = {}
    with (
        ServiceThread(live_settings) as service,
        httpx.Client(base_url=service.url, timeout=30) as browser,
    ):
        login = browser.get("/review/login")
        csrf = CSRF.search(login.text)
        assert csrf is not None
        answer = browser.post("/review/login", data={"token": token, "csrf": csrf.group(1)})
        assert answer.status_code == 303
        page = browser.get("/review?queue=low-confidence")
        found = CSRF.search(page.text)
        assert found is not None
        session_csrf = found.group(1)
        for row in rows[:20]:
            posted = browser.post(
                f"/review/tickets/{row['id']}", data={"csrf": session_csrf, "category": "Access"}
            )
            assert posted.status_code == 303, posted.text
            corrected[str(row["text"])] = "Access"
        rest = [str(row["id"]) for row in rows[20:]]
        bulk = browser.post("/review/confirm-page", data={"csrf": session_csrf, "ticket_id": rest})
        assert bulk.status_code == 303
        corrected.update({str(row["text"]): "Hardware" for row in rows[20:]})

    done = subprocess.run(
        [
            str(VENV_BIN / "boltit"),
            "retrain",
            "--include-recent-days",
            "7",
            "--rows",
            "1600",
            "--seed",
            "3",
            "--no-register",
        ],
        env=service_env(live_settings, MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"ticket store: {LABELLED} labelled tickets from the last 7 days" in done.stdout

    experiment = mlflow_client.get_experiment_by_name(live_settings.experiment_name)
    assert experiment is not None
    run = mlflow_client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1
    )[0]
    params = run.data.params
    assert "store:last_7_days" in params["data_source"]
    assert int(params["data_rows"]) == 1600 + LABELLED
    # Every page label either trained the model or joined its evaluation set, with the
    # reviewer's category.
    trained = training_digests(mlflow_client, run.info.run_id) or set()
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=params["evaluation_set_uri"], dst_path=str(tmp_path / "set")
    )
    evaluation = pd.read_parquet(local)
    evaluated = {
        row_digest(text): category
        for text, category in zip(evaluation["text"], evaluation["category"], strict=True)
    }
    for text, category in corrected.items():
        digest = row_digest(text)
        assert digest in trained or evaluated.get(digest) == category, text
    assert any(row_digest(text) in trained for text in corrected)
