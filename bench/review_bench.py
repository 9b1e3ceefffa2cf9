"""Review-page benchmark: the /review queues over 100,000 stored tickets, in Chromium.

One throwaway state folder: a small model trained and made Production, 100,000 tickets
bulk-inserted into the SQLite ticket store (a tenth with an agent's label, a fifth scored by
a shadow challenger), ``boltit serve`` started as a process of its own, and Debian's
Chromium (headless, through Playwright) logged in as a reviewer. Each page (every queue's
first page, a filtered page and page 1,000 of the low-confidence queue) is loaded several
times; the figures are medians of the browser's first contentful paint (a
``PerformanceObserver`` on ``paint``) and of the server's time to the first byte of the HTML
(Navigation Timing ``responseStart - requestStart``, loopback). Beside them, two peers: the
browser's floor (a one-line HTML page from a loopback server, loaded the same way) and the
same deep page fetched with ``OFFSET`` instead of the keyset cursor, timed in SQL.

Results go to ``bench/results/review_bench-<time>.json``; a Markdown table and the README
line are printed. Run: ``.venv/bin/python -m bench.review_bench [--tickets 100000]``.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
VENV_BIN = Path(sys.executable).parent
TARGET_MS = 300.0

FIRST_PAINT_JS = """
() => new Promise((resolve) => {
  const seen = (entries) => {
    const paint = entries.find((e) => e.name === 'first-contentful-paint');
    if (paint) { resolve(paint.startTime); return true; }
    return false;
  };
  if (seen(performance.getEntriesByType('paint'))) return;
  new PerformanceObserver((list) => seen(list.getEntries()))
    .observe({ type: 'paint', buffered: true });
})
"""
SERVER_MS_JS = """
() => { const n = performance.getEntriesByType('navigation')[0];
        return n.responseStart - n.requestStart; }
"""


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--loads", type=int, default=7, help="loads per page (median)")
    parser.add_argument("--train-rows", type=int, default=2000)
    return parser.parse_args()


def fill_store(database_url: str, count: int) -> dict[str, float]:
    """``count`` predictions (a tenth labelled by agents, a fifth shadow-scored); timings."""
    from sqlalchemy import insert

    from boltit.core.db import Database
    from boltit.core.schema import ShadowPrediction, Ticket, TicketFeedback
    from boltit.training.generator import generate_tickets

    pool = generate_tickets(2000, seed=5)
    texts, categories = list(pool["text"]), sorted(set(pool["category"]))
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(days=30)
    step = timedelta(days=30) / count
    tickets: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []
    shadows: list[dict[str, Any]] = []
    for index in range(count):
        created = start + step * index
        ticket_id = f"{int(created.timestamp() * 1e9):016x}{rng.getrandbits(64):016x}"
        category = rng.choice(categories)
        confidence = round(rng.uniform(0.25, 0.99), 6)
        row = {
            "id": ticket_id,
            "text": texts[index % len(texts)],
            "category": category,
            "priority": None,
            "confidence": confidence,
            "model_name": "ticket-classifier",
            "model_version": "1",
            "served_by": "production",
            "latency_ms": 1.0,
            "auto_applied": confidence >= 0.75,
            "reason": "bench",
            "created_at": created,
        }
        if index % 10 == 0:
            label = category if rng.random() < 0.7 else rng.choice(categories)
            row.update(feedback_category=label, feedback_at=created, feedback_client="agent")
            labels.append(
                {
                    "ticket_id": ticket_id,
                    "category": label,
                    "priority": None,
                    "new_category": False,
                    "client": "agent",
                    "kind": "feedback",
                    "at": created,
                }
            )
        else:
            row.update(feedback_category=None, feedback_at=None, feedback_client=None)
        if index % 5 == 0:
            shadows.append(
                {
                    "ticket_id": ticket_id,
                    "model_version": "2",
                    "category": category if rng.random() < 0.8 else rng.choice(categories),
                    "priority": None,
                    "confidence": 0.5,
                    "latency_ms": 1.0,
                    "created_at": created,
                }
            )
        tickets.append(row)
    database = Database(database_url)
    began = time.perf_counter()
    with database.session() as session:
        for table, rows in (
            (Ticket, tickets),
            (TicketFeedback, labels),
            (ShadowPrediction, shadows),
        ):
            for first in range(0, len(rows), 10_000):
                session.execute(insert(table), rows[first : first + 10_000])
    inserted = time.perf_counter() - began
    database.dispose()
    return {"insert_s": inserted, "labelled": len(labels), "shadow_scored": len(shadows)}


def deep_cursor_and_peer(database_url: str, page_number: int) -> dict[str, Any]:
    """Page ``page_number``'s keyset cursor, and SQL time of keyset vs OFFSET for it."""
    from sqlalchemy import select

    from boltit.core.db import Database
    from boltit.core.schema import Ticket
    from boltit.serving.review import queries

    database = Database(database_url)
    size, threshold = queries.PAGE_SIZE, 0.75
    try:
        with database.session() as session:
            base = (
                select(Ticket)
                .where(Ticket.confidence < threshold, Ticket.reviewed_at.is_(None))
                .order_by(Ticket.confidence, Ticket.id)
            )
            before = session.scalars(base.offset(size * (page_number - 1) - 1).limit(1)).one()
            cursor = f"{before.confidence!r}~{before.id}"

            def timed(run: Any) -> float:
                times = []
                for _ in range(7):
                    session.expunge_all()
                    began = time.perf_counter()
                    run()
                    times.append((time.perf_counter() - began) * 1000)
                return statistics.median(times)

            keyset = timed(
                lambda: queries.queue_page(
                    session,
                    queries.Queue.low_confidence,
                    queries.Filters(),
                    threshold=threshold,
                    after=cursor,
                )
            )
            offset = timed(
                lambda: session.scalars(base.offset(size * (page_number - 1)).limit(size)).all()
            )
    finally:
        database.dispose()
    return {"cursor": cursor, "keyset_sql_ms": keyset, "offset_sql_ms": offset}


