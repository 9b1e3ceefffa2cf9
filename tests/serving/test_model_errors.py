"""A version that loads but raises on some inputs: JSON 500 with a request id, recorded as a
``prediction_error``, counted on /metrics and seen by the monitor's error-rate rule."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient

from boltit.core import audit
from boltit.core.db import Database
from boltit.core.settings import Settings
from boltit.core.vocabulary import PREDICTION_ERROR
from boltit.monitoring.rules import load_alert_config
from boltit.monitoring.status import store_evaluations
from tests.model_code import register_model_code
from tests.serving.conftest import MODEL, ServiceThread, iter_lines
from tests.serving.raising_model_code import RAISE_MARKER

CODE = Path(__file__).with_name("raising_model_code.py")


def test_a_model_that_raises_gives_a_json_500_recorded_counted_and_alerting(
    live_settings: Settings, mlflow_client: MlflowClient, model_dir: Path, database: Database
) -> None:
    version = register_model_code(CODE, model_dir=model_dir, name=MODEL)
    mlflow_client.set_registered_model_alias(MODEL, "Production", version)
    settings = live_settings.model_copy(update={"insecure_open": True})
    with ServiceThread(settings) as running, httpx.Client(base_url=running.url, timeout=30) as http:
        assert http.get("/model/version").json()["version"] == version
        fine = http.post("/classify", json={"text": "my laptop does not start"})
        assert fine.status_code == 200, fine.text
        failed = http.post("/classify", json={"text": f"vpn is down {RAISE_MARKER}"})
        batch = http.post("/classify/batch", json={"texts": ["printer jam", RAISE_MARKER]})
        chosen = http.post(
            "/classify", json={"text": RAISE_MARKER}, headers={"X-Request-ID": "caller-42"}
        )
        metrics = http.get("/metrics").text

    for answer in (failed, batch, chosen):
        assert answer.status_code == 500
        assert answer.headers["content-type"].startswith("application/json")
        body = answer.json()
        assert f"model version {version} failed to classify" in body["detail"]
        assert "ValueError" in body["detail"]
        assert body["request_id"] == answer.headers["X-Request-ID"]
    assert chosen.json()["request_id"] == "caller-42"  # a caller's own id is kept
    assert fine.headers["X-Request-ID"]  # every answer carries one

    with database.session() as session:
        errors = audit.history(session, model_name=MODEL, actions=[PREDICTION_ERROR])
        ids = {e.details["request_id"] for e in errors if e.details}
        kinds = {e.details["kind"] for e in errors if e.details}
        assert len(errors) == 3
        assert {e.to_version for e in errors} == {version}
    assert ids == {a.json()["request_id"] for a in (failed, batch, chosen)}
    assert kinds == {"model_error"}

    counted = [
        line for line in iter_lines(metrics) if line.startswith("boltit_prediction_errors_total")
    ]
    assert counted == ['boltit_prediction_errors_total{kind="model_error"} 3.0']

    evaluations = store_evaluations(
        settings=settings,
        database=database,
        config=load_alert_config(settings),
        production=version,
    )
    rate = next(e for e in evaluations if e.rule == "prediction_error_rate")
    # 1 stored ticket and 3 failed requests: the rule sees 3 errors in 4 attempts.
    assert rate.value == pytest.approx(3 / 4)
