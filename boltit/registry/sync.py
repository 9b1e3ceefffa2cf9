"""``boltit registry sync``: adopt or revert Production changes made outside the CLI.

The MLflow UI can move a version to stage Production (legacy control) or move the
``Production`` alias by hand; no webhook fires for stage changes, so sync compares the
registry with the last Production the history recorded. A detected change is recorded,
gated, then accepted (aliases and stages made to agree, ``previous`` set) or reverted
(the reason written into the version's description), as the gate config's ``sync``
section says. A version a rollback would refuse (``boltit.registry.rollback_guard``: it failed its
gates, or an open or recent incident marked it regressed or rolled back from it) is reverted
without judging, naming the guards, unless ``sync.on_guarded`` is ``judge``. Under
``approval: required`` a version nobody approved is reverted even when its gates pass, and
approvals tagged in the UI (``approval=approved``) are adopted first (``boltit.registry.approval``).

Gating trusts the version's latest verdict when it passed against the current champion
under the current gate config (same config digest). Otherwise the version is judged again:
under the gate config recorded with its latest verdict (so ``validate --min-accuracy 0.75``
keeps meaning what it meant), else under the current one. The outcome says which.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mlflow import MlflowClient
from sqlalchemy.orm import Session

from boltit.core.db import Database
from boltit.core.errors import BoltitError
from boltit.core.locks import LockKind, hold
from boltit.core.schema import utcnow
from boltit.core.settings import Settings
from boltit.core.vocabulary import (
    PRODUCTION,
    STAGE_ARCHIVED,
    STAGE_PRODUCTION,
    UI_PRODUCTION_ALIAS,
)
from boltit.registry.approval import adopt_ui_approvals, approval_refusal
from boltit.registry.gate_config import GateConfig, load_gate_config
from boltit.registry.history import record_event, recorded_production
from boltit.registry.lookup import aliases, registry_errors
from boltit.registry.manifests import write_manifests
from boltit.registry.rollback_guard import Guard, version_guards
from boltit.registry.transitions import move_production, production_stage_versions, set_stage
from boltit.registry.validate import validate
from boltit.registry.verdicts import (
    RecordedVerdict,
    config_digest,
    recorded_config,
    recorded_verdict,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack is 3.12+

    from boltit.registry.target import Target


@dataclass(frozen=True)
class ObservedChange:
    """A Production change the history does not know about."""

    version: str | None
    via: str  # "stage" | "alias" | "ui_alias" (lowercase, as the UI saves it) | "alias_removed"
    recorded: str | None


@dataclass(frozen=True)
class SyncOutcome:
    """What sync did about one change."""

    change: ObservedChange
    outcome: str  # "accepted" | "reverted"
    gates_passed: bool | None
    reason: str
    judged: str | None = None  # "trusted" | "recorded_config" | "current_config" | "guarded"
    guards: tuple[Guard, ...] = ()  # why a rollback would refuse the version (sync.on_guarded)


@dataclass(frozen=True)
class Judgement:
    """How sync gated a version: the verdict it trusted or the validation it ran."""

    passed: bool
    judged: str
    reason: str
    config_digest: str


def judge(
    *,
    client: MlflowClient,
    database: Database,
    name: str,
    version: str,
    champion: str | None,
    actor: str,
    settings: Settings,
    config: GateConfig,
) -> Judgement:
    """Trust the version's verdict when it still applies; else validate it again."""
    with registry_errors(f"cannot read the verdict on version {version}"):
        verdict = recorded_verdict(client, name=name, version=version)
    if verdict is not None and verdict.trusted_for(champion=champion, config=config):
        return Judgement(True, "trusted", f"trusted {verdict.describe()}", config_digest(config))
    recorded = _recorded_config(client, verdict)
    judge_config = recorded or config
    if recorded is not None and verdict is not None:
        judged, under = "recorded_config", f"the gate config of its {verdict.describe()}"
    else:
        judged, under = "current_config", "the current gate config"
    digest = config_digest(judge_config)
    try:
        result = validate(
            client=client,
            database=database,
            name=name,
            version=version,
            actor=actor,
            settings=settings,
            config=judge_config,
            champion_version=champion,
            mark=False,
        )
    except BoltitError as exc:
        return Judgement(False, judged, f"cannot be validated: {exc}", digest)
    failed = "; ".join(r.describe() for r in result.failures)
    outcome = "gates passed" if result.passed else f"gates failed: {failed}"
    return Judgement(
        result.passed, judged, f"re-judged under {under} ({digest[:12]}): {outcome}", digest
    )


