"""Gradual rollouts: raise the challenger's share step by step, abort on a regression.

``start_rollout`` checks the version (it passed its gates, Production exists and is another
version), claims the model's one running rollout, points ``challenger`` at the version and
sets the canary share to the first step. ``look`` judges the current step once
(``rollout_evidence`` + ``rollout_decision``) and acts through ``rollout_steps``: abort
(canary to 0, an incident that pages), advance to the next share, or, after the last step,
canary to 0 and the ordinary ``promote`` (its gates decide; a refusal leaves Production as
it was). ``run_rollout`` looks until the rollout ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from boltit.core import audit, flags
from boltit.core.db import Database
from boltit.core.errors import BadInputError, BoltitError, GateFailedError, NotFoundError
from boltit.core.schema import Rollout, utcnow
from boltit.core.vocabulary import PRODUCTION, TAG_VALIDATION_STATUS, VALIDATION_PASSED
from boltit.monitoring import rollout_store
from boltit.monitoring.rollout_decision import Action, RolloutPolicy, decide
from boltit.monitoring.rollout_evidence import step_evidence
from boltit.monitoring.rollout_plan import RolloutPlan
from boltit.monitoring.rollout_steps import (
    Look,
    RolloutTarget,
    abort_on_regression,
    advance,
    finish,
    set_canary,
)
from boltit.monitoring.rollout_store import RolloutView
from boltit.registry.approval import approval_refusal
from boltit.registry.gate_config import load_gate_config
from boltit.registry.lookup import aliases, get_version
from boltit.registry.transitions import mark_challenger


def _checked_version(target: RolloutTarget, version: str) -> str:
    """Why ``version`` may not roll out raises here: the same gate verdict ``promote`` reads."""
    get_version(target.client, name=target.name, version=version)
    tags = dict(target.client.get_model_version(target.name, version).tags or {})
    status = tags.get(TAG_VALIDATION_STATUS)
    if status != VALIDATION_PASSED:
        raise GateFailedError(
            f"version {version} has not passed its gates (validation_status="
            f"{status or 'never validated'}); run `boltit validate {version}` first"
        )
    with target.database.session() as session:
        unapproved = approval_refusal(
            session,
            load_gate_config(target.settings.gates_config),
            name=target.name,
            version=version,
        )
    if unapproved is not None:
        raise GateFailedError(unapproved)
    champion = aliases(target.client, name=target.name).get(PRODUCTION)
    if champion is None:
        raise BadInputError(
            f"{target.name} has no Production version to compare with; promote the first "
            "version directly"
        )
    if champion == version:
        raise BadInputError(f"v{version} already serves {target.name}; nothing to roll out")
    return champion


def start_rollout(
    target: RolloutTarget,
    *,
    version: str,
    plan: RolloutPlan,
    reason: str | None = None,
    policy: RolloutPolicy | None = None,
) -> RolloutView:
    """Begin rolling ``version`` out at ``plan.steps[0]`` percent.

    Raises:
        GateFailedError: The version has not passed its gates (or waits for an approval).
        BadInputError: No Production version, or the version already serves.
        RolloutRunningError: Another rollout of the model runs.
    """
    version = str(version).strip()
    champion = _checked_version(target, version)
    chosen = policy or RolloutPolicy(interval_seconds=plan.interval_seconds)
    chosen = replace(chosen, interval_seconds=plan.interval_seconds, min_rows=plan.min_rows)
    flags.seed_defaults(target.database, flags.defaults_from(target.settings))
    why = reason or f"gradual rollout of v{version}"
    try:
        with target.database.session() as session:
            rollout_store.refuse_if_running(session, model_name=target.name)
            row = Rollout(
                model_name=target.name,
                version=version,
                champion_version=champion,
                steps=list(plan.steps),
                step_index=0,
                percent=0.0,
                interval_seconds=plan.interval_seconds,
                min_rows=plan.min_rows,
                status=rollout_store.RUNNING,
                running_model=target.name,
                reason=why,
                actor=target.actor,
                evidence={"policy": asdict(chosen), "steps": []},
            )
            session.add(row)
            session.flush()
            rollout_id = row.id
    except IntegrityError:  # another start won the race between the check and the insert
        with target.database.session() as session:
            rollout_store.refuse_if_running(session, model_name=target.name)
        raise
    try:
        # Before any share goes to the challenger: replicas route canary tickets to it.
        mark_challenger(target.client, name=target.name, version=version)
    except BoltitError as exc:
        with target.database.session() as session:
            rollout_store.move(
                session, rollout_id, status=rollout_store.ABORTED, reason=f"not started: {exc}"
            )
        raise
    first = plan.steps[0]
    with target.database.session() as session:
        now = utcnow()
        rollout_store.move(session, rollout_id, percent=first, step_started_at=now)
        set_canary(session, target, first, f"rollout {rollout_id}: v{version} starts at {first:g}%")
        audit.record(
            session,
            action="rollout_start",
            actor=target.actor,
            model_name=target.name,
            from_version=champion,
            to_version=version,
            reason=why,
            details={
                "rollout": rollout_id,
                "steps": list(plan.steps),
                "interval_seconds": plan.interval_seconds,
                "min_rows": plan.min_rows,
                "policy": asdict(chosen),
            },
        )
        return rollout_store.view(session.get_one(Rollout, rollout_id))


def policy_of(rollout: RolloutView) -> RolloutPolicy:
    """The policy recorded at the start (its interval and min rows from the row)."""
    stored = dict(rollout.evidence.get("policy") or {})
    stored.update(interval_seconds=rollout.interval_seconds, min_rows=rollout.min_rows)
    return RolloutPolicy(**stored)


def look(target: RolloutTarget, rollout_id: int, *, now: datetime | None = None) -> Look:
    """Judge the rollout's current step once and act on the verdict."""
    now = now or utcnow()
    with target.database.session() as session:
        row = session.get(Rollout, rollout_id)
        if row is None:
            raise NotFoundError(f"rollout {rollout_id} does not exist")
        rollout = rollout_store.view(row)
        if rollout.status != rollout_store.RUNNING:
            return Look(rollout, "stopped")
        evidence = step_evidence(
            session,
            model_name=rollout.model_name,
            version=rollout.version,
            champion=rollout.champion_version,
            step_index=rollout.step_index,
            percent=rollout.percent,
            since=rollout.step_started_at,
            now=now,
        )
    verdict = decide(evidence, policy_of(rollout))
    if verdict.action is Action.abort:
        return abort_on_regression(target, rollout, evidence, verdict, now)
    if verdict.action is Action.advance:
        if rollout.last_step:
            return finish(target, rollout, evidence, verdict, now)
        return advance(target, rollout, evidence, verdict, now)
    return Look(rollout, "running", evidence, verdict)


def latest_rollout(database: Database, *, model_name: str) -> RolloutView:
    """The model's running or newest rollout.

    Raises:
        NotFoundError: The model never had one.
    """
    with database.session() as session:
        row = rollout_store.running(session, model_name=model_name) or rollout_store.latest(
            session, model_name=model_name
        )
        if row is None:
            raise NotFoundError(f"{model_name} has had no gradual rollout yet")
        return rollout_store.view(row)


def check_every(rollout: RolloutView) -> float:
    """Seconds between looks: the policy's ``looks`` per interval, at least every 0.5 s."""
    return max(0.5, rollout.interval_seconds / max(1, policy_of(rollout).looks))


def run_rollout(
    target: RolloutTarget,
    rollout_id: int,
    *,
    progress: Callable[[Look], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Look:
    """Look at the rollout until it ends; returns the last look."""
    while True:
        current = look(target, rollout_id)
        if progress is not None:
            progress(current)
        if current.ended:
            return current
        sleep(check_every(current.rollout))
