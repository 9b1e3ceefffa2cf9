"""CloudWatch publishing, checked against moto's server over HTTP."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest
from mlflow import MlflowClient

from boltit.core.db import Database
from boltit.core.settings import Settings
from boltit.monitoring import cloudwatch
from boltit.monitoring.status import collect_status
from tests.monitoring.conftest import TrainedState, force_promote
from tests.monitoring.tickets import add_tickets


@pytest.mark.s3
def test_metrics_arrive_in_cloudwatch_under_the_runbook_names(
    trained: tuple[Settings, MlflowClient, Database, TrainedState], moto_endpoint: str
) -> None:
    settings, mlflow_client, database, _ = trained
    # classification_accuracy_7d is Production's own figure (test_per_version_metrics.py).
    force_promote(settings, mlflow_client, database, "1")
    add_tickets(database, version="1", n=200, accuracy=0.8, confidence=0.85, seed=4)
    off = collect_status(settings=settings, database=database, client=mlflow_client)
    assert cloudwatch.publish(settings=settings, status=off) == []  # nothing unless enabled
    settings = settings.model_copy(
        update={"cloudwatch_enabled": True, "cloudwatch_endpoint_url": moto_endpoint}
    )
    status = collect_status(settings=settings, database=database, client=mlflow_client)
    sent = cloudwatch.publish(settings=settings, status=status)
    assert "classification_accuracy_7d" in sent and "latency_p95_seconds" in sent

    client = boto3.client("cloudwatch", endpoint_url=moto_endpoint, region_name="us-east-1")
    listed = client.list_metrics(Namespace="BoltIT/Pilot")["Metrics"]
    assert {"classification_accuracy_7d", "mean_confidence", "auto_apply_rate"} <= {
        m["MetricName"] for m in listed
    }
    answer = client.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "accuracy",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "BoltIT/Pilot",
                        "MetricName": "classification_accuracy_7d",
                    },
                    "Period": 60,
                    "Stat": "Average",
                },
            }
        ],
        StartTime=status.computed_at - timedelta(minutes=5),
        EndTime=status.computed_at + timedelta(minutes=5),
    )
    values = answer["MetricDataResults"][0]["Values"]
    assert values == [pytest.approx(status.quality.accuracy)]
    assert 0.7 < values[0] < 0.9
    # The runbook's own read-back (get-metric-statistics) sees the same figure.
    assert cloudwatch.latest_value(
        client,
        namespace="BoltIT/Pilot",
        name="classification_accuracy_7d",
        start=status.computed_at - timedelta(minutes=5),
        end=status.computed_at + timedelta(minutes=5),
    ) == pytest.approx(status.quality.accuracy)
