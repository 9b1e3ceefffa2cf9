"""The monitor's view of now: figures, rule verdicts and the sequential test, for one model.

Production is judged against what it proved: its accuracy on its evaluation set (contract 4:
version tag ``validation.accuracy`` with ``validation.evaluation_rows``, else its training
run's metric ``accuracy`` with param ``eval_rows``), never against another version's live
figures or a number picked for another model.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from sqlalchemy.orm import Session

from boltit.core import audit
from boltit.core.db import Database
from boltit.core.evaluation import feedback_outcomes
from boltit.core.schema import utcnow
from boltit.core.settings import Settings
from boltit.core.vocabulary import PREVIOUS, PRODUCTION, TAG_VALIDATION_STATUS
from boltit.monitoring import rules, snapshot
from boltit.monitoring.rules import (
    EvaluationFigures,
    LiveAccuracy,
    ProvenAccuracy,
    ProvenComparison,
)
from boltit.monitoring.sequential import SequentialResult, cusum

# Events after which ``to_version`` served Production.
SERVING_ACTIONS = ("promote", "rollback", "registry_sync")
# Contract 4: what ``validate`` records on the version.
VALIDATION_ACCURACY_TAG = "validation.accuracy"
VALIDATION_ROWS_TAG = "validation.evaluation_rows"
VALIDATION_SET_TAG = "validation.evaluation_set"


@dataclass(frozen=True)
class VersionFigures:
    """What is known about one version's quality."""

    version: str
    proven: ProvenAccuracy | None
    live_accuracy: float | None
    live_labelled: int


@dataclass
class MonitorStatus:
    """Everything one monitoring pass knows."""

    model_name: str
    computed_at: datetime
    config: rules.AlertConfig
    production: str | None
    previous: str | None
    promoted_at: datetime | None
    overall: snapshot.Snapshot
    quality: snapshot.Snapshot
    evaluations: list[rules.Evaluation]
    sequential: SequentialResult | None
    figures: EvaluationFigures | None
    """What Production showed on its evaluation set (proven accuracy and references)."""
    production_figures: VersionFigures | None
    previous_figures: VersionFigures | None
    pre_promotion_accuracy: float | None
    post_promotion_accuracy: float | None
    post_promotion_labelled: int
    post_promotion_tickets: int = 0
    post_promotion_auto_applied: int = 0
    regressed_versions: set[str] = field(default_factory=set)
    comparison: ProvenComparison | None = None
    """Exact binomial test of Production's live accuracy since it went live vs its proven."""

    @property
    def proven(self) -> ProvenAccuracy | None:
        return self.figures.proven if self.figures else None

    def incident_alerts(self) -> list[rules.Evaluation]:
        """Critical verdicts that open an incident on their own."""
        return [e for e in self.evaluations if e.level is rules.Level.critical and e.opens_incident]

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


def _number(text: object) -> float | None:
    try:
        value = float(str(text))
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _rows(text: object) -> int | None:
    value = _number(text)
    return int(value) if value is not None and value > 0 else None


def _training_run(
    client: MlflowClient, name: str, version: str
) -> tuple[dict[str, str], Run | None]:
    """The version's tags and its training run (None when it has none or it is unreadable)."""
    try:
        model_version = client.get_model_version(name, version)
    except MlflowException:
        return {}, None
    tags = dict(model_version.tags or {})
    if not model_version.run_id:
        return tags, None
    try:
        return tags, client.get_run(model_version.run_id)
    except MlflowException:
        return tags, None


def _proven(version: str, tags: dict[str, str], run: Run | None) -> ProvenAccuracy | None:
    accuracy = _number(tags.get(VALIDATION_ACCURACY_TAG))
    if accuracy is not None:
        where = tags.get(VALIDATION_SET_TAG) or "evaluation set"
        return ProvenAccuracy(
            version, accuracy, _rows(tags.get(VALIDATION_ROWS_TAG)), f"validate, {where}"
        )
    if run is None:
        return None
    accuracy = _number(run.data.metrics.get("accuracy"))
    if accuracy is None:
        return None
    rows = _rows(run.data.params.get("eval_rows")) or _rows(run.data.metrics.get("eval_rows"))
    return ProvenAccuracy(
        version, accuracy, rows, f"evaluation split of training run {run.info.run_id[:8]}"
    )


def proven_accuracy(client: MlflowClient, name: str, version: str) -> ProvenAccuracy | None:
    """What ``version`` proved on its evaluation set (contract 4), None if nothing is recorded."""
    tags, run = _training_run(client, name, version)
    return _proven(version, tags, run)


