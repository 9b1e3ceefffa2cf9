"""Rollout rows: create one (one running per model), move it on, read it back.

Every change of a running rollout is a compare-and-set (``UPDATE ... WHERE status =
'running' AND step_index = ...``): the loop and ``boltit rollout abort`` from another shell
may act at the same moment, and exactly one of them wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from boltit.core.errors import BoltitError
from boltit.core.schema import Rollout, utcnow

RUNNING = "running"
ABORTED = "aborted"
FINISHED = "finished"


class RolloutRunningError(BoltitError):
    """A second rollout of a model while one runs."""


@dataclass(frozen=True)
class RolloutView:
    """A detached copy of a rollout row."""

    id: int
    model_name: str
    version: str
    champion_version: str | None
    steps: list[float]
    step_index: int
    percent: float
    interval_seconds: float
    min_rows: int
    status: str
    reason: str | None
    actor: str
    started_at: datetime
    step_started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    incident_id: int | None
    evidence: dict[str, Any]

    @property
    def last_step(self) -> bool:
        return self.step_index >= len(self.steps) - 1

    @property
    def history(self) -> list[dict[str, Any]]:
        """The verdicts that changed something, oldest first."""
        return list(self.evidence.get("steps", []))


def view(row: Rollout) -> RolloutView:
    return RolloutView(
        id=row.id,
        model_name=row.model_name,
        version=row.version,
        champion_version=row.champion_version,
        steps=[float(step) for step in row.steps],
        step_index=row.step_index,
        percent=row.percent,
        interval_seconds=row.interval_seconds,
        min_rows=row.min_rows,
        status=row.status,
        reason=row.reason,
        actor=row.actor,
        started_at=row.started_at,
        step_started_at=row.step_started_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        incident_id=row.incident_id,
        evidence=dict(row.evidence or {}),
    )


def running(session: Session, *, model_name: str) -> Rollout | None:
    """The model's running rollout, if any."""
    return session.scalars(select(Rollout).where(Rollout.running_model == model_name)).first()


def latest(session: Session, *, model_name: str) -> Rollout | None:
    """The model's newest rollout, running or not."""
    query = (
        select(Rollout)
        .where(Rollout.model_name == model_name)
        .order_by(Rollout.started_at.desc(), Rollout.id.desc())
    )
    return session.scalars(query).first()


def refuse_if_running(session: Session, *, model_name: str) -> None:
    """Raise ``RolloutRunningError`` naming the running rollout of ``model_name``."""
    current = running(session, model_name=model_name)
    if current is not None:
        raise RolloutRunningError(
            f"rollout {current.id} of v{current.version} is already running for {model_name} "
            f"(at {current.percent:g}%, started by {current.actor}); wait for it or run "
            "`boltit rollout abort --reason TEXT`"
        )


def move(
    session: Session,
    rollout_id: int,
    *,
    at_step: int | None = None,
    evidence_entry: dict[str, Any] | None = None,
    **values: Any,
) -> bool:
    """Change a running rollout (at step ``at_step`` when given); False when it no longer
    runs there (someone else moved it first), and then nothing is written.

    ``status`` other than running clears ``running_model``, which frees the model for
    another rollout.
    """
    row = session.get(Rollout, rollout_id)
    if row is None:
        return False
    now = utcnow()
    values["updated_at"] = now
    if values.get("status", RUNNING) != RUNNING:
        values.setdefault("running_model", None)
        values.setdefault("finished_at", now)
    if evidence_entry is not None:
        evidence = dict(row.evidence or {})
        evidence["steps"] = [*evidence.get("steps", []), evidence_entry]
        values["evidence"] = evidence
    query = update(Rollout).where(Rollout.id == rollout_id, Rollout.status == RUNNING)
    if at_step is not None:
        query = query.where(Rollout.step_index == at_step)
    moved = session.execute(query.values(**values).execution_options(synchronize_session=False))
    session.expire(row)
    return bool(getattr(moved, "rowcount", 0))
