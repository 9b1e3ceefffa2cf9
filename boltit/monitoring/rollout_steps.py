"""What follows from a rollout's verdict, and stopping one by hand.

``advance`` moves to the next share; ``abort_on_regression`` puts the share back to 0, opens an
incident and pages; ``finish`` puts the share back to 0 and promotes through the gates;
``stop_rollout`` is ``boltit rollout abort`` and the loop's Ctrl-C. Each first moves the
rollout row with a compare-and-set, so only one of two racing callers acts.
``RolloutTarget`` (what a rollout acts on) and ``Look`` (one judgement and its outcome) are
shared with ``boltit.monitoring.rollout``, which starts and runs rollouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlflow import MlflowClient
from sqlalchemy.orm import Session

from boltit.core import audit, flags
from boltit.core.db import Database
from boltit.core.errors import BoltitError, NotFoundError
from boltit.core.schema import Rollout, utcnow
from boltit.core.settings import Settings
from boltit.monitoring import incidents, rollout_store
from boltit.monitoring.notify import IncidentRef, Notifier
from boltit.monitoring.rollout_decision import StepEvidence, Verdict
from boltit.monitoring.rollout_store import RolloutView
from boltit.registry.promote import promote

ROLLOUT_ABORTED = "rollout_aborted"
"""Incident timeline kind of an automatic abort."""


@dataclass(frozen=True)
class RolloutTarget:
    """Which stores and model a rollout acts on, and who acts."""

    settings: Settings
    database: Database
    client: MlflowClient
    name: str
    actor: str


@dataclass(frozen=True)
class Look:
    """One judgement of the current step and what followed from it.

    ``outcome`` is ``running`` (held), ``advanced``, ``aborted``, ``finished`` or
    ``stopped`` (someone else ended the rollout).
    """

    rollout: RolloutView
    outcome: str
    evidence: StepEvidence | None = None
    verdict: Verdict | None = None
    promoted: bool | None = None
    """After the last step: whether ``promote`` moved Production (None before that)."""

    @property
    def ended(self) -> bool:
        return self.outcome in ("aborted", "finished", "stopped")


def set_canary(session: Session, target: RolloutTarget, percent: float, reason: str) -> None:
    flags.set_canary_percent(session, percent, actor=target.actor, reason=reason)


def entry(evidence: StepEvidence, verdict: Verdict, at: datetime) -> dict[str, Any]:
    return {"at": at.isoformat(), "evidence": evidence.to_dict(), "verdict": verdict.to_dict()}


def reread(target: RolloutTarget, rollout_id: int) -> RolloutView:
    with target.database.session() as session:
        return rollout_store.view(session.get_one(Rollout, rollout_id))


def advance(
    target: RolloutTarget,
    rollout: RolloutView,
    evidence: StepEvidence,
    verdict: Verdict,
    now: datetime,
) -> Look:
    step = rollout.step_index + 1
    percent = rollout.steps[step]
    with target.database.session() as session:
        moved = rollout_store.move(
            session,
            rollout.id,
            at_step=rollout.step_index,
            step_index=step,
            percent=percent,
            step_started_at=utcnow(),
            evidence_entry=entry(evidence, verdict, now),
        )
        if moved:
            why = f"rollout {rollout.id}: step {step + 1} of {len(rollout.steps)}: {verdict.reason}"
            set_canary(session, target, percent, why)
            _audit(
                session,
                target,
                rollout,
                action="rollout_step",
                reason=verdict.reason,
                details={"from": rollout.percent, "to": percent},
            )
    if not moved:
        return Look(reread(target, rollout.id), "stopped", evidence, verdict)
    return Look(reread(target, rollout.id), "advanced", evidence, verdict)


def abort_on_regression(
    target: RolloutTarget,
    rollout: RolloutView,
    evidence: StepEvidence,
    verdict: Verdict,
    now: datetime,
) -> Look:
    reason = f"regression at {rollout.percent:g}%: {verdict.reason}"
    with target.database.session() as session:
        if not _abort(
            session,
            target,
            rollout,
            reason=reason,
            canary_reason=f"rollout {rollout.id} aborted: {verdict.reason}",
            details={"signal": verdict.signal, "p_value": verdict.p_value},
            at_step=rollout.step_index,
            evidence_entry=entry(evidence, verdict, now),
        ):
            return Look(reread(target, rollout.id), "stopped", evidence, verdict)
        incident = incidents.open_incident(
            session,
            title=f"gradual rollout of v{rollout.version} aborted at {rollout.percent:g}% "
            f"({verdict.signal or 'regression'})",
            model_name=target.name,
            model_version=rollout.version,
            actor=target.actor,
            details={"rollout": rollout.id, "evidence": evidence.to_dict()},
        )
        incidents.add_event(
            session,
            incident,
            kind=ROLLOUT_ABORTED,
            message=f"canary share {rollout.percent:g}% -> 0%; {reason}",
            details={"rollout": rollout.id, **verdict.to_dict()},
        )
        session.get_one(Rollout, rollout.id).incident_id = incident.id
        ref = IncidentRef.of(incident)
    with Notifier(settings=target.settings, database=target.database) as notifier:
        notifier.tell(
            ref,
            "open",
            f"gradual rollout aborted, canary back to 0%: {verdict.reason}",
            {"rollout": rollout.id, "step": rollout.step_index, "percent": rollout.percent},
        )
    return Look(reread(target, rollout.id), "aborted", evidence, verdict)


def finish(
    target: RolloutTarget,
    rollout: RolloutView,
    evidence: StepEvidence,
    verdict: Verdict,
    now: datetime,
) -> Look:
    with target.database.session() as session:
        moved = rollout_store.move(
            session,
            rollout.id,
            at_step=rollout.step_index,
            status=rollout_store.FINISHED,
            percent=0.0,
            reason="every step passed; promoting through the gates",
            evidence_entry=entry(evidence, verdict, now),
        )
        if not moved:
            return Look(reread(target, rollout.id), "stopped", evidence, verdict)
        set_canary(session, target, 0.0, f"rollout {rollout.id} finished: {verdict.reason}")
    refusal: str | None = None
    try:
        promote(
            client=target.client,
            database=target.database,
            name=target.name,
            actor=target.actor,
            settings=target.settings,
            version=rollout.version,
            reason=f"gradual rollout {rollout.id} passed every step: {verdict.reason}",
        )
    except BoltitError as exc:
        refusal = str(exc)
    outcome = (
        f"every step passed; promoted v{rollout.version} to Production"
        if refusal is None
        else f"every step passed, but promotion was refused (Production unchanged): {refusal}"
    )
    with target.database.session() as session:
        session.get_one(Rollout, rollout.id).reason = outcome
        _audit(
            session,
            target,
            rollout,
            action="rollout_finish",
            reason=outcome,
            details={"promoted": refusal is None, "refusal": refusal},
        )
    return Look(reread(target, rollout.id), "finished", evidence, verdict, refusal is None)


def stop_rollout(
    target: RolloutTarget,
    *,
    reason: str,
    version: str | None = None,
    since: datetime | None = None,
) -> RolloutView:
    """End the model's running rollout by hand (or on Ctrl-C): canary to 0, aborted.

    ``version`` and ``since`` narrow it to the rollout of that version started since then
    (by ``target.actor``): the one a command began itself, never someone else's.

    Raises:
        NotFoundError: No (such) rollout of the model runs.
    """
    with target.database.session() as session:
        row = rollout_store.running(session, model_name=target.name)
        mine = row is not None and (
            since is None
            or (row.version == version and row.actor == target.actor and row.started_at >= since)
        )
        if row is None or not mine:
            raise NotFoundError(f"no rollout of {target.name} is running")
        rollout = rollout_store.view(row)
        why = f"aborted by {target.actor}: {reason}"
        _abort(
            session,
            target,
            rollout,
            reason=why,
            canary_reason=f"rollout {rollout.id} {why}",
            details={"percent": rollout.percent},
        )
    return reread(target, rollout.id)


def _abort(
    session: Session,
    target: RolloutTarget,
    rollout: RolloutView,
    *,
    reason: str,
    canary_reason: str,
    details: dict[str, Any],
    at_step: int | None = None,
    evidence_entry: dict[str, Any] | None = None,
) -> bool:
    """Mark the rollout aborted, its share back to 0, audited; False (and nothing written)
    when it no longer runs (at ``at_step``)."""
    if not rollout_store.move(
        session,
        rollout.id,
        at_step=at_step,
        status=rollout_store.ABORTED,
        percent=0.0,
        reason=reason,
        evidence_entry=evidence_entry,
    ):
        return False
    set_canary(session, target, 0.0, canary_reason)
    _audit(
        session, target, rollout, action="rollout_abort", reason=reason, details=details, back=True
    )
    return True


def _audit(
    session: Session,
    target: RolloutTarget,
    rollout: RolloutView,
    *,
    action: str,
    reason: str,
    details: dict[str, Any],
    back: bool = False,
) -> None:
    """Audit a rollout's move: toward the challenger, or ``back`` to the champion."""
    champion, challenger = rollout.champion_version, rollout.version
    audit.record(
        session,
        action=action,
        actor=target.actor,
        model_name=target.name,
        from_version=challenger if back else champion,
        to_version=champion if back else challenger,
        reason=reason,
        details={"rollout": rollout.id, **details},
    )
