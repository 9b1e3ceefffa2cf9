"""Root-cause hints for an incident, in the runbook's order of suspects.

Recent model change, data distribution shift, data quality of the predictions, and model
service errors. Each hint is a sentence for the timeline plus details for the report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pandas as pd

from boltit.core import audit
from boltit.core.db import Database
from boltit.core.schema import AuditEvent
from boltit.core.settings import Settings
from boltit.monitoring import snapshot
from boltit.monitoring.rules import Level
from boltit.monitoring.status import SERVING_ACTIONS, MonitorStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hint:
    """One suspect and what the evidence says about it."""

    key: str
    message: str
    suspicious: bool
    details: dict[str, Any] = field(default_factory=dict)


def root_cause_hints(
    *, settings: Settings, database: Database, status: MonitorStatus
) -> list[Hint]:
    """Every hint; a check that cannot run says so instead of failing the response."""
    hints = [promotion_hint(database=database, status=status)]
    hints.append(category_hint(status))
    frame = _recent_predictions(database=database, status=status)
    for check in (drift_hint, data_check_hint):
        try:
            hints.append(check(settings=settings, database=database, status=status, frame=frame))
        except Exception as exc:  # a broken check must not stop the incident response
            log.exception("root-cause check %s failed", check.__name__)
            hints.append(
                Hint(check.__name__.removesuffix("_hint"), f"{check.__name__} failed: {exc}", False)
            )
    hints.append(load_failure_hint(database=database, status=status))
    return hints


def promotion_hint(*, database: Database, status: MonitorStatus) -> Hint:
    """Was the current version put live recently, and how?"""
    with database.session() as session:
        events = [
            e
            for e in audit.history(
                session, model_name=status.model_name, actions=list(SERVING_ACTIONS)
            )
            if e.to_version == status.production and _put_it_live(e)
        ]
    if not events:
        return Hint("promotion", f"no recorded promotion of v{status.production}", False)
    event = events[-1]
    age = status.computed_at - event.at
    forced = " FORCED (gates bypassed)" if event.forced else ""
    message = (
        f"v{event.to_version} went live by {event.action}{forced} by {event.actor} "
        f"{_age(age)} ago (from v{event.from_version or '-'})"
        + (f": {event.reason}" if event.reason else "")
    )
    return Hint(
        "promotion",
        message,
        suspicious=event.forced or age <= timedelta(days=status.config.window_days),
        details={
            "action": event.action,
            "actor": event.actor,
            "at": event.at.isoformat(),
            "forced": event.forced,
            "from_version": event.from_version,
            "to_version": event.to_version,
        },
    )


def _put_it_live(event: AuditEvent) -> bool:
    """A refused promote or rollback, or a reverted sync, moved nothing: not a suspect."""
    outcome = (event.details or {}).get("outcome")
    if event.action == "registry_sync":
        return outcome == "accepted"
    return outcome != "refused"


def category_hint(status: MonitorStatus) -> Hint:
    """Are all categories affected, or a few? (Runbook: "all categories or specific ones?")

    Each category is judged against its own recall on the version's evaluation set (the
    ``category_accuracy`` rule), so a category that was always hard is not a suspect.
    """
    figures = status.quality.category_accuracy
    if not figures:
        return Hint("categories", "no labelled tickets per category yet", False)
    verdicts = {e.subject: e for e in status.evaluations if e.subject is not None}

    def shortfall(name: str) -> float:
        verdict = verdicts.get(name)
        if verdict is None or verdict.reference is None:
            return 0.0
        return verdict.reference - figures[name].accuracy

    def shown(name: str) -> str:
        verdict, measured = verdicts.get(name), figures[name]
        against = (
            f" vs {verdict.reference:.2f} on evaluation"
            if verdict is not None and verdict.reference is not None
            else ""
        )
        return f"{name} {measured.accuracy:.2f}{against} (n={measured.labelled})"

    worst = sorted(figures, key=shortfall, reverse=True)[:3]
    low = [
        name
        for name, verdict in verdicts.items()
        if name in figures and verdict.level in (Level.warning, Level.critical)
    ]
    scope = (
        "all categories" if len(low) == len(figures) else f"{len(low)} of {len(figures)} categories"
    )
    return Hint(
        "categories",
        f"{scope} below their evaluation-set recall by the category_accuracy margins; "
        f"largest shortfalls: {', '.join(shown(name) for name in worst)}",
        suspicious=bool(low),
        details={
            name: {
                "accuracy": f.accuracy,
                "labelled": f.labelled,
                "evaluation_recall": verdicts[name].reference if name in verdicts else None,
            }
            for name, f in figures.items()
        },
    )


def load_failure_hint(*, database: Database, status: MonitorStatus) -> Hint:
    """Model service issues: versions a replica refused to load in the window."""
    since = snapshot.window_start(status.computed_at, status.config.window_days)
    with database.session() as session:
        failures = audit.history(
            session, model_name=status.model_name, actions=["load_failure"], since=since
        )
        errors = snapshot.count_prediction_errors(session, since=since)
    if not failures and not errors:
        return Hint("service", "no model load failures or failed predictions in the window", False)
    latest = failures[-1] if failures else None
    message = f"{len(failures)} model load failure(s), {errors} failed prediction(s) in the window"
    if latest is not None:
        reason = (latest.reason or "")[:200]
        message += f"; latest: v{latest.to_version} refused by {latest.actor}: {reason}"
    return Hint(
        "service",
        message,
        suspicious=True,
        details={"load_failures": len(failures), "prediction_errors": errors},
    )


def drift_hint(
    *, settings: Settings, database: Database, status: MonitorStatus, frame: pd.DataFrame
) -> Hint:
    """Distribution shift: tickets since Production went live against the ones before."""
    from boltit.data_checks.drift import detect_drift, load_drift_config

    if status.promoted_at is None or frame.empty:
        return Hint("drift", "drift not checked: no promotion time or no recent tickets", False)
    before = frame[frame["created_at"] < status.promoted_at]
    after = frame[frame["created_at"] >= status.promoted_at]
    if before.empty or after.empty:
        return Hint("drift", "drift not checked: no tickets on one side of the promotion", False)
    report = detect_drift(
        before,
        after,
        config=load_drift_config(settings.drift_config),
        baseline_label="before the promotion",
        current_label=f"since v{status.production} went live",
    )
    found = report.hints()
    message = (
        f"drift verdict {report.verdict.value} "
        f"({len(before)} tickets before the promotion, {len(after)} since)"
    )
    if found:
        message += ": " + "; ".join(found[:4])
    return Hint(
        "drift",
        message,
        suspicious=report.verdict.value in ("warning", "critical"),
        details={"verdict": report.verdict.value, "hints": found},
    )


def data_check_hint(
    *, settings: Settings, database: Database, status: MonitorStatus, frame: pd.DataFrame
) -> Hint:
    """The prediction-log suite over the window's tickets.

    Known categories are the agents' feedback categories (the label set in use), plus the
    categories predicted before Production went live.
    """
    from boltit.data_checks.suites import run_prediction_log_suite

    if frame.empty:
        return Hint("data_checks", "prediction-log suite not run: no tickets in the window", False)
    known = set(frame["feedback_category"].dropna().astype(str))
    if status.promoted_at is not None:
        known |= set(frame.loc[frame["created_at"] < status.promoted_at, "category"].astype(str))
    if not known:
        known = set(frame["category"].astype(str))
    report = run_prediction_log_suite(frame, known_categories=known)
    failed = [outcome.name for outcome in report.failures]
    message = (
        f"prediction-log suite passed over {len(frame)} tickets"
        if report.success
        else f"prediction-log suite FAILED over {len(frame)} tickets: {', '.join(failed)}"
    )
    return Hint("data_checks", message, suspicious=not report.success, details={"failed": failed})


def _recent_predictions(*, database: Database, status: MonitorStatus) -> pd.DataFrame:
    since = snapshot.window_start(status.computed_at, status.config.window_days)
    with database.session() as session:
        return snapshot.load_tickets(session, since=since, with_text=True)


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