def _recorded_config(client: MlflowClient, verdict: RecordedVerdict | None) -> GateConfig | None:
    if verdict is None:
        return None
    with registry_errors(f"cannot read the report of version {verdict.version}"):
        return recorded_config(client, verdict)


def detect_change(client: MlflowClient, database: Database, *, name: str) -> ObservedChange | None:
    """The Production change made outside the CLI, if any (alias moves win over stages)."""
    with database.session() as session:
        recorded = recorded_production(session, model_name=name)
    current = aliases(client, name=name)
    serving = current.get(PRODUCTION)
    if serving is not None and serving != recorded:
        return ObservedChange(version=serving, via="alias", recorded=recorded)
    typed = current.get(UI_PRODUCTION_ALIAS)
    if typed is not None:
        return ObservedChange(version=typed, via="ui_alias", recorded=recorded)
    with registry_errors(f"cannot read the stages of {name!r}"):
        staged = production_stage_versions(client, name=name)
    others = [v for v in staged if v != recorded]
    if others:
        return ObservedChange(version=others[0], via="stage", recorded=recorded)
    if serving is None and recorded is not None:
        return ObservedChange(version=None, via="alias_removed", recorded=recorded)
    return None


def _append_description(client: MlflowClient, *, name: str, version: str, text: str) -> None:
    existing = client.get_model_version(name, version).description or ""
    combined = f"{existing}\n\n{text}" if existing else text
    client.update_model_version(name, version, description=combined)


@dataclass(frozen=True)
class _Decision:
    """What sync will do about a change, and why: the guards that fired, or a judgement."""

    action: str  # "accept" | "revert", the gate config's sync policy values
    why: str
    guards: list[Guard]
    judgement: Judgement | None = None

    @property
    def gates_passed(self) -> bool | None:
        return None if self.judgement is None else self.judgement.passed

    @property
    def judged(self) -> str | None:
        if self.judgement is not None:
            return self.judgement.judged
        return "guarded" if self.guards else None

    def details(self, *, outcome: str, via: str) -> dict[str, object]:
        """The history rows' details."""
        details: dict[str, object] = {
            "outcome": outcome,
            "via": via,
            "gates": {"passed": self.gates_passed},
        }
        if self.judgement is not None:
            details |= {
                "judged": self.judgement.judged,
                "config_digest": self.judgement.config_digest,
            }
        elif self.guards:
            details["judged"] = "guarded"
        if self.guards:
            details["guards"] = [g.to_dict() for g in self.guards]
        return details


def _decide(
    change: ObservedChange,
    *,
    client: MlflowClient,
    database: Database,
    name: str,
    actor: str,
    settings: Settings,
    gate_config: GateConfig,
) -> _Decision:
    """Revert a removal or a guarded version; else gate the version and apply the policy."""
    if change.version is None:
        return _Decision("revert", f"the {PRODUCTION} alias was removed outside boltit", [])
    # A UI move must not bring back what a rollback would refuse.
    with database.session() as session:
        guards = version_guards(
            session,
            client,
            name=name,
            version=change.version,
            recent_days=settings.rollback_guard_days,
        )
    if guards and gate_config.sync.on_guarded == "revert":
        why = (
            f"guarded: {'; '.join(g.message for g in guards)} "
            "(gate config sync.on_guarded: revert; use `boltit promote --force --reason`)"
        )
        return _Decision("revert", why, guards)
    judgement = judge(
        client=client,
        database=database,
        name=name,
        version=change.version,
        champion=change.recorded,
        actor=actor,
        settings=settings,
        config=gate_config,
    )
    if judgement.passed:
        # Gates passing is not enough under `approval: required`: the UI must not skip it.
        with database.session() as session:
            unapproved = approval_refusal(session, gate_config, name=name, version=change.version)
        if unapproved is not None:
            return _Decision("revert", f"{judgement.reason}; but {unapproved}", guards, judgement)
    policy = gate_config.sync
    action = policy.on_gate_pass if judgement.passed else policy.on_gate_fail
    return _Decision(action, judgement.reason, guards, judgement)


def _revert(
    client: MlflowClient, *, name: str, change: ObservedChange, why: str, now: datetime
) -> None:
    """Put the recorded version back; the outside one is archived with the reason."""
    with registry_errors(f"cannot revert the {PRODUCTION} change of {name!r}"):
        if change.recorded is not None:
            client.set_registered_model_alias(name, PRODUCTION, change.recorded)
            set_stage(client, name=name, version=change.recorded, stage=STAGE_PRODUCTION)
        elif PRODUCTION in aliases(client, name=name):
            client.delete_registered_model_alias(name, PRODUCTION)
        if change.version is not None:
            set_stage(client, name=name, version=change.version, stage=STAGE_ARCHIVED)
            _append_description(
                client,
                name=name,
                version=change.version,
                text=(
                    f"Reverted by `boltit registry sync` at {now:%Y-%m-%d %H:%M:%S} UTC: "
                    f"{PRODUCTION} was set by {change.via} outside boltit and {why}."
                ),
            )


