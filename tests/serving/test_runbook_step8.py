"""The runbook's step 8 on the real tickets: retrain -> validate -> promote, with no --force.

v1 trains on the tickets before a cut-off date and serves; later tickets are classified
through the API and agents send their true category as feedback; ``retrain`` adds them
(a share joins the model's evaluation set), ``validate --min-accuracy 0.85`` passes on rows
neither version trained on, ``promote`` moves Production and the service follows.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest

from boltit.core import evaluation_sets as es
from boltit.core.settings import Settings
from boltit.core.tracking import configure_mlflow
from tests.console_script import run_boltit
from tests.serving.conftest import ServiceThread, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.real_data, pytest.mark.slow]

# Measured: on 20,000 tickets in file order the retrained model scores 0.8485 on its
# evaluation set (under 0.85); 32,000 give 0.8628, a margin the run-to-run noise keeps.
SAMPLE = 32_000
BEFORE_CUTOFF = 26_000
BATCH = 200
COLUMNS = ["--text-column", "Document", "--label-column", "Topic_group"]


def _tickets_in_time(path: Path) -> pd.DataFrame:
    """A sample of the real tickets in file order, one every 20 minutes, ending in the past."""
    frame = pd.read_csv(path).dropna(subset=["Document", "Topic_group"])
    frame = frame.sample(SAMPLE, random_state=0).sort_index().reset_index(drop=True)
    start = datetime.now(UTC) - timedelta(days=400)
    frame["created_at"] = [start + timedelta(minutes=20 * i) for i in range(len(frame))]
    return frame


def test_retrain_validate_promote_on_real_tickets_without_force(
    real_data_path: Path,
    live_settings: Settings,
    client_headers: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    started = time.monotonic()
    monkeypatch.setenv("BOLTIT_STATE_DIR", str(live_settings.state_dir))
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.delenv("BOLTIT_GATES_CONFIG", raising=False)  # the packaged gates, as shipped
    tickets = _tickets_in_time(real_data_path)
    history = tmp_path / "tickets_before_cutoff.csv"
    tickets.iloc[:BEFORE_CUTOFF].to_csv(history, index=False)
    later = tickets.iloc[BEFORE_CUTOFF:]

    code, out, err = run_boltit(monkeypatch, capsys, "train", "--data", str(history), *COLUMNS)
    assert code == 0, out + err
    assert "evaluation set fixed by this run: 5,200 held-out tickets" in out
    code, out, err = run_boltit(monkeypatch, capsys, "validate", "1", "--min-accuracy", "0.85")
    assert code == 0, out + err
    code, out, err = run_boltit(monkeypatch, capsys, "promote", "1", "--reason", "first release")
    assert code == 0, out + err

    with (
        ServiceThread(live_settings) as service,
        httpx.Client(base_url=service.url, headers=client_headers, timeout=60) as http,
    ):
        wait_for(lambda: http.get("/model/version").json().get("version") == "1", timeout=60)
        wrong = 0
        for begin in range(0, len(later), BATCH):
            chunk = later.iloc[begin : begin + BATCH]
            answer = http.post("/classify/batch", json={"texts": chunk["Document"].tolist()})
            assert answer.status_code == 200, answer.text
            for result, truth in zip(answer.json()["results"], chunk["Topic_group"], strict=True):
                wrong += result["category"] != truth
                sent = http.post(
                    f"/tickets/{result['ticket_id']}/feedback", json={"category": truth}
                )
                assert sent.status_code == 200, sent.text
        live_accuracy = 1 - wrong / len(later)

        code, out, err = run_boltit(
            monkeypatch, capsys, "retrain", "--data", str(history), *COLUMNS,
            "--include-recent-days", "90",
        )  # fmt: skip
        assert code == 0, out + err
        flat = " ".join(out.split())
        assert "ticket store: 6,000 labelled tickets from the last 90 days" in flat
        assert "6,000 arrived after v1's training cut-off" in flat
        assert "1,200 join the evaluation set, 4,800 store tickets train" in flat
        assert "revision 2: 6,400 tickets (+1,200 new arrivals)" in flat
        assert "excluded 5,200 given rows it holds" in flat

        code, out, err = run_boltit(monkeypatch, capsys, "validate", "2", "--min-accuracy", "0.85")
        assert code == 0, out + err  # no --force anywhere
        flat = " ".join(out.split())
        assert "evaluated on model evaluation set: 6,400 rows" in flat
        assert "v2 passed its gates" in flat
        code, out, err = run_boltit(monkeypatch, capsys, "promote", "2", "--reason", "step 8")
        assert code == 0, out + err
        assert "Production v1 -> v2" in out
        followed = wait_for(
            lambda: http.get("/model/version").json().get("version") == "2", timeout=60
        )

    client = configure_mlflow(live_settings)
    name = live_settings.model_name
    held = es.read_evaluation_set(client, name)
    assert held is not None and held.rows == 6400 and held.revision == 2
    tags = client.get_model_version(name, "2").tags
    assert tags["validation_status"] == "passed"
    assert tags["validation.champion"] == "1"
    assert tags["validation.evaluation_rows"] == "6400"
    v1 = client.get_run(client.get_model_version(name, "1").run_id).data.metrics["accuracy"]
    v2 = float(tags["validation.accuracy"])
    print(
        f"\nstep 8 on {SAMPLE:,} real tickets: v1 run accuracy {v1:.4f} (5,200 held out), "
        f"live accuracy of v1 on {len(later):,} later tickets {live_accuracy:.4f}, "
        f"v2 validated accuracy {v2:.4f} on {held.rows:,} rows, service followed in "
        f"{followed:.1f} s, whole test {time.monotonic() - started:.0f} s"
    )
    assert v2 >= 0.85
