"""``boltit alarms sync`` against moto's CloudWatch over HTTP: created once, idempotent after,
updated when a threshold changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from boltit.core.settings import Settings
from boltit.monitoring.alarms import alarm_prefix, sync_alarms
from boltit.monitoring.rules import load_alert_config
from tests.console_script import point_cli_at, run_boltit

NAMESPACE = "BoltIT/Pilot"


def _cloudwatch(endpoint: str) -> Any:
    return boto3.client("cloudwatch", endpoint_url=endpoint, region_name="us-east-1")


def _alarms(endpoint: str, model: str) -> dict[str, dict[str, Any]]:
    answer = _cloudwatch(endpoint).describe_alarms(AlarmNamePrefix=alarm_prefix(model))
    return {alarm["AlarmName"]: alarm for alarm in answer["MetricAlarms"]}


def _sync(endpoint: str, settings: Settings, **kwargs: Any) -> dict[str, str]:
    changes = sync_alarms(
        cloudwatch=_cloudwatch(endpoint),
        config=kwargs.pop("config", None) or load_alert_config(settings),
        namespace=NAMESPACE,
        model_name=settings.model_name,
        references=kwargs.pop("references", {"mean_confidence": 0.9}),
        **kwargs,
    )
    return {change.name: change.change for change in changes}


@pytest.mark.s3
def test_alarms_follow_the_rules_and_a_second_sync_changes_nothing(
    settings: Settings, moto_endpoint: str
) -> None:
    # moto keeps one CloudWatch per process: each test owns its model's alarm prefix.
    settings = settings.model_copy(update={"model_name": "idempotent-model"})
    first = _sync(moto_endpoint, settings)

    alarms = _alarms(moto_endpoint, settings.model_name)
    prefix = alarm_prefix(settings.model_name)
    assert set(alarms) == {name for name, change in first.items() if change == "created"}
    floor = alarms[f"{prefix}accuracy_floor-critical"]
    assert floor["Namespace"] == NAMESPACE
    assert floor["MetricName"] == "classification_accuracy_7d"
    assert floor["ComparisonOperator"] == "LessThanThreshold"
    assert floor["Threshold"] == pytest.approx(0.90)
    assert floor["TreatMissingData"] == "notBreaching"
    latency = alarms[f"{prefix}latency_p95_seconds-critical"]
    assert latency["ComparisonOperator"] == "GreaterThanThreshold"
    assert latency["Threshold"] == pytest.approx(3.0)
    errors = alarms[f"{prefix}prediction_error_rate-critical"]
    assert errors["Threshold"] == pytest.approx(0.05)
    # Relative to Production's evaluation figure: 0.90 - 0.10.
    confidence = alarms[f"{prefix}mean_confidence-critical"]
    assert confidence["Threshold"] == pytest.approx(0.80)
    # Figures the monitor does not publish cannot be alarms.
    assert first[f"{prefix}category_accuracy"] == "skipped"
    assert first[f"{prefix}confidence_anomaly"] == "skipped"

    second = _sync(moto_endpoint, settings)

    assert {c for c in second.values()} == {"unchanged", "skipped"}
    assert _alarms(moto_endpoint, settings.model_name) == alarms


@pytest.mark.s3
def test_a_changed_threshold_updates_only_its_alarm_and_stale_alarms_go(
    settings: Settings, moto_endpoint: str, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"model_name": "changing-model"})
    _sync(moto_endpoint, settings)
    prefix = alarm_prefix(settings.model_name)
    override = tmp_path / "alerts.yaml"
    override.write_text(
        "rules:\n  - name: latency_p95_seconds\n    warning: 1.0\n    critical: 1.5\n",
        encoding="utf-8",
    )
    changed = load_alert_config(settings, path=override)

    after = _sync(moto_endpoint, settings, config=changed)

    updated = {name for name, change in after.items() if change == "updated"}
    assert updated == {
        f"{prefix}latency_p95_seconds-warning",
        f"{prefix}latency_p95_seconds-critical",
    }
    alarms = _alarms(moto_endpoint, settings.model_name)
    assert alarms[f"{prefix}latency_p95_seconds-critical"]["Threshold"] == pytest.approx(1.5)
    # A new Production version with another evaluation figure moves the relative alarm.
    moved = _sync(moto_endpoint, settings, config=changed, references={"mean_confidence": 0.7})
    assert moved[f"{prefix}mean_confidence-critical"] == "updated"
    confidence = _alarms(moto_endpoint, settings.model_name)[f"{prefix}mean_confidence-critical"]
    assert confidence["Threshold"] == pytest.approx(0.6)
    # Without a Production version the relative rule has nothing to be relative to: skipped,
    # and its alarms (which would judge a version that no longer serves) are deleted.
    gone = _sync(moto_endpoint, settings, config=changed, references={})
    assert gone[f"{prefix}mean_confidence"] == "skipped"
    assert gone[f"{prefix}mean_confidence-critical"] == "deleted"
    assert f"{prefix}mean_confidence-critical" not in _alarms(moto_endpoint, settings.model_name)


@pytest.mark.s3
def test_the_command_says_when_nothing_changed(
    settings: Settings,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    point_cli_at(settings, monkeypatch)
    monkeypatch.setenv("BOLTIT_CLOUDWATCH_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("BOLTIT_MODEL_NAME", "cli-model")

    code, first, _ = run_boltit(monkeypatch, capsys, "alarms", "sync")
    assert code == 0, first
    # Six: no Production version, so the relative mean_confidence rule has no threshold yet.
    assert "changed 6 alarms" in first and "created" in first

    code, second, _ = run_boltit(monkeypatch, capsys, "alarms", "sync")
    assert code == 0, second
    assert "no changes: 6 alarms already match the rules" in second
    assert len(_alarms(moto_endpoint, "cli-model")) == 6
