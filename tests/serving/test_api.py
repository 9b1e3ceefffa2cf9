"""The HTTP API against a real registry and ticket store (uvicorn in a thread of this process)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient
from sqlalchemy import func, select

from boltit.core import audit
from boltit.core.db import Database
from boltit.core.schema import Ticket
from boltit.core.settings import Settings, load_settings
from boltit.core.tracking import configure_mlflow
from boltit.serving.security import webhook_signature
from tests.serving.conftest import (
    ADMIN_TOKEN,
    MODEL,
    WEBHOOK_SECRET,
    ServiceThread,
    add_client,
    bearer,
    iter_lines,
    register_version,
    service_env,
    wait_for,
)

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Api:
    """One running service shared by the read-mostly tests of this module."""

    settings: Settings
    database: Database
    version: str
    run_id: str  # the training run the served version was registered from
    http: httpx.Client


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("api")
    with pytest.MonkeyPatch.context() as patch:
        for name in (
            "MLFLOW_TRACKING_URI",
            "BOLTIT_DATABASE_URL",
            "BOLTIT_ADMIN_TOKEN",
            "AUTO_APPLY_ENABLED",
            "BOLTIT_MODEL_NAME",
        ):
            patch.delenv(name, raising=False)
        settings = load_settings(
            state_dir=root / "state",
            admin_token=ADMIN_TOKEN,
            webhook_secret=WEBHOOK_SECRET,
            poll_interval_seconds=0.2,
        )
        client = configure_mlflow(settings)
        run_id = client.create_run(client.create_experiment("api")).info.run_id
        version = register_version(client, model_dir, root, run_id=run_id)
        client.set_registered_model_alias(MODEL, "Production", version)
        database = Database(settings.database_url)
        with (
            ServiceThread(settings) as running,
            httpx.Client(base_url=running.url, timeout=30) as http,
        ):
            yield Api(
                settings=settings, database=database, version=version, run_id=run_id, http=http
            )
        database.dispose()


@pytest.fixture
def service(live_settings: Settings, production_v1: str) -> Iterator[ServiceThread]:
    with ServiceThread(live_settings) as running:
        yield running


@pytest.fixture
def http(service: ServiceThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=30) as client:
        yield client


def _count(database: Database) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).select_from(Ticket)) or 0)


def test_classify_answers_and_stores_the_ticket(api: Api) -> None:
    http, production_v1, database = api.http, api.version, api.database
    answer = http.post("/classify", json={"text": "my laptop does not charge any more"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {
        "ticket_id",
        "category",
        "priority",
        "confidence",
        "model_version",
        "auto_applied",
        "reason",
        "latency_ms",
    }
    assert body["model_version"] == production_v1
    assert 0.0 <= body["confidence"] <= 1.0
    assert body["auto_applied"] == (body["confidence"] >= 0.75)
    assert body["reason"].startswith("auto-applied" if body["auto_applied"] else "triage")
    with database.session() as session:
        stored = session.get(Ticket, body["ticket_id"])
        assert stored is not None
        assert stored.text == "my laptop does not charge any more"
        assert stored.category == body["category"]
        assert stored.model_version == production_v1
        assert stored.auto_applied == body["auto_applied"]
        assert stored.latency_ms == pytest.approx(body["latency_ms"], abs=0.01)


def test_model_version_ready_and_health(api: Api) -> None:
    http, production_v1 = api.http, api.version
    version = http.get("/model/version").json()
    assert version["name"] == MODEL
    assert version["version"] == production_v1
    assert version["alias"] == "Production"
    assert version["run_id"] == api.run_id
    assert version["loaded_at"]
    assert http.get("/ready").json() == {"ready": True, "version": production_v1}
    health = http.get("/health").json()
    assert health["status"] == "ok"
    assert health["load_errors"] == []


def test_batch_classifies_and_stores_every_ticket(api: Api) -> None:
    http, database = api.http, api.database
    texts = ["printer jammed", "need access to the HR folder", "payslip is wrong"]
    answer = http.post("/classify/batch", json={"texts": texts})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert len(results) == 3
    with database.session() as session:
        stored = {t.id: t.text for t in session.scalars(select(Ticket))}
    assert [stored[r["ticket_id"]] for r in results] == texts


BAD_BODIES = [
    pytest.param(b'{"text": ""}', "text", id="empty"),
    pytest.param(b'{"text": "   \\n\\t "}', "whitespace", id="whitespace-only"),
    pytest.param(json.dumps({"text": "x" * 20_001}).encode(), "20000", id="over-limit"),
    pytest.param(json.dumps({"text": "y" * 1_000_000}).encode(), "20000", id="one-megabyte"),
    pytest.param(b'{"text": 42}', "string", id="wrong-type-number"),
    pytest.param(b'{"text": ["a"]}', "string", id="wrong-type-list"),
    pytest.param(b'{"text": null}', "string", id="null"),
    pytest.param(b'{"txt": "hello"}', "text", id="missing-field"),
    pytest.param(b'["hello"]', "dictionary", id="not-an-object"),
    pytest.param(b'{"text": "hello"', "JSON", id="invalid-json"),
    pytest.param(b"", "required", id="empty-body"),
    pytest.param(b'{"text": "caf\xe9 \xff\xfe"}', "UTF-8", id="non-utf8-bytes"),
    pytest.param(b'{"text": "\\ud800 lone surrogate"}', "unicode", id="lone-surrogate"),
]


@pytest.mark.parametrize(("body", "names"), BAD_BODIES)
def test_bad_input_gets_a_4xx_naming_the_problem(api: Api, body: bytes, names: str) -> None:
    before = _count(api.database)
    answer = api.http.post("/classify", content=body, headers={"Content-Type": "application/json"})
    assert 400 <= answer.status_code < 500, answer.text
    assert names.lower() in answer.json()["detail"].lower()
    assert _count(api.database) == before  # nothing half-written


@pytest.mark.parametrize(
    ("payload", "names"),
    [
        pytest.param({"texts": []}, "texts", id="empty-batch"),
        pytest.param({"texts": ["ok"] * 257}, "texts", id="batch-over-limit"),
        pytest.param({"texts": ["ok", " "]}, "texts[1]", id="blank-item"),
        pytest.param({"texts": "not a list"}, "texts", id="wrong-type"),
        pytest.param({"texts": ["ok", "z" * 20_001]}, "texts.1", id="item-over-limit"),
    ],
)
def test_bad_batches_get_a_4xx(api: Api, payload: object, names: str) -> None:
    before = _count(api.database)
    answer = api.http.post("/classify/batch", json=payload)
    assert answer.status_code == 422, answer.text
    assert names in answer.json()["detail"]
    assert _count(api.database) == before


@pytest.mark.parametrize(
    "text",
    [
        "my screen is broken 😭🔥 please help",
        "printer\x00 jammed\x07\x1b[31m again\r\n\t",
        "'; DROP TABLE tickets; -- and SELECT * FROM users WHERE 1=1",
        "ÄÖÜ ß ñ 中文 العربية",
    ],
    ids=["emoji", "control-chars", "sql-looking", "non-latin"],
)
def test_odd_but_valid_text_is_classified_and_stored(api: Api, text: str) -> None:
    answer = api.http.post("/classify", json={"text": text})
    assert answer.status_code == 200, answer.text
    with api.database.session() as session:
        stored = session.get(Ticket, answer.json()["ticket_id"])
        assert stored is not None
        assert stored.text == text.replace("\x00", "\ufffd")


def test_admin_writes_need_the_token(http: httpx.Client, database: Database) -> None:
    flag = {"auto_apply_enabled": False}
    assert http.put("/admin/feature-flags", json=flag).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert http.put("/admin/feature-flags", json=flag, headers=wrong).status_code == 403
    assert http.post("/admin/reload").status_code == 401
    assert http.post("/admin/reload", headers=wrong).status_code == 403
    initial = {"auto_apply_enabled": True, "shadow_enabled": False, "canary_percent": 0.0}
    assert http.get("/admin/feature-flags").json() == initial

    changed = http.put(
        "/admin/feature-flags", json={**flag, "reason": "regression drill"}, headers=ADMIN
    )
    assert changed.status_code == 200
    assert changed.json() == {**initial, "auto_apply_enabled": False}
    answer = http.post("/classify", json={"text": "laptop battery is dead"}).json()
    assert answer["auto_applied"] is False
    assert "turned off" in answer["reason"]
    with database.session() as session:
        events = audit.history(session, actions=["flag_change"])
    assert len(events) == 1
    assert events[0].reason == "regression drill"
    assert events[0].details == {"flag": "auto_apply_enabled", "from": True, "to": False}

    reloaded = http.post("/admin/reload", headers=ADMIN)
    assert reloaded.status_code == 200
    assert reloaded.json()["results"][0]["swapped"] is True


@pytest.mark.e2e
def test_a_flag_change_from_another_process_is_seen(
    http: httpx.Client, live_settings: Settings
) -> None:
    assert http.get("/admin/feature-flags").json()["auto_apply_enabled"] is True
    # Another process (as `boltit flags set` or the monitor would) writes the shared table.
    other = (
        "from boltit.core import flags; from boltit.core.db import Database; import os; "
        "db = Database(os.environ['BOLTIT_DATABASE_URL']); "
        "s = db.session().__enter__(); "
        "flags.set_flag(s, 'auto_apply_enabled', enabled=False, actor='monitor', reason='drill'); "
        "s.commit()"
    )
    done = subprocess.run(
        [sys.executable, "-c", other],
        env=service_env(live_settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen_after = wait_for(
        lambda: http.get("/admin/feature-flags").json()["auto_apply_enabled"] is False,
        timeout=1.0,
    )
    assert seen_after <= 1.0
    answer = http.post("/classify", json={"text": "the laptop will not boot"}).json()
    assert answer["auto_applied"] is False


def test_feedback_drives_accuracy_and_export(api: Api) -> None:
    http = api.http
    # Accuracy counts only labels from an authenticated client (anonymous ones are ignored).
    agent = bearer(add_client(api.settings, "feedback-agent", "feedback"))
    start = http.get("/tickets").json()
    since = start[-1]["created_at"] if start else "2000-01-01T00:00:00Z"
    skip = sum(1 for t in start if t["created_at"] == since)
    assert http.post("/tickets/0123abcd/feedback", json={"category": "Hardware"}).status_code == 404
    ids = []
    for text in ["monitor flickers all day", "laptop fan is loud", "need a new keyboard"]:
        ids.append(http.post("/classify", json={"text": text}).json())
    right, wrong = ids[0], ids[1]
    assert (
        http.post(
            f"/tickets/{right['ticket_id']}/feedback",
            json={"category": right["category"], "priority": "P3"},
            headers=agent,
        ).status_code
        == 200
    )
    other = "Purchase" if wrong["category"] != "Purchase" else "Access"
    stored = http.post(
        f"/tickets/{wrong['ticket_id']}/feedback", json={"category": other}, headers=agent
    )
    assert stored.status_code == 200
    assert stored.json()["feedback_category"] == other
    assert (
        http.post(f"/tickets/{wrong['ticket_id']}/feedback", json={"category": "  "}).status_code
        == 422
    )

    metrics = {
        line.split(" ")[0]: line.split(" ")[-1] for line in iter_lines(http.get("/metrics").text)
    }
    assert float(metrics["classification_accuracy_7d"]) == pytest.approx(0.5)
    assert float(metrics["boltit_feedback_7d"]) == 2
    assert any(k.startswith("boltit_predictions_total{") for k in metrics)
    assert any(k.startswith("boltit_request_latency_seconds_bucket{") for k in metrics)
    assert any(k.startswith("boltit_prediction_confidence_bucket{") for k in metrics)
    assert any(k.startswith("boltit_model_version_info{") for k in metrics)
    assert "boltit_auto_apply_rate_1h" in metrics

    exported = http.get("/tickets", params={"since": since}).json()[skip:]
    assert [t["id"] for t in exported] == [i["ticket_id"] for i in ids]
    as_csv = http.get("/tickets", params={"format": "csv", "since": since})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))[skip:]
    assert [r["id"] for r in rows] == [i["ticket_id"] for i in ids]
    assert rows[1]["feedback_category"] == other
    assert http.get("/tickets", params={"since": "yesterday-ish"}).status_code == 422
    assert http.get("/tickets", params={"format": "xml"}).status_code == 422
    future = http.get("/tickets", params={"since": "2999-01-01T00:00:00Z"})
    assert future.json() == []


def test_n_concurrent_classify_calls_store_exactly_n_rows(api: Api) -> None:
    http, database = api.http, api.database
    n = 200
    before = _count(database)

    def call(i: int) -> int:
        return http.post("/classify", json={"text": f"ticket {i}: vpn access denied"}).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(call, range(n)))
    assert statuses == [200] * n
    assert _count(database) == before + n


def _signed(body: bytes, *, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": "delivery-1",
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": webhook_signature(
            secret=secret, delivery_id="delivery-1", timestamp=timestamp, body=body
        ),
    }


def test_webhook_needs_a_valid_signature(api: Api) -> None:
    http = api.http
    body = json.dumps(
        {
            "entity": "model_version_alias",
            "action": "created",
            "timestamp": "2026-01-01T00:00:00Z",
            "data": {"name": MODEL, "alias": "Production", "version": "1"},
        }
    ).encode()
    assert http.post("/webhooks/mlflow", content=body).status_code == 401
    forged = _signed(body, secret="not-the-secret")
    assert http.post("/webhooks/mlflow", content=body, headers=forged).status_code == 403
    tampered = _signed(body)
    assert (
        http.post(
            "/webhooks/mlflow", content=body.replace(b"created", b"deleted"), headers=tampered
        ).status_code
        == 403
    )
    accepted = http.post("/webhooks/mlflow", content=body, headers=_signed(body))
    assert accepted.status_code == 200
    assert accepted.json() == {"accepted": True, "action": "model_version_alias.created"}


def test_a_signed_webhook_makes_a_slow_polling_replica_switch_now(
    live_settings: Settings,
    production_v1: str,
    mlflow_client: MlflowClient,
    model_dir: Path,
    tmp_path: Path,
) -> None:
    slow = live_settings.model_copy(update={"poll_interval_seconds": 60.0})
    with ServiceThread(slow) as running, httpx.Client(base_url=running.url, timeout=30) as http:
        assert http.get("/model/version").json()["version"] == production_v1
        v2 = register_version(mlflow_client, model_dir, tmp_path)
        mlflow_client.set_registered_model_alias(MODEL, "Production", v2)
        time.sleep(0.5)
        assert http.get("/model/version").json()["version"] == production_v1  # not polled yet
        body = json.dumps(
            {
                "entity": "model_version_alias",
                "action": "created",
                "timestamp": "2026-01-01T00:00:00Z",
                "data": {"name": MODEL, "alias": "Production", "version": v2},
            }
        ).encode()
        assert http.post("/webhooks/mlflow", content=body, headers=_signed(body)).status_code == 200
        wait_for(lambda: http.get("/model/version").json()["version"] == v2, timeout=2.0)
