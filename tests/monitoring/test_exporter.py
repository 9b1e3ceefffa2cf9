"""Alert rules on /metrics through the Prometheus collector serving registers."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from boltit.core.db import Database
from boltit.core.settings import Settings
from boltit.monitoring.alert_collector import AlertCollector
from tests.monitoring.tickets import add_tickets


def _samples(registry: CollectorRegistry) -> dict[tuple[str, str, str], float]:
    found = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            found[
                (sample.name, sample.labels.get("rule", ""), sample.labels.get("category", ""))
            ] = sample.value
    return found


def _thresholds(registry: CollectorRegistry, rule: str) -> dict[str, float]:
    """A rule's exposed thresholds by level (``_samples`` keeps only one of the two)."""
    return {
        sample.labels["level"]: sample.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
        if sample.name == "boltit_alert_threshold" and sample.labels["rule"] == rule
    }


def test_every_rule_is_exposed_with_its_level_and_thresholds(
    settings: Settings, database: Database
) -> None:
    production = {"version": "1"}
    registry = CollectorRegistry()
    collector = AlertCollector(
        settings=settings, database=database, production=lambda: production["version"],
        cache_seconds=0,
    )  # fmt: skip
    registry.register(collector)
    start = add_tickets(database, version="1", n=200, accuracy=0.97, confidence=0.92, seed=1)
    healthy = _samples(registry)
    assert healthy[("boltit_alert_level", "accuracy_floor", "")] == 0
    assert healthy[("boltit_alert_value", "accuracy_floor", "")] > 0.9
    assert _thresholds(registry, "accuracy_floor") == {"warning": 0.92, "critical": 0.90}
    assert healthy[("boltit_alert_evaluation_failed", "", "")] == 0
    assert ("boltit_alert_level", "latency_p95_seconds", "") in healthy
    # Relative rules need the version's evaluation figures, which the scrape path never
    # reads (no registry call): their value is exposed, their level stays 0 (no data).
    assert healthy[("boltit_alert_value", "mean_confidence", "")] > 0.85
    assert healthy[("boltit_alert_level", "mean_confidence", "")] == 0

    add_tickets(database, version="2", n=200, accuracy=0.3, confidence=0.5, start=start, seed=2)
    production["version"] = "2"
    broken = _samples(registry)
    # The runbook's floor is reported as breached; the monitor decides about an incident.
    assert broken[("boltit_alert_level", "accuracy_floor", "")] == 2
    assert broken[("boltit_alert_value", "mean_confidence", "")] < 0.6
    assert any(
        name == "boltit_alert_value" and rule == "category_accuracy" and category
        for (name, rule, category) in broken
    )


def test_a_store_outage_is_reported_not_raised(settings: Settings, database: Database) -> None:
    registry = CollectorRegistry()
    registry.register(AlertCollector(settings=settings, database=database, production=lambda: "1"))
    database.dispose()
    with database.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE tickets")
    assert _samples(registry)[("boltit_alert_evaluation_failed", "", "")] == 1
