"""Alert rules on ``/metrics``: a Prometheus collector a service registers.

Serving adds it to its registry with::

    from boltit.monitoring.alert_collector import AlertCollector
    registry.register(AlertCollector(settings=settings, database=database,
                                     production=lambda: current_version_or_none()))

It reads only the ticket store (no registry calls on the scrape path) and caches the
verdicts for ``cache_seconds`` so frequent scrapes cost one query.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from boltit.core.db import Database
from boltit.core.settings import Settings
from boltit.monitoring.rules import AlertConfig, Evaluation, load_alert_config
from boltit.monitoring.status import store_evaluations

log = logging.getLogger(__name__)


def alert_gauges(evaluations: Sequence[Evaluation]) -> list[GaugeMetricFamily]:
    """Three gauge families: each rule's value, its level (0 ok, 1 warning, 2 critical), and
    its thresholds."""
    value = GaugeMetricFamily(
        "boltit_alert_value",
        "Current value of each alert rule's figure (absent while it has no data)",
        labels=["rule", "category", "kind"],
    )
    level = GaugeMetricFamily(
        "boltit_alert_level",
        "Alert level per rule: 0 ok or no data, 1 warning, 2 critical",
        labels=["rule", "category", "kind", "state"],
    )
    threshold = GaugeMetricFamily(
        "boltit_alert_threshold",
        "Warning and critical thresholds of each rule",
        labels=["rule", "level", "direction"],
    )
    seen: set[str] = set()
    for evaluation in evaluations:
        labels = [evaluation.rule, evaluation.subject or "", evaluation.kind.value]
        if evaluation.value is not None:
            value.add_metric(labels, evaluation.value)
        level.add_metric([*labels, evaluation.level.value], evaluation.level.gauge)
        if evaluation.rule not in seen:
            seen.add(evaluation.rule)
            for name, limit in (("warning", evaluation.warning), ("critical", evaluation.critical)):
                threshold.add_metric([evaluation.rule, name, evaluation.direction], limit)
    return [value, level, threshold]


class AlertCollector(Collector):
    """Collects :func:`alert_gauges` from the store at scrape time (cached briefly)."""

    def __init__(
        self,
        *,
        settings: Settings,
        database: Database,
        production: Callable[[], str | None],
        config: AlertConfig | None = None,
        cache_seconds: float = 5.0,
    ) -> None:
        self._settings = settings
        self._database = database
        self._production = production
        self._config = config or load_alert_config(settings)
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Evaluation]] | None = None

    def evaluations(self) -> list[Evaluation]:
        """Current verdicts, recomputed at most every ``cache_seconds``."""
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self._cache_seconds:
                verdicts = store_evaluations(
                    settings=self._settings,
                    database=self._database,
                    config=self._config,
                    production=self._production(),
                )
                self._cached = (now, verdicts)
            return self._cached[1]

    def describe(self) -> Iterable[Metric]:
        # Without this, registering on an auto-describing registry would query the store.
        return []

    def collect(self) -> Iterable[Metric]:
        failed = GaugeMetricFamily(
            "boltit_alert_evaluation_failed",
            "1 when the alert rules could not be computed from the ticket store",
        )
        try:
            gauges = alert_gauges(self.evaluations())
        except Exception:  # a store outage must not break the rest of /metrics
            log.exception("alert rules could not be evaluated")
            failed.add_metric([], 1)
            yield failed
            return
        failed.add_metric([], 0)
        yield failed
        yield from gauges
