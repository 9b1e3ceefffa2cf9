"""Frames from the ticket store: prediction logs, date windows and their known categories."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pandas as pd
from mlflow import MlflowClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from boltit.core.errors import BadInputError, NotFoundError
from boltit.core.model_contract import (
    PREDICTED_CATEGORY_COLUMN,
    ModelContractError,
    load_classifier,
    read_eval_split,
)
from boltit.core.schema import Ticket
from boltit.data_checks.windows import Window, parse_window

__all__ = [
    "PREDICTION_COLUMNS",
    "Window",
    "days_ago",
    "known_categories",
    "parse_window",
    "prediction_log",
    "training_run_baseline",
]

PREDICTION_COLUMNS = [
    "id",
    "text",
    "category",
    "priority",
    "confidence",
    "model_version",
    "latency_ms",
    "created_at",
    "feedback_category",
]


def prediction_log(
    session: Session, *, since: datetime | None = None, until: datetime | None = None
) -> pd.DataFrame:
    """Stored predictions with ``since <= created_at < until``, oldest first."""
    query = select(*(getattr(Ticket, c) for c in PREDICTION_COLUMNS)).order_by(Ticket.created_at)
    if since is not None:
        query = query.where(Ticket.created_at >= since)
    if until is not None:
        query = query.where(Ticket.created_at < until)
    frame = pd.DataFrame(session.execute(query).all(), columns=PREDICTION_COLUMNS)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame


def days_ago(days: int, *, now: datetime | None = None) -> datetime:
    """The start of a window of ``days`` days ending now.

    Raises:
        BadInputError: ``days`` is not positive.
    """
    if days < 1:
        raise BadInputError(f"--days must be at least 1 (got {days})")
    return (now or datetime.now(UTC)) - timedelta(days=days)


def training_run_baseline(client: MlflowClient, run_id: str, *, predictions: bool) -> pd.DataFrame:
    """A training run's logged ``evaluation/eval_split.parquet`` as a drift baseline.

    Args:
        client: MLflow client on the tracking store holding the run.
        run_id: The training run.
        predictions: Compare with stored predictions: the baseline's ``category`` becomes
            the model's ``predicted_category`` (what the store holds), not the true label.

    Raises:
        NotFoundError: The run or its evaluation split does not exist.
    """
    try:
        frame = read_eval_split(client, run_id)
    except ModelContractError as exc:
        raise NotFoundError(f"no drift baseline: {exc}") from exc
    if predictions and PREDICTED_CATEGORY_COLUMN in frame.columns:
        frame = frame.assign(category=frame[PREDICTED_CATEGORY_COLUMN])
    return frame


def known_categories(
    *, model_name: str, versions: Iterable[str], categories: Iterable[str] | None = None
) -> dict[str, set[str]]:
    """Categories each version can predict: ``categories`` for all, else from the registry.

    A version the registry cannot load gets no categories, so its predictions fail the
    ``categories_known`` check rather than pass unchecked.
    """
    wanted = sorted({str(v) for v in versions if v is not None and str(v).strip()})
    if categories is not None:
        given = {c.strip() for c in categories if c.strip()}
        return dict.fromkeys(wanted, given)
    known: dict[str, set[str]] = {}
    for version in wanted:
        try:
            classifier = load_classifier(f"models:/{model_name}/{version}")
            known[version] = {str(c) for c in classifier.categories}  # type: ignore[attr-defined]
        except Exception:  # an unloadable version is itself the finding
            known[version] = set()
    return known
