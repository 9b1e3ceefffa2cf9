"""Bounded requests against a real ``boltit serve`` on 127.0.0.1: body size counted as it
streams (chunked or not), JSON depth capped, invisible text refused, signed but malformed
webhooks refused, the export paginated, and /ready answering while heavy requests run."""

from __future__ import annotations

import json
import random
import select
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from boltit.core.db import Database
from boltit.core.settings import Settings, load_settings
from boltit.core.tracking import configure_mlflow
from boltit.serving.bounds import JsonDepthScanner
from boltit.serving.security import webhook_signature
from tests.conftest import PROJECT_ENV
from tests.serving.conftest import (
    MODEL,
    WEBHOOK_SECRET,
    ServiceProcess,
    register_version,
    service_env,
)

BODY_LIMIT = 8 * 1024 * 1024  # above a maximal batch (~5.2 MB), well under the default


@dataclass
class Served:
    settings: Settings
    database: Database
    process: ServiceProcess
    http: httpx.Client

    @property
    def port(self) -> int:
        return self.process.port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("bounds")
    with pytest.MonkeyPatch.context() as patch:
        for name in PROJECT_ENV:
            patch.delenv(name, raising=False)
        settings = load_settings(state_dir=root / "state", webhook_secret=WEBHOOK_SECRET)
        client = configure_mlflow(settings)
        version = register_version(client, model_dir, root)
        client.set_registered_model_alias(MODEL, "Production", version)
        database = Database(settings.database_url)
        env = service_env(
            settings,
            BOLTIT_INSECURE_OPEN="true",
            BOLTIT_WEBHOOK_SECRET=WEBHOOK_SECRET,
            BOLTIT_MAX_BODY_BYTES=str(BODY_LIMIT),
        )
        process = ServiceProcess(env=env, cwd=root).start()
        try:
            process.wait_ready()
            with httpx.Client(base_url=process.url, timeout=60) as http:
                yield Served(settings, database, process, http)
        finally:
            process.stop()
            database.dispose()


def _stream_chunked(port: int, path: str, *, total: int, first: bytes = b"") -> tuple[int, int]:
    """POST a chunked body of ``total`` bytes, stopping when the server answers early.

    Returns the status and how many body bytes were sent before the answer came.
    """
    chunk = b"x" * (256 * 1024)
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        try:
            if first:
                sock.sendall(b"%x\r\n%s\r\n" % (len(first), first))
                sent += len(first)
            while sent < total:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server has answered
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused and closed while we were still sending
        answer = b""
        while b"\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    status = int(answer.split(b" ", 2)[1])
    return status, sent


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(served: Served) -> None:
    total = 8 * BODY_LIMIT
    status, sent = _stream_chunked(served.port, "/classify", total=total, first=b'{"text": "')
    assert status == 413
    assert sent < total // 2  # answered long before the client finished sending
    assert served.http.get("/ready").status_code == 200


def test_the_webhook_refuses_a_large_unsigned_body_before_buffering_it(served: Served) -> None:
    total = BODY_LIMIT  # the webhook's own limit is 1 MiB
    status, sent = _stream_chunked(served.port, "/webhooks/mlflow", total=total)
    assert status == 413
    assert sent < total


def test_a_declared_length_over_the_limit_is_refused_before_reading(served: Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        sock.sendall(
            b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 999999999\r\n\r\n"
        )
        answer = b""
        while data := sock.recv(4096):  # the server closes after refusing
            answer += data
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"request body is larger than the 8 MiB limit" in answer


@pytest.mark.parametrize("depth", [33, 10_000])
def test_deeply_nested_json_is_a_400_naming_the_depth(served: Served, depth: int) -> None:
    body = b"[" * depth + b"]" * depth
    answer = served.http.post(
        "/classify", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert "nested deeper than 32 levels" in answer.json()["detail"]


def test_brackets_inside_ticket_text_do_not_count_as_depth(served: Served) -> None:
    text = "[[[{{{ " * 200 + 'printer says "}}]]" \\ again'
    answer = served.http.post("/classify", json={"text": text})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        pytest.param({"text": "\u200b\u200b\u200b"}, "text", id="zero-width"),
        pytest.param({"text": "\ufeff \u2060\u200d\t"}, "text", id="bom-joiners-whitespace"),
        pytest.param({"text": "\u3164\u2800"}, "text", id="blank-fillers"),
    ],
)
def test_invisible_only_text_is_a_422_naming_the_field(
    served: Served, payload: dict[str, str], field: str
) -> None:
    answer = served.http.post("/classify", json=payload)
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(f"{field}:")
    assert "invisible" in answer.json()["detail"]