class _OneLinePage(http.server.BaseHTTPRequestHandler):
    """The browser's floor: a one-line HTML page from a loopback server."""

    BODY = b"<!doctype html><html><head><meta charset=utf-8><title>x</title></head><p>ticket</p>"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.BODY)))
        self.end_headers()
        self.wfile.write(self.BODY)

    def log_message(self, *_args: Any) -> None:
        return


def main() -> None:
    args = _arguments()
    from playwright.sync_api import sync_playwright

    from bench.serve_bench import prepare_registry, stop, wait_http
    from boltit.core.clients import ClientFile
    from boltit.core.ports import free_port
    from boltit.core.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="boltit-review-bench-") as folder:
        state = Path(folder) / "state"
        print(f"training a {args.train_rows:,}-ticket model ...", flush=True)
        env, _version = prepare_registry(state, args.train_rows)
        settings = load_settings(state_dir=state)
        print(f"inserting {args.tickets:,} tickets ...", flush=True)
        filled = fill_store(settings.database_url, args.tickets)
        print(f"  {filled['insert_s']:.1f} s", flush=True)
        deep_page = 1000
        deep = deep_cursor_and_peer(settings.database_url, deep_page)
        _, token = ClientFile(settings.clients_path).create("bench-sme", ["review"])
        env = {**env, "BOLTIT_INSECURE_OPEN": "false", "BOLTIT_DATABASE_URL": settings.database_url}
        port = free_port()
        log = Path(folder) / "serve.log"
        with log.open("wb") as stream:
            process = subprocess.Popen(
                [str(VENV_BIN / "boltit"), "serve", "--port", str(port)],
                env=env,
                stdout=stream,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        pages = {
            "low-confidence, page 1": "/review?queue=low-confidence",
            "agent disagreed, page 1": "/review?queue=disagreements",
            "challenger disagreed, page 1": "/review?queue=shadow",
            "random audit, page 1": "/review?queue=audit",
            "low-confidence, filtered": "/review?queue=low-confidence&category=Hardware"
            "&since=" + (datetime.now(UTC) - timedelta(days=10)).date().isoformat(),
            f"low-confidence, page {deep_page:,}": "/review?queue=low-confidence&after="
            + deep["cursor"],
        }
        figures: dict[str, dict[str, float]] = {}
        floor = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OneLinePage)
        threading.Thread(target=floor.serve_forever, daemon=True).start()
        pages["peer: a one-line static page"] = f"http://127.0.0.1:{floor.server_port}/"
        try:
            wait_http(f"{url}/ready", process, 180)
            with sync_playwright() as driver:
                browser = driver.chromium.launch(
                    executable_path="/usr/bin/chromium",
                    headless=True,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                )
                page = browser.new_page(viewport={"width": 1366, "height": 900})
                page.goto(f"{url}/review/login")
                page.fill("#token", token)
                page.click("button[type=submit]")
                page.wait_for_selector("#queue-count")
                for name, path in pages.items():
                    paints, servers = [], []
                    target = path if path.startswith("http") else url + path
                    page.goto(target)  # warm: templates, caches, the model's first page
                    page.wait_for_load_state("networkidle")
                    for _ in range(args.loads):
                        page.goto(target, wait_until="load")
                        paints.append(float(page.evaluate(FIRST_PAINT_JS)))
                        servers.append(float(page.evaluate(SERVER_MS_JS)))
                        # The page's own progress and panel requests finish before the next
                        # load: each load is measured alone, as a reviewer opens one page.
                        page.wait_for_load_state("networkidle")
                    count = page.locator("article.ticket").count()
                    figures[name] = {
                        "first_paint_ms": statistics.median(paints),
                        "server_ms": statistics.median(servers),
                        "tickets_on_page": count,
                    }
                    print(
                        f"  {name}: first paint {figures[name]['first_paint_ms']:.0f} ms, "
                        f"server {figures[name]['server_ms']:.0f} ms ({count} tickets)",
                        flush=True,
                    )
                browser.close()
        finally:
            stop(process)
            floor.shutdown()
    worst = max(f["first_paint_ms"] for n, f in figures.items() if not n.startswith("peer"))
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {os.cpu_count()} cores, {platform.python_version()}",
        "tickets": args.tickets,
        "loads_per_page": args.loads,
        "store": "SQLite",
        "fill": filled,
        "deep_page": {"page": deep_page, **{k: v for k, v in deep.items() if k != "cursor"}},
        "pages": figures,
        "target_ms": TARGET_MS,
        "worst_first_paint_ms": worst,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"review_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\n| page ({args.tickets:,} tickets, SQLite) | first paint | server |")
    print("|---|---:|---:|")
    for name, figure in figures.items():
        print(f"| {name} | {figure['first_paint_ms']:.0f} ms | {figure['server_ms']:.0f} ms |")
    print(
        f"\npage {deep_page:,} in SQL: keyset {deep['keyset_sql_ms']:.1f} ms, "
        f"OFFSET (peer) {deep['offset_sql_ms']:.1f} ms"
    )
    verdict = "under" if worst < TARGET_MS else "OVER"
    floor_ms = figures["peer: a one-line static page"]["first_paint_ms"]
    print(
        f"\nREADME: `/review` over {args.tickets:,} tickets: first paint at most {worst:.0f} ms "
        f"(median of {args.loads} loads per page, {len(figures) - 1} pages; {verdict} the "
        f"{TARGET_MS:.0f} ms target; a one-line page: "
        f"{floor_ms:.0f} ms); page {deep_page:,} by keyset "
        f"{deep['keyset_sql_ms']:.1f} ms vs OFFSET {deep['offset_sql_ms']:.1f} ms in SQL"
    )
    print(f"results: {out}")


if __name__ == "__main__":
    main()
