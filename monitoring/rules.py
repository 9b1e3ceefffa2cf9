"""Alert rules as data: packaged defaults (``alerts.yaml``) plus an optional override file.

Each rule reads one figure of a :class:`~monitoring.metrics.Snapshot` and grades it
``ok``, ``warning`` or ``critical`` (or ``no_data`` when too few observations exist).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from boltit.errors import BadInputError
from boltit.settings import Settings
from monitoring.metrics import Snapshot
from monitoring.sequential import SequentialConfig, SequentialResult

METRICS = (
    "accuracy_7d",
    "mean_confidence",
    "error_rate",
    "latency_p95_seconds",
    "category_accuracy",
    "confidence_ks",
)
SEQUENTIAL_RULE = "sequential_regression"


class Level(StrEnum):
    ok = "ok"
    no_data = "no_data"
    warning = "warning"
    critical = "critical"

    @property
    def gauge(self) -> int:
        """Numeric level for Prometheus and CloudWatch: ok/no_data 0, warning 1, critical 2."""
        return {"warning": 1, "critical": 2}.get(self.value, 0)


class Kind(StrEnum):
    quality = "quality"
    service = "service"


@dataclass(frozen=True)
class AlertRule:
    """One rule with its warning and critical thresholds."""

    name: str
    metric: str
    kind: Kind
    direction: str
    warning: float
    critical: float
    min_samples: int = 1
    description: str = ""
    recent_tickets: int = 200

    def grade(self, value: float | None, samples: int) -> Level:
        """Level of ``value`` observed over ``samples`` observations."""
        if value is None or samples < self.min_samples:
            return Level.no_data
        if self._breaches(value, self.critical):
            return Level.critical
        if self._breaches(value, self.warning):
            return Level.warning
        return Level.ok

    def _breaches(self, value: float, threshold: float) -> bool:
        return value < threshold if self.direction == "below" else value > threshold


@dataclass(frozen=True)
class AlertConfig:
    """Every rule, the window they look at, and the sequential test's parameters."""

    window_days: float
    rules: tuple[AlertRule, ...]
    sequential: SequentialConfig = field(default_factory=SequentialConfig)

    def rule(self, name: str) -> AlertRule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(name)


@dataclass(frozen=True)
class Evaluation:
    """A rule's verdict on the current figures."""

    rule: str
    kind: Kind
    level: Level
    value: float | None
    samples: int
    warning: float
    critical: float
    direction: str
    subject: str | None = None
    """The category, for per-category rules."""

    @property
    def label(self) -> str:
        return f"{self.rule}[{self.subject}]" if self.subject else self.rule

    def describe(self) -> str:
        """One line for timelines and terminals."""
        if self.value is None:
            return f"{self.label}: no data ({self.samples} observations)"
        sign = "<" if self.direction == "below" else ">"
        limit = self.critical if self.level is Level.critical else self.warning
        if self.level in (Level.warning, Level.critical):
            return (
                f"{self.label} = {self.value:.3f} {sign} {limit:g} "
                f"({self.level.value}, {self.samples} observations)"
            )
        return f"{self.label} = {self.value:.3f} (ok, {self.samples} observations)"


def default_config_path() -> Path:
    """The packaged ``alerts.yaml``."""
    return Path(str(resources.files("monitoring") / "alerts.yaml"))