def _drop_ui_alias(client: MlflowClient, *, name: str) -> None:
    with registry_errors(f"cannot remove the {UI_PRODUCTION_ALIAS!r} alias of {name!r}"):
        client.delete_registered_model_alias(name, UI_PRODUCTION_ALIAS)


def _record_sync(
    session: Session,
    client: MlflowClient,
    *,
    name: str,
    actor: str,
    change: ObservedChange,
    outcome: str,
    decision: _Decision,
    at: datetime,
) -> None:
    """The ``registry_sync`` row, and for a revert a ``sync_revert`` row too."""
    details = decision.details(outcome=outcome, via=change.via)
    # A revert is also a move of its own, back to the recorded version.
    moves = [("registry_sync", change.recorded, change.version)]
    if outcome == "reverted":
        moves.append(("sync_revert", change.version, change.recorded))
    for action_name, from_version, to_version in moves:
        record_event(
            session,
            client,
            action=action_name,
            actor=actor,
            model_name=name,
            from_version=from_version,
            to_version=to_version,
            reason=decision.why,
            details=details,
            at=at,
        )


def sync_once(
    *,
    client: MlflowClient,
    database: Database,
    name: str,
    actor: str,
    settings: Settings,
    config: GateConfig | None = None,
) -> SyncOutcome | None:
    """Detect one outside change, gate it, then accept or revert it; None when in sync."""
    gate_config = config or load_gate_config(settings.gates_config)
    change = detect_change(client, database, name=name)
    if change is None:
        return None
    if change.via == "ui_alias" and change.version == change.recorded:
        _drop_ui_alias(client, name=name)  # asks for the version that already serves
        return None
    decision = _decide(
        change,
        client=client,
        database=database,
        name=name,
        actor=actor,
        settings=settings,
        gate_config=gate_config,
    )

    now = datetime.now(UTC)
    with hold(database, LockKind.registry, model_name=name, holder=actor) as session:
        if detect_change(client, database, name=name) != change:
            return None  # someone moved it again meanwhile; the next sync sees the new state
        moved_at = utcnow()
        if decision.action == "accept" and change.version is not None:
            move_production(client, name=name, to_version=change.version, previous=change.recorded)
            outcome = "accepted"
        else:
            outcome = "reverted"
            _revert(client, name=name, change=change, why=decision.why, now=now)
        if change.via == "ui_alias":
            _drop_ui_alias(client, name=name)  # the request is answered either way
        _record_sync(
            session,
            client,
            name=name,
            actor=actor,
            change=change,
            outcome=outcome,
            decision=decision,
            at=moved_at,
        )
    if outcome == "accepted" and change.version is not None:
        write_manifests(
            settings,
            client,
            name=name,
            current=change.version,
            previous=change.recorded,
            changed_at=now,
        )
    return SyncOutcome(
        change=change,
        outcome=outcome,
        gates_passed=decision.gates_passed,
        reason=decision.why,
        judged=decision.judged,
        guards=tuple(decision.guards),
    )


def sync(
    *, config: GateConfig | None = None, max_changes: int = 10, **target: Unpack[Target]
) -> list[SyncOutcome]:
    """Handle every pending outside change (bounded, in case something keeps moving it)."""
    # An approval tagged in the UI first, so a UI move to that version can be accepted.
    adopt_ui_approvals(**target)
    outcomes: list[SyncOutcome] = []
    for _ in range(max_changes):
        outcome = sync_once(**target, config=config)
        if outcome is None:
            break
        outcomes.append(outcome)
    return outcomes


def watch(
    *,
    interval: float,
    max_cycles: int | None = None,
    on_outcome: Callable[[SyncOutcome], None] | None = None,
    **target: Unpack[Target],
) -> int:
    """Poll every ``interval`` seconds (stage changes fire no webhook); returns changes seen."""
    seen = 0
    cycle = 0
    while max_cycles is None or cycle < max_cycles:
        for outcome in sync(**target):
            seen += 1
            if on_outcome:
                on_outcome(outcome)
        cycle += 1
        if max_cycles is None or cycle < max_cycles:
            time.sleep(interval)
    return seen
