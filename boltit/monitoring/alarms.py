"""CloudWatch alarms made from the alert rules (``boltit alarms sync``), idempotently.

One alarm per rule and level on the metric the monitor publishes for it
(:mod:`boltit.monitoring.cloudwatch`). A relative rule (``reference: evaluation``) becomes
an absolute threshold from the Production version's evaluation figure, so syncing after a
promotion moves it to the version that serves. Rules whose figure is not published are
reported as skipped. Missing data never breaches: a version with too few labelled tickets
publishes no accuracy, and its alarm waits instead of firing on the previous version's value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from boltit.core.errors import BoltitError
from boltit.monitoring.rules import FIXED, AlertConfig, AlertRule

# Alert-rule metric -> the CloudWatch metric the monitor publishes for it.
PUBLISHED_METRICS: dict[str, str] = {
    "accuracy_7d": "classification_accuracy_7d",
    "mean_confidence": "mean_confidence",
    "error_rate": "prediction_error_rate",
    "latency_p95_seconds": "latency_p95_seconds",
}
# The monitor publishes once a pass (every minute with --watch); five minutes of average.
PERIOD_SECONDS = 300
EVALUATION_PERIODS = 1
_OPERATOR = {"below": "LessThanThreshold", "above": "GreaterThanThreshold"}
# The fields sync owns; an alarm equal on all of them is left alone.
_COMPARED = (
    "Namespace",
    "MetricName",
    "Statistic",
    "Period",
    "EvaluationPeriods",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "AlarmDescription",
    "AlarmActions",
    "ActionsEnabled",
)

ChangeKind = Literal["created", "updated", "unchanged", "deleted", "skipped"]


@dataclass(frozen=True)
class AlarmChange:
    """What sync did (or would do) to one alarm."""

    name: str
    change: ChangeKind
    detail: str


def alarm_prefix(model_name: str) -> str:
    """Every alarm sync owns starts with this; others in the account are never touched."""
    return f"boltit-{model_name}-"


def alarm_definitions(
    config: AlertConfig,
    *,
    namespace: str,
    model_name: str,
    references: Mapping[str, float | None],
    actions: Iterable[str] = (),
) -> tuple[list[dict[str, Any]], list[AlarmChange]]:
    """``put_metric_alarm`` parameters for every rule that can be an alarm, and the skipped.

    Args:
        config: The alert rules.
        namespace: CloudWatch namespace of the published metrics.
        model_name: Registered model; part of each alarm name.
        references: Production's evaluation figure per relative metric (e.g.
            ``mean_confidence``); a relative rule without one is skipped.
        actions: SNS topic ARNs (or other alarm actions) to notify.
    """
    definitions: list[dict[str, Any]] = []
    skipped: list[AlarmChange] = []
    for rule in config.rules:
        name = f"{alarm_prefix(model_name)}{rule.name}"
        metric = PUBLISHED_METRICS.get(rule.metric)
        if metric is None:
            skipped.append(
                AlarmChange(name, "skipped", f"{rule.metric} is not published to CloudWatch")
            )
            continue
        reference = references.get(rule.metric)
        limits = rule.limits(reference)
        if limits is None:
            skipped.append(
                AlarmChange(
                    name,
                    "skipped",
                    f"relative to Production's evaluation {rule.metric}, which is unknown",
                )
            )
            continue
        for level, threshold in zip(("warning", "critical"), limits, strict=True):
            if not math.isfinite(threshold):
                continue
            definitions.append(
                {
                    "AlarmName": f"{name}-{level}",
                    "AlarmDescription": _description(rule, level, reference)[:1024],
                    "ActionsEnabled": True,
                    "AlarmActions": sorted(actions),
                    "Namespace": namespace,
                    "MetricName": metric,
                    "Statistic": "Average",
                    "Period": PERIOD_SECONDS,
                    "EvaluationPeriods": EVALUATION_PERIODS,
                    "Threshold": round(float(threshold), 6),
                    "ComparisonOperator": _OPERATOR[rule.direction],
                    "TreatMissingData": "notBreaching",
                }
            )
    return definitions, skipped


def _description(rule: AlertRule, level: str, reference: float | None) -> str:
    text = f"BoltIT alert rule {rule.name} ({level}): {rule.description or rule.metric}"
    if rule.reference != FIXED and reference is not None:
        margin = rule.warning if level == "warning" else rule.critical
        text += f"; Production's evaluation figure {reference:.4f} minus margin {margin:g}"
    return text


def _differences(wanted: dict[str, Any], existing: dict[str, Any]) -> list[str]:
    changed = []
    for key in _COMPARED:
        have, want = existing.get(key), wanted.get(key)
        if key == "Threshold" and have is not None and want is not None:
            if not math.isclose(float(have), float(want), abs_tol=1e-9):
                changed.append(f"Threshold {have} -> {want}")
        elif key == "AlarmActions":
            if sorted(have or []) != want:
                changed.append("AlarmActions")
        elif have != want:
            changed.append(f"{key} {have} -> {want}")
    return changed


def existing_alarms(cloudwatch: Any, prefix: str) -> dict[str, dict[str, Any]]:
    """The metric alarms whose names start with ``prefix``, by name."""
    found: dict[str, dict[str, Any]] = {}
    paginator = cloudwatch.get_paginator("describe_alarms")
    for page in paginator.paginate(AlarmNamePrefix=prefix, AlarmTypes=["MetricAlarm"]):
        for alarm in page.get("MetricAlarms", []):
            found[alarm["AlarmName"]] = alarm
    return found


def sync_alarms(
    *,
    cloudwatch: Any,
    config: AlertConfig,
    namespace: str,
    model_name: str,
    references: Mapping[str, float | None],
    actions: Iterable[str] = (),
    dry_run: bool = False,
) -> list[AlarmChange]:
    """Create, update or delete this model's alarms so they match the rules.

    An alarm already equal to its rule is not written again, so a second run changes
    nothing. Alarms under :func:`alarm_prefix` that no rule defines any more are deleted.

    Raises:
        BoltitError: CloudWatch refused a call or cannot be reached.
    """
    wanted, changes = alarm_definitions(
        config,
        namespace=namespace,
        model_name=model_name,
        references=references,
        actions=actions,
    )
    try:
        existing = existing_alarms(cloudwatch, alarm_prefix(model_name))
        for definition in wanted:
            name = definition["AlarmName"]
            current = existing.pop(name, None)
            if current is None:
                change: ChangeKind = "created"
                detail = f"{definition['MetricName']} {definition['ComparisonOperator']} "
                detail += f"{definition['Threshold']:g}"
            else:
                differences = _differences(definition, current)
                if not differences:
                    changes.append(AlarmChange(name, "unchanged", "matches the rule"))
                    continue
                change, detail = "updated", "; ".join(differences)
            if not dry_run:
                cloudwatch.put_metric_alarm(**definition)
            changes.append(AlarmChange(name, change, detail))
        stale = sorted(existing)
        if stale and not dry_run:
            cloudwatch.delete_alarms(AlarmNames=stale)
        changes.extend(AlarmChange(name, "deleted", "no rule defines it") for name in stale)
    except (BotoCoreError, ClientError) as exc:
        raise BoltitError(f"cannot sync CloudWatch alarms in {namespace}: {exc}") from exc
    return changes
