"""Alert rules as data: packaged defaults (``alerts.yaml``) plus an optional override file.

Each rule reads one figure of a :class:`~boltit.monitoring.snapshot.Snapshot` and grades it
``ok``, ``warning`` or ``critical`` (or ``no_data`` when too few observations exist).

A rule's thresholds are either fixed numbers (``reference: fixed``) or margins below what the
Production version showed on its evaluation set (``reference: evaluation``), so a model is
judged against what it proved rather than against a number picked for another model. Whether
a critical verdict opens an incident is the rule's ``incident`` setting: ``true``, ``false``
(reported only) or ``below_proven`` (only when the version also does worse than it proved).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from scipy import stats

from boltit.core.errors import BadInputError
from boltit.core.settings import Settings
from boltit.core.vocabulary import VALIDATION_PASSED
from boltit.monitoring.sequential import SequentialConfig, SequentialResult, proven_lower_bound
from boltit.monitoring.snapshot import Snapshot

METRICS = (
    "accuracy_7d",
    "mean_confidence",
    "error_rate",
    "latency_p95_seconds",
    "category_accuracy",
    "confidence_ks",
)
# Metrics with an evaluation-set figure to be relative to.
RELATIVE_METRICS = ("mean_confidence", "category_accuracy")
SEQUENTIAL_RULE = "sequential_regression"
FIXED, EVALUATION = "fixed", "evaluation"
BELOW_PROVEN = "below_proven"


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
    """One rule with its warning and critical thresholds (margins when relative)."""

    name: str
    metric: str
    kind: Kind
    direction: str
    warning: float
    critical: float
    min_samples: int = 1
    description: str = ""
    recent_tickets: int = 200
    reference: str = FIXED
    incident: bool | str = True
    """True, False (report only) or ``below_proven``."""
    alpha: float = 0.01
    """For ``below_proven``: one-sided significance of "live accuracy is below the proven"."""

    def limits(self, reference: float | None = None) -> tuple[float, float] | None:
        """(warning, critical) as values of the figure; None when a relative rule has no
        reference to be relative to."""
        if self.reference == FIXED:
            return self.warning, self.critical
        if reference is None:
            return None
        sign = -1.0 if self.direction == "below" else 1.0
        return reference + sign * self.warning, reference + sign * self.critical

    def grade(self, value: float | None, samples: int, reference: float | None = None) -> Level:
        """Level of ``value`` observed over ``samples`` observations."""
        limits = self.limits(reference)
        if value is None or samples < self.min_samples or limits is None:
            return Level.no_data
        warning, critical = limits
        if self._breaches(value, critical):
            return Level.critical
        if self._breaches(value, warning):
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
class ProvenAccuracy:
    """What a version proved: its accuracy on an evaluation set of ``rows`` rows."""

    version: str
    accuracy: float
    rows: int | None
    source: str

    def lower_bound(self, confidence: float) -> float:
        return proven_lower_bound(self.accuracy, self.rows, confidence=confidence)

    def describe(self) -> str:
        rows = (
            f"{self.rows:,} evaluation rows" if self.rows else "an evaluation set of unknown size"
        )
        return f"v{self.version} proved {self.accuracy:.3f} on {rows} ({self.source})"


@dataclass(frozen=True)
class EvaluationFigures:
    """The Production version's figures on its evaluation set: the references of relative rules."""

    version: str
    proven: ProvenAccuracy | None
    mean_confidence: float | None = None
    category_recall: dict[str, float] = field(default_factory=dict)
    validation_status: str | None = None
    """The version's ``validation_status`` tag; only ``passed`` means the gates accepted
    what it proved."""

    @property
    def accepted(self) -> bool:
        return self.validation_status == VALIDATION_PASSED


@dataclass(frozen=True)
class LiveAccuracy:
    """Production's labelled tickets since it went live."""

    correct: int
    labelled: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None


