"""The monitor's view of now: figures, rule verdicts and the sequential test, for one model."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy.orm import Session

from boltit import audit
from boltit.db import Database
from boltit.names import PREVIOUS, PRODUCTION
from boltit.schema import utcnow
from boltit.settings import Settings
from monitoring import metrics, rules
from monitoring.sequential import SequentialResult, cusum

# Events after which ``to_version`` served Production.
SERVING_ACTIONS = ("promote", "rollback", "registry_sync")


@dataclass(frozen=True)
class VersionFigures:
    """What is known about one version's quality."""

    version: str
    validation_accuracy: float | None
    live_accuracy: float | None
    live_labelled: int


@dataclass(frozen=True)
class Baseline:
    """The accuracy Production is tested against, and where it came from."""

    accuracy: float
    source: str


@dataclass
class MonitorStatus:
    """Everything one monitoring pass knows."""

    model_name: str
    computed_at: datetime
    config: rules.AlertConfig
    production: str | None
    previous: str | None
    promoted_at: datetime | None
    overall: metrics.Snapshot
    quality: metrics.Snapshot
    evaluations: list[rules.Evaluation]
    sequential: SequentialResult | None
    baseline: Baseline | None
    production_figures: VersionFigures | None
    previous_figures: VersionFigures | None
    pre_promotion_accuracy: float | None
    post_promotion_accuracy: float | None
    post_promotion_labelled: int
    post_promotion_tickets: int = 0
    post_promotion_auto_applied: int = 0
    regressed_versions: set[str] = field(default_factory=set)

    def critical_quality(self) -> list[rules.Evaluation]:
        """Critical verdicts of model-quality rules: these open an incident."""
        return [
            e
            for e in self.evaluations
            if e.level is rules.Level.critical and e.kind is rules.Kind.quality
        ]

    @property
    def worst(self) -> rules.Level:
        levels = [e.level for e in self.evaluations]
        for level in (rules.Level.critical, rules.Level.warning):
            if level in levels:
                return level
        return rules.Level.ok


def aliases(client: MlflowClient, name: str) -> dict[str, str]:
    """Alias → version of a registered model; empty when it does not exist yet."""
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        return {}
    return {alias: str(version) for alias, version in (model.aliases or {}).items()}


def validation_accuracy(client: MlflowClient, name: str, version: str) -> float | None:
    """The run metric ``accuracy`` of the version's training run, if logged."""
    try:
        run_id = client.get_model_version(name, version).run_id
        if not run_id:
            return None
        value = client.get_run(run_id).data.metrics.get("accuracy")
    except MlflowException:
        return None
    return float(value) if value is not None else None


def promoted_at(session: Session, *, model_name: str, version: str) -> datetime | None:
    """When ``version`` last started serving, from the audit history."""
    for event in reversed(
        audit.history(session, model_name=model_name, actions=list(SERVING_ACTIONS))
    ):
        if event.to_version != version:
            continue
        if event.action == "registry_sync" and (event.details or {}).get("outcome") != "accepted":
            continue
        return event.at
    return None


def regressed_versions(session: Session, *, model_name: str) -> set[str]:
    """Versions the monitor has already found regressed (kept in ``incident_action`` events)."""
    found: set[str] = set()
    for event in audit.history(session, model_name=model_name, actions=["incident_action"]):
        version = (event.details or {}).get("regressed_version")
        if version:
            found.add(str(version))
    return found


def _accuracy(frame: pd.DataFrame) -> tuple[float | None, int]:
    labelled = frame[frame["feedback_category"].notna()]
    if labelled.empty:
        return None, 0
    return float((labelled["category"] == labelled["feedback_category"]).mean()), len(labelled)


def _snapshots(
    window: pd.DataFrame,
    *,
    errors: int,
    production: str | None,
    config: rules.AlertConfig,
    settings: Settings,
) -> tuple[metrics.Snapshot, metrics.Snapshot]:
    """Service figures over every ticket, quality figures over Production's own tickets."""
    recent = _recent_tickets(config)
    overall = metrics.compute_snapshot(
        window,
        window_days=config.window_days,
        errors=errors,
        recent_tickets=recent,
        low_confidence_threshold=settings.auto_apply_threshold,
    )
    served = window[window["model_version"] == production] if production else window.iloc[0:0]
    quality = metrics.compute_snapshot(
        served,
        window_days=config.window_days,
        recent_tickets=recent,
        low_confidence_threshold=settings.auto_apply_threshold,
    )
    return overall, quality


