"""A ``challenger`` alias: scored in shadow (stored, never returned) and sent a sticky canary."""

from __future__ import annotations

from pathlib import Path

import httpx
from mlflow import MlflowClient
from sqlalchemy import select

from boltit.core.db import Database
from boltit.core.schema import ShadowPrediction, Ticket
from boltit.core.settings import Settings
from tests.serving.conftest import MODEL, ServiceThread, iter_lines, register_version, wait_for


def test_shadow_and_sticky_canary_with_metrics_per_version(
    settings: Settings,
    production_v1: str,
    mlflow_client: MlflowClient,
    model_dir: Path,
    tmp_path: Path,
    database: Database,
) -> None:
    challenger = register_version(mlflow_client, model_dir, tmp_path)
    mlflow_client.set_registered_model_alias(MODEL, "challenger", challenger)
    both = settings.model_copy(
        update={"shadow_enabled": True, "canary_percent": 30.0, "poll_interval_seconds": 0.2}
    )
    texts = [f"ticket {i}: my docking station is not detected" for i in range(60)]
    with ServiceThread(both) as running, httpx.Client(base_url=running.url, timeout=30) as http:
        health = http.get("/health").json()
        assert health["challenger"]["version"] == challenger
        first = [http.post("/classify", json={"text": t}).json() for t in texts]
        again = [http.post("/classify", json={"text": t}).json() for t in texts]
        assert [a["model_version"] for a in first] == [a["model_version"] for a in again]
        canary = [a for a in first if a["model_version"] == challenger]
        assert 0 < len(canary) < len(texts)
        production_served = [a for a in first + again if a["model_version"] == production_v1]

        def shadowed() -> bool:
            with database.session() as session:
                return len(list(session.scalars(select(ShadowPrediction)))) == len(
                    production_served
                )

        wait_for(shadowed, timeout=10)
        metrics = list(iter_lines(http.get("/metrics").text))
    with database.session() as session:
        shadows = list(session.scalars(select(ShadowPrediction)))
        served_by = {t.id: t.served_by for t in session.scalars(select(Ticket))}
    assert {s.model_version for s in shadows} == {challenger}
    assert {s.ticket_id for s in shadows} == {a["ticket_id"] for a in production_served}
    assert {served_by[a["ticket_id"]] for a in canary} == {"canary"}
    for version, route in ((production_v1, "production"), (challenger, "canary")):
        assert any(
            line.startswith("boltit_predictions_total{")
            and f'model_version="{version}"' in line
            and f'served_by="{route}"' in line
            for line in metrics
        )
    assert any('alias="challenger"' in line for line in metrics)
