"""``boltit approve``: a person other than the trainer signs off a version before it serves.

Required only when the gate config says ``approval: required``. The history row (action
``approve``) is the record promote trusts; the version tags ``approval``, ``approved_by`` and
``approval_reason`` show it in the MLflow UI. Someone may instead set ``approval=approved``
(and ``approved_by``) on the version in the UI: ``boltit registry sync`` adopts it, under
the same rules, or marks it ``approval=refused`` saying why.

Who trained a version: the ``train`` rows of the history for it, and the ``mlflow.user`` tag
of its training run (a store trained elsewhere has no history rows here). Any of them
approving is self-approval, refused.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from mlflow import MlflowClient
from sqlalchemy.orm import Session

from boltit.core import audit
from boltit.core.errors import BadInputError, BoltitError, GateFailedError
from boltit.core.schema import AuditEvent
from boltit.core.vocabulary import TAG_VALIDATION_STATUS, VALIDATION_PASSED
from boltit.registry.gate_config import GateConfig
from boltit.registry.history import record_event
from boltit.registry.lookup import get_version, registry_errors

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack is 3.12+

    from boltit.registry.target import Target, VersionTarget

ACTION_APPROVE = "approve"
TAG_APPROVAL = "approval"
TAG_APPROVED_BY = "approved_by"
TAG_APPROVAL_REASON = "approval_reason"
APPROVED = "approved"
REFUSED = "refused"
RUN_USER_TAG = "mlflow.user"
_UI_REASON = "approved in the MLflow UI"

Via = Literal["cli", "ui"]


@dataclass(frozen=True)
class Approval:
    """One approval as recorded: who, of which version, why, and how it came."""

    name: str
    version: str
    approved_by: str
    trained_by: tuple[str, ...]
    reason: str
    via: Via


@dataclass(frozen=True)
class UiApprovalOutcome:
    """What sync did with an ``approval=approved`` tag set in the UI."""

    version: str
    adopted: bool
    message: str


def trainers(session: Session, client: MlflowClient, *, name: str, version: str) -> set[str]:
    """Everyone recorded as having trained ``version``: history rows and the run's user."""
    found = {
        event.actor
        for event in audit.history(session, model_name=name, actions=["train"])
        if event.to_version == version
    }
    with registry_errors(f"cannot read who trained version {version} of {name!r}"):
        run_id = client.get_model_version(name, version).run_id
        if run_id:
            user = client.get_run(run_id).data.tags.get(RUN_USER_TAG)
            if user:
                found.add(user)
    return found


def latest_approval(session: Session, *, name: str, version: str) -> AuditEvent | None:
    """The newest ``approve`` row that approved ``version`` (refused attempts skipped)."""
    approvals = [
        event
        for event in audit.history(session, model_name=name, actions=[ACTION_APPROVE])
        if event.to_version == version and (event.details or {}).get("outcome") == APPROVED
    ]
    return approvals[-1] if approvals else None


def approval_refusal(
    session: Session, config: GateConfig, *, name: str, version: str
) -> str | None:
    """Why promoting ``version`` waits for an approval; None when none is needed or given."""
    if config.approval != "required" or latest_approval(session, name=name, version=version):
        return None
    return (
        f"version {version} has not been approved (gate config approval: required); "
        f"someone other than its trainer runs `boltit approve {version} --reason TEXT`, "
        f"or sets the tag {TAG_APPROVAL}={APPROVED} with {TAG_APPROVED_BY} in the MLflow UI "
        "and runs `boltit registry sync`"
    )


def _check(
    session: Session, client: MlflowClient, *, name: str, version: str, approver: str
) -> tuple[str | None, set[str]]:
    """Why ``approver`` may not approve ``version`` (None when they may), and its trainers."""
    with registry_errors(f"cannot read version {version} of {name!r}"):
        status = (client.get_model_version(name, version).tags or {}).get(TAG_VALIDATION_STATUS)
    trained_by = trainers(session, client, name=name, version=version)
    if status != VALIDATION_PASSED:
        why = (
            f"version {version} has not passed its gates "
            f"(validation_status={status or 'never validated'}); run `boltit validate {version}`"
        )
    elif not trained_by:
        why = (
            f"nobody is recorded as having trained version {version}, "
            "so self-approval cannot be ruled out"
        )
    elif approver in trained_by:
        why = (
            f"{approver} trained version {version} and cannot approve it; "
            "someone else must (separation of duties)"
        )
    else:
        why = None
    return why, trained_by