def validation_accuracy(client: MlflowClient, name: str, version: str) -> float | None:
    """The proven accuracy of ``version`` as a number (see :func:`proven_accuracy`)."""
    proven = proven_accuracy(client, name, version)
    return proven.accuracy if proven else None


def _metric_name(category: str) -> str:
    # The training run's naming of per-category metrics (``recall_Administrative_rights``).
    return re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z_]", "_", category.strip())).strip("_")


def evaluation_figures(
    client: MlflowClient, name: str, version: str, *, categories: list[str] | None = None
) -> EvaluationFigures:
    """The references of the relative rules: proven accuracy, the evaluation set's mean
    confidence and per-category recall (run metrics of the version's training run)."""
    tags, run = _training_run(client, name, version)
    run_metrics = run.data.metrics if run is not None else {}
    recall = {}
    for category in categories or []:
        value = _number(run_metrics.get(f"recall_{_metric_name(category)}"))
        if value is not None:
            recall[category] = value
    return EvaluationFigures(
        version=version,
        proven=_proven(version, tags, run),
        mean_confidence=_number(run_metrics.get("mean_confidence")),
        category_recall=recall,
        validation_status=tags.get(TAG_VALIDATION_STATUS),
    )


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


def _outcomes(tickets: snapshot.TicketLog) -> list[bool]:
    """Right or wrong per labelled ticket, in the order the feedback arrived."""
    has_label, right = feedback_outcomes(tickets["category"], tickets["feedback_category"])
    arrival = np.argsort(tickets["feedback_at"][has_label], kind="stable")
    return [bool(hit) for hit in right[has_label][arrival]]


def _accuracy(frame: snapshot.TicketLog) -> tuple[float | None, int]:
    outcomes = _outcomes(frame)
    return (sum(outcomes) / len(outcomes) if outcomes else None), len(outcomes)


