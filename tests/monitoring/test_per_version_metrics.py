"""``classification_accuracy_7d`` belongs to the version that serves: after a promotion it has
no value (on ``/metrics`` and in CloudWatch) until the new version's tickets get labels,
instead of keeping the previous version's figure while the monitor says ``no_data``."""

from __future__ import annotations

from datetime import datetime

import pytest
from mlflow import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from boltit.core.db import Database
from boltit.core.settings import Settings
from boltit.core.vocabulary import PRODUCTION
from boltit.monitoring import cloudwatch
from boltit.monitoring.rules import Level
from boltit.monitoring.status import collect_status
from boltit.serving.follower import LoadedModel
from boltit.serving.prometheus import ServiceMetrics
from tests.monitoring.conftest import TrainedState, force_promote
from tests.monitoring.tickets import add_tickets

Trained = tuple[Settings, MlflowClient, Database, TrainedState]


def _sent(settings: Settings, client: MlflowClient, database: Database) -> dict[str, float]:
    status = collect_status(settings=settings, database=database, client=client)
    return {d["MetricName"]: d["Value"] for d in cloudwatch.metric_data(status)}


def test_cloudwatch_accuracy_is_the_serving_version_s_own(trained: Trained) -> None:
    settings, client, database, _ = trained
    force_promote(settings, client, database, "1")
    add_tickets(database, version="1", n=300, accuracy=0.95, seed=11)
    before = _sent(settings, client, database)
    assert before["classification_accuracy_7d"] == pytest.approx(0.95, abs=0.03)

    force_promote(settings, client, database, "3")
    status = collect_status(settings=settings, database=database, client=client)
    sent = {d["MetricName"] for d in cloudwatch.metric_data(status)}

    # v1's 300 labelled tickets are still in the window; v3 has none yet.
    assert status.overall.accuracy == pytest.approx(0.95, abs=0.03)
    floor = next(e for e in status.evaluations if e.rule == "accuracy_floor")
    assert floor.level is Level.no_data
    assert "classification_accuracy_7d" not in sent
    assert "tickets_7d" in sent  # service figures still cover every ticket

    # Fewer labelled tickets than the accuracy rule needs: still no datum, as the monitor says.
    add_tickets(database, version="3", n=20, accuracy=0.5, seed=12)
    assert "classification_accuracy_7d" not in _sent(settings, client, database)
    add_tickets(database, version="3", n=80, accuracy=0.8, seed=13)
    status = collect_status(settings=settings, database=database, client=client)
    after = {d["MetricName"]: d["Value"] for d in cloudwatch.metric_data(status)}
    assert after["classification_accuracy_7d"] == pytest.approx(status.quality.accuracy)
    assert after["classification_accuracy_7d"] < 0.85 < status.overall.accuracy  # type: ignore[operator]


def _served(version: str) -> LoadedModel:
    return LoadedModel(
        name="ticket-classifier",
        version=version,
        alias=PRODUCTION,
        run_id=None,
        loaded_at=datetime(2026, 12, 1),
        predictor=None,  # type: ignore[arg-type]  # /metrics reads only the version
    )


def _scrape(metrics: ServiceMetrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def test_metrics_endpoint_accuracy_resets_when_production_changes(database: Database) -> None:
    serving = {"version": "1"}
    metrics = ServiceMetrics(database=database, models=lambda: [_served(serving["version"])])
    add_tickets(database, version="1", n=200, accuracy=0.9, seed=21)
    first = _scrape(metrics)
    assert first["classification_accuracy_7d"][0][1] == pytest.approx(0.9, abs=0.05)

    serving["version"] = "2"  # the replica swapped to a new Production version
    swapped = _scrape(metrics)

    assert "classification_accuracy_7d" not in swapped
    by_version = {
        labels["model_version"]
        for labels, _ in swapped["boltit_classification_accuracy_7d_by_version"]
    }
    assert by_version == {"1"}  # the old version's figure stays, under its own label

    add_tickets(database, version="2", n=50, accuracy=0.4, seed=22)
    labelled = _scrape(metrics)
    assert labelled["classification_accuracy_7d"][0][1] == pytest.approx(0.4, abs=0.15)