def _tag(client: MlflowClient, *, name: str, version: str, tags: dict[str, str]) -> None:
    with registry_errors(f"cannot tag version {version} of {name!r}"):
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value[:5000])


def _record(
    session: Session,
    client: MlflowClient,
    *,
    name: str,
    version: str,
    approver: str,
    reason: str,
    via: Via,
    refusal: str | None,
    trained_by: set[str],
) -> None:
    details: dict[str, object] = {
        "outcome": APPROVED if refusal is None else REFUSED,
        "via": via,
        "trained_by": sorted(trained_by),
    }
    if refusal is not None:
        details["refusal"] = refusal
    record_event(
        session,
        client,
        action=ACTION_APPROVE,
        actor=approver,
        model_name=name,
        to_version=version,
        reason=reason,
        details=details,
    )


def approve(*, reason: str | None, **target: Unpack[VersionTarget]) -> Approval:
    """Record ``actor``'s approval of ``version`` and show it on the version in the UI.

    Raises:
        BadInputError: no reason, or the actor trained the version (self-approval).
        GateFailedError: the version has not passed its gates.
    """
    client, database, name = target["client"], target["database"], target["name"]
    approver, version = target["actor"], str(target["version"]).strip()
    reason = reason.strip() if reason else ""
    if not reason:
        raise BadInputError("approve needs a --reason; approvals are audited")
    get_version(client, name=name, version=version)
    with database.session() as session:
        refusal, trained_by = _check(session, client, name=name, version=version, approver=approver)
        _record(
            session,
            client,
            name=name,
            version=version,
            approver=approver,
            reason=reason,
            via="cli",
            refusal=refusal,
            trained_by=trained_by,
        )
    if refusal is not None:
        ungated = refusal.startswith(f"version {version} has not passed")
        raise (GateFailedError if ungated else BadInputError)(f"approval refused: {refusal}")
    _tag(
        client,
        name=name,
        version=version,
        tags={TAG_APPROVAL: APPROVED, TAG_APPROVED_BY: approver, TAG_APPROVAL_REASON: reason},
    )
    return Approval(name, version, approver, tuple(sorted(trained_by)), reason, "cli")


def _ui_approved(client: MlflowClient, *, name: str) -> dict[str, dict[str, str]]:
    """Versions tagged ``approval=approved``, with their tags."""
    with registry_errors(f"cannot list the versions of {name!r}"):
        versions = client.search_model_versions(f"name = '{name}'")
    return {
        str(mv.version): dict(mv.tags or {})
        for mv in versions
        if (mv.tags or {}).get(TAG_APPROVAL) == APPROVED
    }


def adopt_ui_approvals(**target: Unpack[Target]) -> list[UiApprovalOutcome]:
    """Record approvals set as tags in the MLflow UI that the history does not hold yet.

    The approver is the ``approved_by`` tag (the UI records no user on a tag); without it,
    or when it names the trainer, the tag becomes ``approval=refused`` with the reason.
    """
    client, database, name = target["client"], target["database"], target["name"]
    outcomes: list[UiApprovalOutcome] = []
    for version, tags in sorted(_ui_approved(client, name=name).items(), key=lambda v: int(v[0])):
        with database.session() as session:
            if latest_approval(session, name=name, version=version) is not None:
                continue
            approver = (tags.get(TAG_APPROVED_BY) or "").strip()
            reason = (tags.get(TAG_APPROVAL_REASON) or "").strip() or _UI_REASON
            if approver:
                refusal, trained_by = _check(
                    session, client, name=name, version=version, approver=approver
                )
            else:
                refusal = f"the tag {TAG_APPROVED_BY} is missing, so the approver is unknown"
                trained_by = trainers(session, client, name=name, version=version)
            _record(
                session,
                client,
                name=name,
                version=version,
                # Sync's actor only carried the tag over; the approver is who the tag names.
                approver=approver or target["actor"],
                reason=reason,
                via="ui",
                refusal=refusal,
                trained_by=trained_by,
            )
        if refusal is None:
            outcomes.append(UiApprovalOutcome(version, True, f"approved by {approver}: {reason}"))
            continue
        # The history row is the record; if the tag cannot change, the next sync tries again.
        with suppress(BoltitError):
            _tag(
                client,
                name=name,
                version=version,
                tags={TAG_APPROVAL: REFUSED, TAG_APPROVAL_REASON: f"not adopted: {refusal}"},
            )
        outcomes.append(UiApprovalOutcome(version, False, f"refused: {refusal}"))
    return outcomes