@dataclass(frozen=True)
class ProvenComparison:
    """One-sided exact binomial test: is live accuracy below the proven lower bound?"""

    live: LiveAccuracy
    proven: ProvenAccuracy
    bound: float
    p_value: float
    alpha: float

    @property
    def below(self) -> bool:
        return self.p_value < self.alpha

    def describe(self) -> str:
        return (
            f"live {self.live.accuracy or 0:.3f} over {self.live.labelled} labelled since "
            f"v{self.proven.version} went live vs {self.bound:.3f}, the lower bound of: "
            f"{self.proven.describe()}; one-sided binomial p = {self.p_value:.3g}"
        )


def compare_with_proven(
    live: LiveAccuracy, proven: ProvenAccuracy, *, confidence: float, alpha: float
) -> ProvenComparison:
    """Test "live accuracy is below what the version proved" on the labelled tickets."""
    bound = proven.lower_bound(confidence)
    p_value = 1.0
    if live.labelled:
        p_value = float(
            stats.binomtest(live.correct, live.labelled, bound, alternative="less").pvalue
        )
    return ProvenComparison(live=live, proven=proven, bound=bound, p_value=p_value, alpha=alpha)


@dataclass(frozen=True)
class Evaluation:
    """A rule's verdict on the current figures, with what it rests on."""

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
    opens_incident: bool = False
    """True when this verdict, on its own, opens an incident."""
    reference: float | None = None
    """The evaluation-set figure the thresholds are relative to (relative rules only)."""
    note: str = ""
    """Why the verdict does or does not act, and against what."""

    @property
    def label(self) -> str:
        return f"{self.rule}[{self.subject}]" if self.subject else self.rule

    def describe(self) -> str:
        """One line for timelines and terminals: the figure, both limits and the sample size."""
        sign = "<" if self.direction == "below" else ">"
        if self.value is None:
            text = f"{self.label}: no data ({self.samples} observations)"
        elif math.isnan(self.critical):
            text = (
                f"{self.label} = {self.value:.3f} ({self.level.value}; no limits; "
                f"{self.samples} observations)"
            )
        else:
            text = (
                f"{self.label} = {self.value:.3f} ({self.level.value}; warning {sign} "
                f"{self.warning:.3g}, critical {sign} {self.critical:.3g}; "
                f"{self.samples} observations)"
            )
        return f"{text}: {self.note}" if self.note else text


def default_config_path() -> Path:
    """The packaged ``alerts.yaml``."""
    return Path(str(resources.files("boltit.monitoring") / "alerts.yaml"))


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
        sequential = SequentialConfig.from_mapping(raw.get("sequential") or {})
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
    reference = raw.get("reference", FIXED)
    if reference not in (FIXED, EVALUATION):
        raise ValueError(f"rule {name}: reference must be '{FIXED}' or '{EVALUATION}'")
    if reference == EVALUATION and metric not in RELATIVE_METRICS:
        raise ValueError(
            f"rule {name}: {metric} has no evaluation-set figure; reference: {EVALUATION} "
            f"works for {', '.join(RELATIVE_METRICS)}"
        )
    warning, critical = float(raw["warning"]), float(raw["critical"])
    if reference == EVALUATION:
        # Margins from the evaluation figure: the critical one is the larger.
        if warning < 0 or critical < warning:
            raise ValueError(
                f"rule {name}: relative thresholds are margins; critical must be >= warning >= 0"
            )
    elif (direction == "below" and critical > warning) or (
        direction == "above" and critical < warning
    ):
        raise ValueError(f"rule {name}: the critical threshold must be beyond the warning one")
    kind = Kind(raw.get("kind", "quality"))
    incident = raw.get("incident", kind is Kind.quality)
    if incident not in (True, False, BELOW_PROVEN):
        raise ValueError(f"rule {name}: incident must be true, false or {BELOW_PROVEN}")
    if incident is not False and kind is Kind.service:
        raise ValueError(f"rule {name}: service rules only alert; set incident: false")
    if incident == BELOW_PROVEN and metric != "accuracy_7d":
        raise ValueError(f"rule {name}: incident: {BELOW_PROVEN} needs metric accuracy_7d")
    alpha = float(raw.get("alpha", 0.01))
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"rule {name}: alpha must be in (0, 0.5)")
    return AlertRule(
        name=name,
        metric=metric,
        kind=kind,
        direction=direction,
        warning=warning,
        critical=critical,
        min_samples=int(raw.get("min_samples", 1)),
        description=str(raw.get("description", "")),
        recent_tickets=int(raw.get("recent_tickets", 200)),
        reference=reference,
        incident=incident,
        alpha=alpha,
    )


