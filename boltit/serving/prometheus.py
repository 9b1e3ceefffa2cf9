"""Prometheus metrics: live counters per process, quality figures from the store at scrape time.

Counters and histograms are per process unless ``PROMETHEUS_MULTIPROC_DIR`` is set
(``boltit serve --workers N`` sets it), in which case every worker's values are summed.
Accuracy and the auto-apply rate are computed from the ticket store when scraped, so
they are the same whichever replica answers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select

from boltit.core.db import Database
from boltit.core.evaluation import LiveAccuracy, live_accuracy
from boltit.core.schema import Ticket, utcnow
from boltit.core.vocabulary import PRODUCTION
from boltit.serving.follower import LoadedModel

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)


class ServiceMetrics:
    """Every metric the service exposes on ``/metrics``."""

    def __init__(self, *, database: Database, models: Callable[[], Iterable[LoadedModel]]) -> None:
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        self.registry = CollectorRegistry(auto_describe=True)
        # In multiprocess mode values live in files and are collected at scrape time.
        target = None if self.multiprocess_dir else self.registry
        self.requests = Counter(
            "boltit_requests", "HTTP requests", ["endpoint", "status"], registry=target
        )
        self.errors = Counter(
            "boltit_errors", "Requests answered 4xx or 5xx", ["endpoint", "kind"], registry=target
        )
        self.latency = Histogram(
            "boltit_request_latency_seconds",
            "Time to answer a request, persistence included",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=target,
        )
        self.confidence = Histogram(
            "boltit_prediction_confidence",
            "Confidence of served predictions",
            ["model_version"],
            buckets=CONFIDENCE_BUCKETS,
            registry=target,
        )
        self.predictions = Counter(
            "boltit_predictions",
            "Served predictions",
            ["category", "model_version", "served_by"],
            registry=target,
        )
        self.auto_applied = Counter(
            "boltit_auto_applied",
            "Predictions auto-applied (vs. sent to triage)",
            ["model_version", "decision"],
            registry=target,
        )
        self.prediction_errors = Counter(
            "boltit_prediction_errors",
            "Classify requests that got no prediction (model_error, no_model, "
            "store_unavailable, unexpected)",
            ["kind"],
            registry=target,
        )
        # labels() takes a lock and builds a key on every call; the hot path looks children
        # up once per label set instead.
        self._request_children: dict[tuple[str, int], tuple[Any, Any, Any]] = {}
        self._prediction_children: dict[tuple[str, str, str, bool], tuple[Any, Any, Any]] = {}
        self._store = StoreCollector(
            database,
            production=lambda: next((m.version for m in models() if m.alias == PRODUCTION), None),
        )
        self._models = ModelInfoCollector(models)
        self.registry.register(self._store)
        self.registry.register(self._models)
        self._extra: list[Collector] = []

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = (endpoint, status)
        children = self._request_children.get(key)
        if children is None:
            kind = "client" if status < 500 else "server"
            children = (
                self.requests.labels(endpoint, str(status)),
                self.latency.labels(endpoint),
                self.errors.labels(endpoint, kind) if status >= 400 else None,
            )
            self._request_children[key] = children
        requests, latency, errors = children
        requests.inc()
        latency.observe(seconds)
        if errors is not None:
            errors.inc()

    def observe_prediction(
        self, *, category: str, version: str, served_by: str, confidence: float, applied: bool
    ) -> None:
        """Count one served prediction, its confidence and its auto-apply decision."""
        key = (category, version, served_by, applied)
        children = self._prediction_children.get(key)
        if children is None:
            children = (
                self.predictions.labels(category, version, served_by),
                self.confidence.labels(version),
                self.auto_applied.labels(version, "auto_applied" if applied else "triage"),
            )
            self._prediction_children[key] = children
        predictions, confidences, decisions = children
        predictions.inc()
        confidences.observe(confidence)
        decisions.inc()

    def observe_prediction_error(self, kind: str) -> None:
        """Count one classify request answered without a prediction."""
        self.prediction_errors.labels(kind).inc()

    def add_collector(self, collector: Collector) -> None:
        """Expose one more store-backed collector (e.g. the monitor's alert rules)."""
        self.registry.register(collector)
        self._extra.append(collector)

    def render(self) -> bytes:
        """The exposition text for one scrape."""
        if not self.multiprocess_dir:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        registry.register(self._store)
        registry.register(self._models)
        for collector in self._extra:
            registry.register(collector)
        return generate_latest(registry)


class ModelInfoCollector(Collector):
    """``boltit_model_version_info``: which version each alias serves in this replica."""

    def __init__(self, models: Callable[[], Iterable[LoadedModel]]) -> None:
        self._models = models

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily(
            "boltit_model_version_info",
            "Model version loaded per alias (value 1)",
            labels=["name", "version", "alias", "run_id"],
        )
        for model in self._models():
            info.add_metric([model.name, model.version, model.alias, model.run_id or ""], 1)
        yield info


class StoreCollector(Collector):
    """Quality figures computed from the ticket store at scrape time.

    ``classification_accuracy_7d`` is the accuracy of the version this replica serves as
    Production: after a promotion it has no value until that version's tickets get labels,
    rather than keep the previous version's figure.
    """

    def __init__(self, database: Database, *, production: Callable[[], str | None]) -> None:
        self._database = database
        self._production = production

    def collect(self) -> Iterable[Metric]:
        accuracy = GaugeMetricFamily(
            "classification_accuracy_7d",
            "Share of the Production version's tickets with client feedback in the last 7 "
            "days whose category was right",
        )
        by_version = GaugeMetricFamily(
            "boltit_classification_accuracy_7d_by_version",
            "7-day accuracy against feedback, per model version and route",
            labels=["model_version", "served_by"],
        )
        feedback = GaugeMetricFamily(
            "boltit_feedback_7d", "Tickets with agent feedback in the last 7 days"
        )
        rate = GaugeMetricFamily(
            "boltit_auto_apply_rate_1h", "Share of tickets auto-applied in the last hour"
        )
        try:
            week, hour = self._query()
        except Exception as exc:  # a scrape must not fail because the store is busy
            log.warning("store metrics unavailable: %s", exc)
            return
        feedback.add_metric([], week.labelled)
        production = self._production()
        routes = [f for (version, _), f in week.by_route.items() if version == production]
        labelled = sum(f.labelled for f in routes)
        if labelled:
            accuracy.add_metric([], sum(f.correct for f in routes) / labelled)
        for (version, served_by), figures in week.by_route.items():
            if figures.accuracy is not None:
                by_version.add_metric([version, served_by], figures.accuracy)
        if hour[1]:
            rate.add_metric([], hour[0] / hour[1])
        yield from (accuracy, by_version, feedback, rate)

    def _query(self) -> tuple[LiveAccuracy, tuple[int, int]]:
        now = utcnow()
        with self._database.session() as session:
            # The same figure the monitor and ``recompute-accuracy`` report.
            week = live_accuracy(session, since=now - timedelta(days=7))
            applied = func.sum(case((Ticket.auto_applied.is_(True), 1), else_=0))
            hour_row = session.execute(
                select(applied, func.count()).where(Ticket.created_at >= now - timedelta(hours=1))
            ).one()
        return week, (int(hour_row[0] or 0), int(hour_row[1]))
