"""The ticket store on PostgreSQL: exactly N rows after N concurrent calls; admin writes closed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from boltit.core.db import Database
from boltit.core.schema import Ticket
from boltit.core.settings import Settings
from tests.serving.conftest import ADMIN_TOKEN, ServiceThread

pytestmark = pytest.mark.postgres


def test_n_concurrent_calls_store_n_rows_on_postgres(
    settings: Settings, production_v1: str, postgres_url: str
) -> None:
    on_postgres = settings.model_copy(
        update={"database_url_override": postgres_url, "poll_interval_seconds": 0.2}
    )
    n = 300
    with (
        ServiceThread(on_postgres) as running,
        httpx.Client(base_url=running.url, timeout=60) as http,
    ):

        def call(i: int) -> httpx.Response:
            return http.post("/classify", json={"text": f"ticket {i}: the printer \x00 is down"})

        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(call, range(n)))
        batch = http.post("/classify/batch", json={"texts": ["disk full", "new mouse please"]})
        assert batch.status_code == 200

        # No admin token configured: admin writes are refused, never open.
        flag = {"auto_apply_enabled": False}
        assert http.put("/admin/feature-flags", json=flag).status_code == 403
        with_token = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        refused = http.put("/admin/feature-flags", json=flag, headers=with_token)
        assert refused.status_code == 403
        assert "BOLTIT_ADMIN_TOKEN" in refused.json()["detail"]
        assert http.post("/admin/reload", headers=with_token).status_code == 403

    assert [a.status_code for a in answers] == [200] * n
    database = Database(postgres_url)
    try:
        with database.session() as session:
            assert session.scalar(select(func.count()).select_from(Ticket)) == n + 2
            ids = set(session.scalars(select(Ticket.id)))
    finally:
        database.dispose()
    assert ids >= {a.json()["ticket_id"] for a in answers}