def load_alert_config(settings: Settings | None = None, *, path: Path | None = None) -> AlertConfig:
    """Packaged defaults, with rules of ``settings.alerts_config`` (or ``path``) replacing them.

    Raises:
        BadInputError: The override file is missing, not YAML, or describes an invalid rule.
    """
    defaults = _read_yaml(default_config_path())
    override_path = path or (settings.alerts_config if settings else None)
    raw = dict(defaults)
    if override_path is not None:
        override = _read_yaml(Path(override_path))
        by_name = {rule["name"]: rule for rule in defaults.get("rules", [])}
        for rule in override.get("rules", []) or []:
            if not isinstance(rule, dict) or "name" not in rule:
                raise BadInputError(f"{override_path}: every rule needs a name")
            by_name[rule["name"]] = {**by_name.get(rule["name"], {}), **rule}
        raw["rules"] = list(by_name.values())
        raw["sequential"] = {**defaults.get("sequential", {}), **(override.get("sequential") or {})}
        if "window_days" in override:
            raw["window_days"] = override["window_days"]
    return _parse(raw, source=str(override_path or default_config_path()))


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise BadInputError(f"alert rules file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise BadInputError(f"alert rules file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise BadInputError(f"alert rules file {path} must hold a mapping at the top level")
    return data


def _parse(raw: dict[str, Any], *, source: str) -> AlertConfig:
    try:
        window_days = float(raw.get("window_days", 7))
        if window_days <= 0:
            raise ValueError("window_days must be positive")
        rules = tuple(_parse_rule(rule) for rule in raw.get("rules", []))
        sequential = SequentialConfig(**(raw.get("sequential") or {}))
    except (TypeError, ValueError, KeyError) as exc:
        raise BadInputError(f"invalid alert rules in {source}: {exc}") from exc
    return AlertConfig(window_days=window_days, rules=rules, sequential=sequential)


def _parse_rule(raw: dict[str, Any]) -> AlertRule:
    name = raw["name"]
    metric = raw.get("metric", name)
    if metric not in METRICS:
        raise ValueError(f"rule {name}: unknown metric {metric!r} (known: {', '.join(METRICS)})")
    direction = raw.get("direction", "below")
    if direction not in ("below", "above"):
        raise ValueError(f"rule {name}: direction must be 'below' or 'above'")
    warning, critical = float(raw["warning"]), float(raw["critical"])
    if (direction == "below" and critical > warning) or (
        direction == "above" and critical < warning
    ):
        raise ValueError(f"rule {name}: the critical threshold must be beyond the warning one")
    return AlertRule(
        name=name,
        metric=metric,
        kind=Kind(raw.get("kind", "quality")),
        direction=direction,
        warning=warning,
        critical=critical,
        min_samples=int(raw.get("min_samples", 1)),
        description=str(raw.get("description", "")),
        recent_tickets=int(raw.get("recent_tickets", 200)),
    )


def evaluate(
    *,
    config: AlertConfig,
    quality: Snapshot,
    service: Snapshot,
    sequential: SequentialResult | None = None,
) -> list[Evaluation]:
    """Grade every rule.

    Args:
        config: The rules.
        quality: Figures of the tickets the current Production version served (model rules).
        service: Figures of every ticket served in the window (service rules).
        sequential: The regression test on Production's feedback since its promotion, if a
            baseline was known.
    """
    results: list[Evaluation] = []
    for rule in config.rules:
        snapshot = quality if rule.kind is Kind.quality else service
        if rule.metric == "category_accuracy":
            for category, figures in snapshot.category_accuracy.items():
                results.append(
                    _evaluation(rule, figures.accuracy, figures.labelled, subject=category)
                )
            continue
        value, samples = _figure(snapshot, rule.metric)
        results.append(_evaluation(rule, value, samples))
    if sequential is not None:
        results.append(sequential_evaluation(sequential, config.sequential))
    return results


def sequential_evaluation(result: SequentialResult, config: SequentialConfig) -> Evaluation:
    """The sequential test as an alert: warning past part of the threshold, critical on alarm."""
    if result.alarm:
        level = Level.critical
    elif result.statistic >= config.warning_fraction * config.threshold:
        level = Level.warning
    elif result.observations == 0:
        level = Level.no_data
    else:
        level = Level.ok
    return Evaluation(
        rule=SEQUENTIAL_RULE,
        kind=Kind.quality,
        level=level,
        value=result.peak if result.alarm else result.statistic,
        samples=result.observations,
        warning=config.warning_fraction * config.threshold,
        critical=config.threshold,
        direction="above",
    )


def _figure(snapshot: Snapshot, metric: str) -> tuple[float | None, int]:
    if metric == "accuracy_7d":
        return snapshot.accuracy, snapshot.labelled
    if metric == "mean_confidence":
        return snapshot.mean_confidence, snapshot.tickets
    if metric == "error_rate":
        return snapshot.error_rate, snapshot.tickets + snapshot.errors
    if metric == "latency_p95_seconds":
        return snapshot.latency_p95_seconds, snapshot.tickets
    if metric == "confidence_ks":
        return snapshot.confidence_ks, snapshot.confidence_ks_samples
    raise KeyError(metric)


def _evaluation(
    rule: AlertRule, value: float | None, samples: int, *, subject: str | None = None
) -> Evaluation:
    return Evaluation(
        rule=rule.name,
        kind=rule.kind,
        level=rule.grade(value, samples),
        value=value,
        samples=samples,
        warning=rule.warning,
        critical=rule.critical,
        direction=rule.direction,
        subject=subject,
    )