def evaluate(
    *,
    config: AlertConfig,
    quality: Snapshot,
    service: Snapshot,
    sequential: SequentialResult | None = None,
    figures: EvaluationFigures | None = None,
    live: LiveAccuracy | None = None,
) -> list[Evaluation]:
    """Grade every rule.

    Args:
        config: The rules.
        quality: Figures of the tickets the current Production version served (model rules).
        service: Figures of every ticket served in the window (service rules).
        sequential: The regression test on Production's feedback since it went live, when the
            version has a proven accuracy.
        figures: What Production showed on its evaluation set. Without it (e.g. on a
            service's ``/metrics``, which reads no registry) relative rules have no data and
            no incident is judged against a proven accuracy.
        live: Production's labelled tickets since it went live (for ``below_proven``).
    """
    results: list[Evaluation] = []
    for rule in config.rules:
        snapshot = quality if rule.kind is Kind.quality else service
        if rule.metric == "category_accuracy":
            recall = figures.category_recall if figures else {}
            for category, measured in snapshot.category_accuracy.items():
                results.append(
                    _evaluation(
                        rule,
                        measured.accuracy,
                        measured.labelled,
                        subject=category,
                        reference=recall.get(category),
                        figures=figures,
                    )
                )
            continue
        value, samples = _figure(snapshot, rule.metric)
        reference = (
            figures.mean_confidence if figures and rule.metric == "mean_confidence" else None
        )
        evaluation = _evaluation(rule, value, samples, reference=reference, figures=figures)
        if rule.incident == BELOW_PROVEN:
            evaluation = _floor(evaluation, config=config, figures=figures, live=live)
        results.append(evaluation)
    if sequential is not None:
        proven = figures.proven if figures else None
        results.append(sequential_evaluation(sequential, config.sequential, proven=proven))
    elif figures is not None and figures.proven is None:
        results.append(_no_proven_accuracy(figures.version, config.sequential))
    return results


def sequential_evaluation(
    result: SequentialResult, config: SequentialConfig, *, proven: ProvenAccuracy | None = None
) -> Evaluation:
    """The sequential test as an alert: warning past part of the threshold, critical on alarm."""
    if result.alarm:
        level = Level.critical
    elif result.statistic >= config.warning_fraction * config.threshold:
        level = Level.warning
    elif result.observations == 0:
        level = Level.no_data
    else:
        level = Level.ok
    against = (
        f"the {config.proven_confidence:.0%} lower bound of: {proven.describe()}"
        if proven is not None
        else "the proven accuracy"
    )
    live = f"{result.accuracy:.3f}" if result.accuracy is not None else "-"
    when = f", alarmed at labelled ticket {result.alarm_at}" if result.alarm_at else ""
    note = (
        f"CUSUM of live accuracy {live} since it went live against H0 {result.baseline:.3f} "
        f"({against}), H1 {result.alternative:.3f}{when}"
    )
    return Evaluation(
        rule=SEQUENTIAL_RULE,
        kind=Kind.quality,
        level=level,
        value=result.peak if result.alarm else result.statistic,
        samples=result.observations,
        warning=config.warning_fraction * config.threshold,
        critical=config.threshold,
        direction="above",
        opens_incident=result.alarm,
        reference=result.baseline,
        note=note,
    )