def collect_status(
    *,
    settings: Settings,
    database: Database,
    client: MlflowClient,
    config: rules.AlertConfig | None = None,
    now: datetime | None = None,
) -> MonitorStatus:
    """Read the store, the audit history and the registry; grade every rule."""
    config = config or rules.load_alert_config(settings)
    now = now or utcnow()
    name = settings.model_name
    since = metrics.window_start(now, config.window_days)
    current = aliases(client, name)
    production, previous = current.get(PRODUCTION), current.get(PREVIOUS)
    with database.session() as session:
        window = metrics.load_tickets(session, since=since)
        errors = metrics.count_prediction_errors(session, since=since)
        started = promoted_at(session, model_name=name, version=production) if production else None
        regressed = regressed_versions(session, model_name=name)
        production_history = (
            metrics.load_tickets(session, model_version=production) if production else None
        )
        previous_history = (
            metrics.load_tickets(session, model_version=previous) if previous else None
        )
    overall, quality = _snapshots(
        window, errors=errors, production=production, config=config, settings=settings
    )

    production_figures = previous_figures = None
    sequential = None
    baseline = None
    pre_accuracy = post_accuracy = None
    post_labelled = post_tickets = post_auto = 0
    if production is not None and production_history is not None:
        production_figures = _figures(client, name, production, production_history)
        if previous is not None and previous_history is not None:
            previous_figures = _figures(client, name, previous, previous_history)
        baseline = choose_baseline(
            production=production_figures,
            previous=previous_figures,
            regressed=regressed,
            min_live_samples=config.sequential.min_baseline_samples,
        )
        since_promotion = (
            production_history[production_history["created_at"] >= started]
            if started is not None
            else production_history
        )
        post_accuracy, post_labelled = _accuracy(since_promotion)
        post_tickets = len(since_promotion)
        post_auto = int(since_promotion["auto_applied"].astype(bool).sum())
        if started is not None:
            pre_accuracy, _ = _accuracy(window[window["created_at"] < started])
        if baseline is not None:
            outcomes = since_promotion[since_promotion["feedback_category"].notna()].sort_values(
                "feedback_at", kind="stable"
            )
            sequential = cusum(
                (outcomes["category"] == outcomes["feedback_category"]).tolist(),
                baseline=baseline.accuracy,
                config=config.sequential,
            )
    evaluations = rules.evaluate(
        config=config, quality=quality, service=overall, sequential=sequential
    )
    return MonitorStatus(
        model_name=name,
        computed_at=now,
        config=config,
        production=production,
        previous=previous,
        promoted_at=started,
        overall=overall,
        quality=quality,
        evaluations=evaluations,
        sequential=sequential,
        baseline=baseline,
        production_figures=production_figures,
        previous_figures=previous_figures,
        pre_promotion_accuracy=pre_accuracy,
        post_promotion_accuracy=post_accuracy,
        post_promotion_labelled=post_labelled,
        post_promotion_tickets=post_tickets,
        post_promotion_auto_applied=post_auto,
        regressed_versions=regressed,
    )


def _recent_tickets(config: rules.AlertConfig) -> int:
    for rule in config.rules:
        if rule.metric == "confidence_ks":
            return rule.recent_tickets
    return 0


def _figures(
    client: MlflowClient, name: str, version: str, history: pd.DataFrame
) -> VersionFigures:
    live, labelled = _accuracy(history)
    return VersionFigures(
        version=version,
        validation_accuracy=validation_accuracy(client, name, version),
        live_accuracy=live,
        live_labelled=labelled,
    )


def choose_baseline(
    *,
    production: VersionFigures,
    previous: VersionFigures | None,
    regressed: set[str],
    min_live_samples: int,
) -> Baseline | None:
    """Previous version's live accuracy, else its validation accuracy, else Production's own.

    A version that already regressed is no baseline: after a rollback, the rolled-back-to
    version is held to its own validation accuracy instead.
    """
    if previous is not None and previous.version not in regressed:
        if previous.live_accuracy is not None and previous.live_labelled >= min_live_samples:
            return Baseline(
                previous.live_accuracy,
                f"live accuracy of previous v{previous.version} "
                f"({previous.live_labelled} labelled)",
            )
        if previous.validation_accuracy is not None:
            return Baseline(
                previous.validation_accuracy,
                f"validation accuracy of previous v{previous.version}",
            )
    if production.validation_accuracy is not None:
        return Baseline(
            production.validation_accuracy,
            f"validation accuracy of Production v{production.version}",
        )
    return None


def store_evaluations(
    *,
    settings: Settings,
    database: Database,
    config: rules.AlertConfig,
    production: str | None,
    now: datetime | None = None,
) -> list[rules.Evaluation]:
    """The rule verdicts that need only the ticket store (no registry, no sequential test).

    Used where no MLflow client is at hand, e.g. a service's ``/metrics``.
    """
    now = now or utcnow()
    since = metrics.window_start(now, config.window_days)
    with database.session() as session:
        window = metrics.load_tickets(session, since=since)
        errors = metrics.count_prediction_errors(session, since=since)
    overall, quality = _snapshots(
        window, errors=errors, production=production, config=config, settings=settings
    )
    return rules.evaluate(config=config, quality=quality, service=overall)
