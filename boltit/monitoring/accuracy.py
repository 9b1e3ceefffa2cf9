"""The runbook's helper scripts as functions: model metrics and accuracy recomputed from the store.

Accuracy here is always "the model's category equals the agent's feedback category", over
tickets that received feedback, counted by the day the ticket was created.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from mlflow import MlflowClient

from boltit.core.db import Database
from boltit.core.errors import BadInputError
from boltit.core.evaluation import feedback_outcomes, live_accuracy
from boltit.core.schema import utcnow
from boltit.monitoring import snapshot
from boltit.monitoring.status import aliases, validation_accuracy


@dataclass(frozen=True)
class AccuracyReport:
    """Accuracy over a window, overall and broken down."""

    since: datetime
    tickets: int
    labelled: int
    accuracy: float | None
    by_day: pd.DataFrame
    by_version: pd.DataFrame
    by_category: pd.DataFrame


def _breakdown(frame: pd.DataFrame, key: pd.Series, name: str) -> pd.DataFrame:
    labelled, hits = feedback_outcomes(
        frame["category"].to_numpy(), frame["feedback_category"].to_numpy()
    )
    table = pd.DataFrame(
        {name: key.to_numpy(), "labelled": labelled, "correct": hits, "tickets": 1}
    )
    grouped = table.groupby(name, sort=True)[["tickets", "labelled", "correct"]].sum()
    grouped["accuracy"] = grouped["correct"] / grouped["labelled"].where(grouped["labelled"] > 0)
    return grouped.reset_index()


def recompute_accuracy(
    database: Database, *, days: float, now: datetime | None = None
) -> AccuracyReport:
    """Accuracy over the last ``days`` days from stored predictions and feedback.

    Raises:
        BadInputError: ``days`` is not positive.
    """
    if days <= 0:
        raise BadInputError(f"--days must be positive, got {days:g}")
    since = snapshot.window_start(now or utcnow(), days)
    with database.session() as session:
        frame = snapshot.load_tickets(session, since=since)
        # The figure serving's classification_accuracy_7d and the monitor report.
        overall = live_accuracy(session, since=since)
    day = frame["created_at"].dt.strftime("%Y-%m-%d")
    truth = frame["feedback_category"].fillna("(no feedback)")
    return AccuracyReport(
        since=since,
        tickets=len(frame),
        labelled=overall.labelled,
        accuracy=overall.accuracy,
        by_day=_breakdown(frame, day, "day"),
        by_version=_breakdown(frame, frame["model_version"], "model_version"),
        by_category=_breakdown(frame, truth, "category"),
    )


@dataclass(frozen=True)
class VersionMetrics:
    """One registered version's figures: what it validated at and how it does live."""

    version: str
    aliases: list[str]
    validation_accuracy: float | None
    tickets: int
    labelled: int
    live_accuracy: float | None
    mean_confidence: float | None
    auto_apply_rate: float | None
    latency_p95_seconds: float | None


def model_metrics(
    *, database: Database, client: MlflowClient, name: str, days: float = 7.0
) -> list[VersionMetrics]:
    """Per version: aliases, validation accuracy (run metric ``accuracy``) and live figures."""
    if days <= 0:
        raise BadInputError(f"--days must be positive, got {days:g}")
    since = snapshot.window_start(utcnow(), days)
    with database.session() as session:
        frame = snapshot.load_tickets(session, since=since)
    by_alias = aliases(client, name)
    versions = set(frame["model_version"].astype(str)) | set(by_alias.values())
    rows: list[VersionMetrics] = []
    for version in sorted(versions, key=lambda v: (len(v), v)):
        served = frame[frame["model_version"].astype(str) == version]
        figures = snapshot.compute_snapshot(served, window_days=days, recent_tickets=0)
        rows.append(
            VersionMetrics(
                version=version,
                aliases=sorted(alias for alias, v in by_alias.items() if v == version),
                validation_accuracy=validation_accuracy(client, name, version),
                tickets=figures.tickets,
                labelled=figures.labelled,
                live_accuracy=figures.accuracy,
                mean_confidence=figures.mean_confidence,
                auto_apply_rate=figures.auto_apply_rate,
                latency_p95_seconds=figures.latency_p95_seconds,
            )
        )
    return rows