def test_an_invisible_item_in_a_batch_is_a_422_naming_its_index(served: Served) -> None:
    answer = served.http.post("/classify/batch", json={"texts": ["vpn down", "\u200c\u200b"]})
    assert answer.status_code == 422
    assert "texts[1]" in answer.json()["detail"]


def _signed(body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": "delivery-7",
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": webhook_signature(
            secret=WEBHOOK_SECRET, delivery_id="delivery-7", timestamp=timestamp, body=body
        ),
    }


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 5000 + b"]" * 5000, id="nested-5000"),
        pytest.param(b'{"entity": ' + b"[" * 200 + b"]" * 200 + b"}", id="nested-field"),
        pytest.param(b"[]", id="array"),
        pytest.param(b'"model_version_alias"', id="string"),
        pytest.param(b"42", id="number"),
        pytest.param(b"not json", id="not-json"),
        pytest.param(b'{"entity": "model_version_alias", "action": ["created"]}', id="action-list"),
        pytest.param(
            b'{"entity": "model_version_alias", "action": "created", "data": [1]}', id="data-list"
        ),
        pytest.param(
            b'{"entity": "model_version_alias", "action": "created", "data": "x"}',
            id="data-string",
        ),
    ],
)
def test_a_signed_but_malformed_webhook_is_a_4xx_never_a_500(served: Served, body: bytes) -> None:
    answer = served.http.post("/webhooks/mlflow", content=body, headers=_signed(body))
    assert answer.status_code in (400, 422), answer.text
    assert answer.json()["detail"]