def _snapshots(
    window: snapshot.TicketLog,
    *,
    errors: int,
    production: str | None,
    config: rules.AlertConfig,
    settings: Settings,
) -> tuple[snapshot.Snapshot, snapshot.Snapshot]:
    """Service figures over every ticket, quality figures over Production's own tickets."""
    recent = _recent_tickets(config)
    overall = snapshot.compute_snapshot(
        window,
        window_days=config.window_days,
        errors=errors,
        recent_tickets=recent,
        low_confidence_threshold=settings.auto_apply_threshold,
    )
    served = window.where(
        window["model_version"] == production if production else np.zeros(len(window), dtype=bool)
    )
    quality = snapshot.compute_snapshot(
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
    since = snapshot.window_start(now, config.window_days)
    current = aliases(client, name)
    production, previous = current.get(PRODUCTION), current.get(PREVIOUS)
    stored = _read_store(
        database, model_name=name, since=since, production=production, previous=previous
    )
    overall, quality = _snapshots(
        stored.window, errors=stored.errors, production=production, config=config, settings=settings
    )
    judged = _judge_production(
        client,
        stored,
        model_name=name,
        production=production,
        previous=previous,
        quality=quality,
        config=config,
    )
    evaluations = rules.evaluate(
        config=config,
        quality=quality,
        service=overall,
        sequential=judged.sequential,
        figures=judged.figures,
        live=judged.live,
    )
    return MonitorStatus(
        model_name=name,
        computed_at=now,
        config=config,
        production=production,
        previous=previous,
        promoted_at=stored.promoted_at,
        overall=overall,
        quality=quality,
        evaluations=evaluations,
        sequential=judged.sequential,
        figures=judged.figures,
        production_figures=judged.production_figures,
        previous_figures=judged.previous_figures,
        pre_promotion_accuracy=judged.pre_accuracy,
        post_promotion_accuracy=judged.post_accuracy,
        post_promotion_labelled=judged.post_labelled,
        post_promotion_tickets=judged.post_tickets,
        post_promotion_auto_applied=judged.post_auto,
        regressed_versions=stored.regressed,
        comparison=judged.comparison,
    )


@dataclass(frozen=True)
class _StoreReading:
    """What one monitoring pass reads from the database, in one session."""

    window: snapshot.TicketLog
    errors: int
    promoted_at: datetime | None
    regressed: set[str]
    production_history: snapshot.TicketLog | None
    previous_history: snapshot.TicketLog | None


@dataclass(frozen=True)
class _ProductionJudgement:
    """Production's references, its live record since it went live, and the tests on it.

    Every field keeps its default when no version serves Production.
    """

    figures: EvaluationFigures | None = None
    production_figures: VersionFigures | None = None
    previous_figures: VersionFigures | None = None
    live: LiveAccuracy | None = None
    sequential: SequentialResult | None = None
    comparison: ProvenComparison | None = None
    pre_accuracy: float | None = None
    post_accuracy: float | None = None
    post_labelled: int = 0
    post_tickets: int = 0
    post_auto: int = 0


def _read_store(
    database: Database,
    *,
    model_name: str,
    since: datetime,
    production: str | None,
    previous: str | None,
) -> _StoreReading:
    with database.session() as session:
        window = snapshot.load_ticket_log(session, since=since)
        errors = snapshot.count_prediction_errors(session, since=since)
        started = (
            promoted_at(session, model_name=model_name, version=production) if production else None
        )
        regressed = regressed_versions(session, model_name=model_name)
        production_history = (
            snapshot.load_ticket_log(session, model_version=production) if production else None
        )
        previous_history = (
            snapshot.load_ticket_log(session, model_version=previous) if previous else None
        )
    return _StoreReading(
        window=window,
        errors=errors,
        promoted_at=started,
        regressed=regressed,
        production_history=production_history,
        previous_history=previous_history,
    )


def _judge_production(
    client: MlflowClient,
    stored: _StoreReading,
    *,
    model_name: str,
    production: str | None,
    previous: str | None,
    quality: snapshot.Snapshot,
    config: rules.AlertConfig,
) -> _ProductionJudgement:
    history = stored.production_history
    if production is None or history is None:
        return _ProductionJudgement()
    figures = evaluation_figures(
        client, model_name, production, categories=list(quality.category_accuracy)
    )
    production_figures = _figures(production, figures.proven, history)
    previous_figures = None
    if previous is not None and stored.previous_history is not None:
        previous_figures = _figures(
            previous, proven_accuracy(client, model_name, previous), stored.previous_history
        )
    started = stored.promoted_at
    since_promotion = history.since(started) if started is not None else history
    outcomes = _outcomes(since_promotion)
    live = LiveAccuracy(correct=sum(outcomes), labelled=len(outcomes))
    pre_accuracy = None
    if started is not None:
        pre_accuracy, _ = _accuracy(stored.window.before(started))
    sequential: SequentialResult | None = None
    comparison: ProvenComparison | None = None
    if figures.proven is not None:
        confidence = config.sequential.proven_confidence
        sequential = cusum(
            outcomes, baseline=figures.proven.lower_bound(confidence), config=config.sequential
        )
        comparison = rules.compare_with_proven(
            live, figures.proven, confidence=confidence, alpha=_floor_alpha(config)
        )
    return _ProductionJudgement(
        figures=figures,
        production_figures=production_figures,
        previous_figures=previous_figures,
        live=live,
        sequential=sequential,
        comparison=comparison,
        pre_accuracy=pre_accuracy,
        post_accuracy=live.accuracy,
        post_labelled=live.labelled,
        post_tickets=len(since_promotion),
        post_auto=int(np.asarray(since_promotion["auto_applied"], dtype=bool).sum()),
    )


def _floor_alpha(config: rules.AlertConfig) -> float:
    for rule in config.rules:
        if rule.incident == rules.BELOW_PROVEN:
            return rule.alpha
    return 0.01


def _recent_tickets(config: rules.AlertConfig) -> int:
    for rule in config.rules:
        if rule.metric == "confidence_ks":
            return rule.recent_tickets
    return 0


def _figures(
    version: str, proven: ProvenAccuracy | None, history: snapshot.TicketLog
) -> VersionFigures:
    live, labelled = _accuracy(history)
    return VersionFigures(
        version=version, proven=proven, live_accuracy=live, live_labelled=labelled
    )


def store_evaluations(
    *,
    settings: Settings,
    database: Database,
    config: rules.AlertConfig,
    production: str | None,
    now: datetime | None = None,
) -> list[rules.Evaluation]:
    """The rule verdicts that need only the ticket store (no registry, no sequential test).

    Used where no MLflow client is at hand, e.g. a service's ``/metrics``. Without the
    version's evaluation figures, relative rules report no data and the accuracy floor is
    reported without judging an incident (the monitor does that).
    """
    now = now or utcnow()
    since = snapshot.window_start(now, config.window_days)
    with database.session() as session:
        window = snapshot.load_ticket_log(session, since=since)
        errors = snapshot.count_prediction_errors(session, since=since)
    overall, quality = _snapshots(
        window, errors=errors, production=production, config=config, settings=settings
    )
    return rules.evaluate(config=config, quality=quality, service=overall)