def _no_proven_accuracy(version: str, config: SequentialConfig) -> Evaluation:
    return Evaluation(
        rule=SEQUENTIAL_RULE,
        kind=Kind.quality,
        level=Level.no_data,
        value=None,
        samples=0,
        warning=config.warning_fraction * config.threshold,
        critical=config.threshold,
        direction="above",
        note=(
            f"v{version} has no proven accuracy (no validation.accuracy tag, no training-run "
            "metric accuracy): nothing to test live accuracy against"
        ),
    )


def _floor(
    evaluation: Evaluation,
    *,
    config: AlertConfig,
    figures: EvaluationFigures | None,
    live: LiveAccuracy | None,
) -> Evaluation:
    """The runbook's absolute floor: under it is reported, an incident only when the version
    also does worse than it proved (or proved nothing)."""
    if evaluation.level not in (Level.warning, Level.critical):
        return evaluation
    critical = evaluation.level is Level.critical
    floor = (
        f"under the runbook's floor {evaluation.critical:g}"
        if critical
        else (f"near the runbook's floor (warning {evaluation.warning:g})")
    )
    rule = config.rule(evaluation.rule)
    if figures is None:
        return _with(evaluation, False, f"{floor}; proven accuracy not read here (report only)")
    if figures.proven is None:
        return _with(
            evaluation,
            critical,
            f"{floor}; v{figures.version} has no proven accuracy, so the floor applies as written",
        )
    if not figures.accepted:
        return _with(
            evaluation,
            critical,
            f"{floor}; v{figures.version} has not passed its gates (validation_status="
            f"{figures.validation_status or 'never validated'}), so what it proved was never "
            "accepted and the floor applies as written",
        )
    if live is None or live.labelled < rule.min_samples:
        labelled = live.labelled if live else 0
        return _with(
            evaluation,
            False,
            f"{floor}; not an incident: {labelled} labelled tickets since v{figures.version} "
            f"went live are too few to say it does worse than it proved "
            f"({figures.proven.describe()})",
        )
    comparison = compare_with_proven(
        live, figures.proven, confidence=config.sequential.proven_confidence, alpha=rule.alpha
    )
    if comparison.below:
        return _with(
            evaluation,
            critical,
            f"{floor} and below what it proved ({comparison.describe()} < {rule.alpha:g})",
        )
    return _with(
        evaluation,
        False,
        f"{floor}; not an incident: v{figures.version} performs as it proved "
        f"({comparison.describe()} >= {rule.alpha:g})",
    )


def _with(evaluation: Evaluation, opens_incident: bool, note: str) -> Evaluation:
    return replace(evaluation, opens_incident=opens_incident, note=note)


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
    rule: AlertRule,
    value: float | None,
    samples: int,
    *,
    subject: str | None = None,
    reference: float | None = None,
    figures: EvaluationFigures | None = None,
) -> Evaluation:
    level = rule.grade(value, samples, reference)
    # A relative rule without its reference has no limits (NaN, not its margins as numbers).
    limits = rule.limits(reference) or (math.nan, math.nan)
    note = ""
    if rule.reference == EVALUATION:
        what = f"{subject} recall" if subject else rule.metric.replace("_", " ")
        if reference is None:
            where = f"v{figures.version}'s" if figures else "the version's"
            note = f"no {what} on {where} evaluation set to compare with"
        else:
            note = f"relative to {what} {reference:.3f} on the evaluation set"
    if level in (Level.warning, Level.critical) and rule.incident is False:
        note = f"{note}; reported only" if note else "reported only"
    return Evaluation(
        rule=rule.name,
        kind=rule.kind,
        level=level,
        value=value,
        samples=samples,
        warning=limits[0],
        critical=limits[1],
        direction=rule.direction,
        subject=subject,
        opens_incident=level is Level.critical and rule.incident is True,
        reference=reference,
        note=note,
    )
