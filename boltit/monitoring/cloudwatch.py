"""Publish the monitoring figures to CloudWatch (namespace ``BoltIT/Pilot`` by default).

Metric names follow the runbook (``classification_accuracy_7d``) and carry no dimensions, so
the runbook's ``aws cloudwatch get-metric-statistics`` commands find them as written.
``classification_accuracy_7d`` is the Production version's own accuracy (see
:func:`production_accuracy`); the service figures (latency, errors) cover every ticket.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from boltit.core.errors import BoltitError
from boltit.core.settings import Settings
from boltit.monitoring.status import MonitorStatus

DEFAULT_REGION = "us-east-1"


def metric_data(status: MonitorStatus) -> list[dict[str, Any]]:
    """The datums of one monitoring pass; figures without data are left out, not sent as 0."""
    overall, quality = status.overall, status.quality
    figures: list[tuple[str, float | None, str]] = [
        ("classification_accuracy_7d", production_accuracy(status), "None"),
        ("production_accuracy_7d", quality.accuracy, "None"),
        ("mean_confidence", overall.mean_confidence, "None"),
        ("latency_p95_seconds", overall.latency_p95_seconds, "Seconds"),
        ("prediction_error_rate", overall.error_rate, "None"),
        ("auto_apply_rate", overall.auto_apply_rate, "None"),
        ("tickets_7d", float(overall.tickets), "Count"),
        ("labelled_tickets_7d", float(overall.labelled), "Count"),
        ("alert_level", float(status.worst.gauge), "None"),
    ]
    if status.sequential is not None:
        figures.append(("regression_statistic", status.sequential.statistic, "None"))
    return [
        {
            "MetricName": name,
            "Value": float(value),
            "Unit": unit,
            "Timestamp": status.computed_at,
        }
        for name, value, unit in figures
        if value is not None
    ]


def production_accuracy(status: MonitorStatus) -> float | None:
    """Accuracy of the tickets Production's version served, once the accuracy rule has enough
    labelled ones; ``None`` (no datum) before.

    Never the accuracy of every version in the window: after a promotion that kept reporting
    the old version's figure while the monitor said ``no_data``, so an alarm on it would
    keep firing (or keep quiet) about a version that no longer serves.
    """
    quality = status.quality
    minimum = max(
        (rule.min_samples for rule in status.config.rules if rule.metric == "accuracy_7d"),
        default=1,
    )
    if status.production is None or quality.labelled < minimum:
        return None
    return quality.accuracy


def cloudwatch_client(settings: Settings) -> Any:
    """A boto3 CloudWatch client for the configured endpoint (moto or AWS)."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    return boto3.client(
        "cloudwatch", region_name=region, endpoint_url=settings.cloudwatch_endpoint_url
    )


def publish(*, settings: Settings, status: MonitorStatus, client: Any | None = None) -> list[str]:
    """Send the figures with ``put_metric_data``; returns the metric names sent.

    Does nothing (and returns an empty list) unless ``settings.cloudwatch_enabled``.

    Raises:
        BoltitError: CloudWatch refused the data or cannot be reached.
    """
    if not settings.cloudwatch_enabled:
        return []
    data = metric_data(status)
    if not data:
        return []
    client = client or cloudwatch_client(settings)
    try:
        # put_metric_data takes at most 1000 datums per call; one pass sends about ten.
        client.put_metric_data(Namespace=settings.cloudwatch_namespace, MetricData=data)
    except (BotoCoreError, ClientError) as exc:
        raise BoltitError(
            f"cannot publish to CloudWatch namespace {settings.cloudwatch_namespace}: {exc}"
        ) from exc
    return [datum["MetricName"] for datum in data]


def latest_value(
    client: Any, *, namespace: str, name: str, start: datetime, end: datetime, period: int = 60
) -> float | None:
    """The average of the newest datapoint of one metric (what the runbook reads back)."""
    answer = client.get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        StartTime=start,
        EndTime=end,
        Period=period,
        Statistics=["Average"],
    )
    points = sorted(answer.get("Datapoints", []), key=lambda point: point["Timestamp"])
    return float(points[-1]["Average"]) if points else None