def test_the_export_is_paged_with_a_cursor(served: Served) -> None:
    since = served.http.get("/model/version").json()["loaded_at"]
    texts = [f"ticket {i}: the printer on floor {i} is jammed" for i in range(25)]
    stored = served.http.post("/classify/batch", json={"texts": texts}).json()["results"]
    ids = [r["ticket_id"] for r in stored]
    seen: list[str] = []
    pages = 0
    after: str | None = None
    while True:
        params: dict[str, str | int] = {"since": since, "limit": 10}
        if after:
            params["after"] = after
        page = served.http.get("/tickets", params=params)
        assert page.status_code == 200
        pages += 1
        seen += [t["id"] for t in page.json()]
        after = page.headers.get("X-Next-Cursor")
        if after is None:
            break
    batch_ids = [i for i in seen if i in set(ids)]
    assert sorted(batch_ids) == sorted(ids)
    assert len(seen) == len(set(seen))  # no ticket twice across pages
    assert pages >= 3
    as_csv = served.http.get("/tickets", params={"since": since, "limit": 10, "format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.headers["X-Next-Cursor"]
    over = served.http.get("/tickets", params={"limit": 1001})
    assert over.status_code == 422
    unknown = served.http.get("/tickets", params={"after": "0123abcd"})
    assert unknown.status_code == 422
    assert "0123abcd" in unknown.json()["detail"]


def _maximal_batch(seed: int) -> list[str]:
    words = [
        "printer",
        "laptop",
        "vpn",
        "password",
        "reset",
        "access",
        "drive",
        "payroll",
        "invoice",
        "monitor",
        "keyboard",
        "outlook",
        "mailbox",
        "teams",
        "license",
        "install",
        "server",
        "network",
        "wifi",
        "badge",
        "purchase",
        "order",
        "refund",
        "salary",
        "screen",
        "battery",
        "update",
        "error",
        "crash",
        "slow",
        "login",
        "account",
        "locked",
    ]
    rng = random.Random(seed)
    texts = []
    for _ in range(256):
        text = " ".join(rng.choice(words) for _ in range(4_000))
        texts.append(text[:20_000])
    return texts


def test_ready_answers_quickly_while_a_maximal_batch_and_an_export_run(served: Served) -> None:
    http = served.http
    # Enough long tickets that one export page is a heavy (~10 MB) response.
    for seed in range(2):
        assert http.post("/classify/batch", json={"texts": _maximal_batch(seed)}).status_code == 200
    stop = threading.Event()
    outcomes: list[tuple[str, int, float]] = []

    def batches() -> None:
        with httpx.Client(base_url=served.process.url, timeout=120) as client:
            for seed in range(10, 13):
                started = time.perf_counter()
                answer = client.post("/classify/batch", json={"texts": _maximal_batch(seed)})
                outcomes.append(("batch", answer.status_code, time.perf_counter() - started))
        stop.set()

    def exports() -> None:
        with httpx.Client(base_url=served.process.url, timeout=120) as client:
            while not stop.is_set():
                started = time.perf_counter()
                answer = client.get("/tickets", params={"limit": 1000})
                outcomes.append(("export", answer.status_code, time.perf_counter() - started))

    workers = [threading.Thread(target=batches), threading.Thread(target=exports)]
    latencies: list[float] = []
    with httpx.Client(base_url=served.process.url, timeout=30) as probe:
        probe.get("/ready")  # connection open before the load starts
        for worker in workers:
            worker.start()
        while not stop.is_set():
            started = time.perf_counter()
            assert probe.get("/ready").status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.02)
    for worker in workers:
        worker.join(timeout=120)
    assert [status for kind, status, _ in outcomes if kind == "batch"] == [200, 200, 200]
    exported = [seconds for kind, status, seconds in outcomes if kind == "export" and status == 200]
    assert exported, outcomes
    slowest = max(latencies)
    print(
        f"/ready under load: {len(latencies)} probes, median "
        f"{statistics.median(latencies) * 1000:.1f} ms, p90 "
        f"{statistics.quantiles(latencies, n=10)[-1] * 1000:.1f} ms, max {slowest * 1000:.1f} ms; "
        f"batches {[round(s, 2) for k, _, s in outcomes if k == 'batch']} s, "
        f"{len(exported)} exports"
    )
    # The target is 100 ms: nine probes in ten meet it. The bound on the slowest is generous
    # for a 2-core machine shared with other work (one probe may wait out a scheduler slice),
    # and still far below the 2-3 s stall of predicting on the event loop.
    typical = statistics.quantiles(latencies, n=10)[-1]
    assert typical < 0.1, f"/ready p90 {typical * 1000:.0f} ms while heavy requests ran"
    assert slowest < 0.5, f"/ready took {slowest * 1000:.0f} ms while heavy requests ran"
    assert len(latencies) >= 20


def test_a_signed_deep_webhook_without_a_json_content_type_is_a_422(served: Served) -> None:
    body = b"[" * 5000 + b"]" * 5000  # not depth-scanned: parsed by the route itself
    headers = {**_signed(body), "Content-Type": "text/plain"}
    answer = served.http.post("/webhooks/mlflow", content=body, headers=headers)
    assert answer.status_code == 422
    assert "nested too deep" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("document", "too_deep"),
    [
        pytest.param(b"[" * 32 + b"]" * 32, False, id="at-the-cap"),
        pytest.param(b"[" * 33 + b"]" * 33, True, id="one-over"),
        pytest.param(json.dumps({"t": "[" * 100 + '\\"{{'}).encode(), False, id="in-string"),
        pytest.param(b'{"a": "x\\\\"}', False, id="escaped-backslash-then-quote"),
        pytest.param(b'{"a": "x\\"' + b"[" * 40 + b'"}', False, id="escaped-quote"),
        pytest.param(b'["\\\\", ' + b"[" * 33 + b"]" * 33 + b"]", True, id="after-escapes"),
    ],
)
def test_the_depth_scanner_agrees_whatever_the_chunking(document: bytes, too_deep: bool) -> None:
    for size in (1, 2, 3, 5, 64, len(document)):
        scanner = JsonDepthScanner(32)
        found = any(scanner.feed(document[i : i + size]) for i in range(0, len(document), size))
        assert found is too_deep, (size, document[:60])
