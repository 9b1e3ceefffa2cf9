"""`boltit serve --workers 2`: one SQLite store and one set of metrics for both processes."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from boltit.core.db import Database
from boltit.core.schema import Ticket
from boltit.core.settings import Settings
from tests.serving.conftest import ServiceProcess, service_env

pytestmark = pytest.mark.e2e


@pytest.mark.slow  # over 20 s (a real server process)
def test_two_workers_store_every_ticket_and_sum_their_metrics(
    settings: Settings, production_v1: str, tmp_path: Path
) -> None:
    n = 400
    service = ServiceProcess(env=service_env(settings), cwd=tmp_path, workers=2).start()
    try:
        service.wait_ready()
        with httpx.Client(base_url=service.url, timeout=60) as http:
            with ThreadPoolExecutor(max_workers=16) as pool:
                answers = list(
                    pool.map(
                        lambda i: http.post("/classify", json={"text": f"vpn drops {i}"}),
                        range(n),
                    )
                )
            metrics = http.get("/metrics").text
        metrics_dirs = list(settings.state_dir.glob("metrics-*"))
        assert len(metrics_dirs) == 1
        workers_seen = {path.stem.rsplit("_", 1)[-1] for path in metrics_dirs[0].glob("*.db")}
    finally:
        service.stop()

    assert [a.status_code for a in answers] == [200] * n, service.logs()
    database = Database(settings.database_url, migrate_schema=False)
    try:
        with database.session() as session:
            assert session.scalar(select(func.count()).select_from(Ticket)) == n
    finally:
        database.dispose()
    # Whichever worker answers the scrape counts every worker's requests.
    served = re.search(
        r'^boltit_requests_total\{endpoint="/classify",status="200"\} (\S+)$', metrics, re.M
    )
    assert served is not None, metrics
    assert float(served.group(1)) == n
    assert workers_seen  # per-process value files, summed at scrape time
    assert not list(settings.state_dir.glob("metrics-*"))  # removed on shutdown
