"""``boltit promote``: move ``Production`` to a version that passed its gates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mlflow import MlflowClient

from boltit.core.db import Database
from boltit.core.errors import BadInputError, GateFailedError
from boltit.core.locks import LockKind, hold
from boltit.core.schema import utcnow
from boltit.core.vocabulary import PREVIOUS, PRODUCTION, TAG_VALIDATION_STATUS, VALIDATION_PASSED
from boltit.registry.approval import approval_refusal
from boltit.registry.gate_config import GateConfig, load_gate_config
from boltit.registry.history import audited_reason, record_event
from boltit.registry.loadable import LOADED, SKIPPED_AS_SERVED, known_to_load, load_failure
from boltit.registry.lookup import aliases, get_version, registry_errors
from boltit.registry.manifests import check_bucket, write_manifests
from boltit.registry.transitions import move_production

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack is 3.12+

    from boltit.registry.target import VersionTarget


@dataclass(frozen=True)
class PromotionResult:
    """What a promotion did; ``changed`` is False when the version already served."""

    name: str
    version: str
    previous: str | None
    changed: bool
    forced: bool
    manifests: list[str] = field(default_factory=list)


def _load_check(database: Database, *, name: str, version: str) -> tuple[bool, str | None]:
    """Whether the version served before, and why it cannot load (None when it can).

    A version that cannot load must never serve, forced or not. Loading takes seconds,
    so it happens before the lock; the refusal is recorded under it. A version that
    served before is known to load: re-promoting it must cost no more than the move.
    """
    with database.session() as session:
        served = known_to_load(session, name=name, version=version)
    return served, None if served else load_failure(name=name, version=version)


def _gate_evidence(
    client: MlflowClient, *, name: str, version: str
) -> tuple[str | None, dict[str, object]]:
    """The version's ``validation_status`` and the gates summary the history keeps."""
    with registry_errors(f"cannot read version {version} of {name!r}"):
        tags = dict(client.get_model_version(name, version).tags or {})
    status = tags.get(TAG_VALIDATION_STATUS)
    gates: dict[str, object] = {
        "validation_status": status,
        "passed": status == VALIDATION_PASSED,
        "failed": [
            k.removeprefix("gate.")
            for k, v in tags.items()
            if k.startswith("gate.") and v.startswith("failed")
        ],
    }
    return status, gates


def _refusal(
    *, version: str, status: str | None, unloadable: str | None, force: bool
) -> str | None:
    """Why the promotion is refused, or None: an unloadable model even when forced."""
    if unloadable is not None:
        return unloadable
    if status != VALIDATION_PASSED and not force:
        return (
            f"version {version} has not passed its gates "
            f"(validation_status={status or 'never validated'})"
        )
    return None


def _details(
    gates: dict[str, object],
    *,
    served: bool,
    refused: str | None,
    unloadable: str | None,
    force: bool,
) -> dict[str, object]:
    """The history row's details: the gates read, the load check and the outcome."""
    details: dict[str, object] = {
        "gates": gates,
        "load_check": SKIPPED_AS_SERVED if served else LOADED,
    }
    if refused is None:
        details.update(outcome="promoted")
    elif unloadable is not None:
        # Forcing cannot override a load failure; the row says whether it was tried.
        details.update(outcome="refused", refusal=refused, force_requested=force)
    else:
        details.update(outcome="refused", refusal=refused)
    return details


def _approval_details(config: GateConfig, unapproved: str | None) -> dict[str, object]:
    """Whether an approval was required and given (a forced promotion may lack it)."""
    if config.approval != "required":
        return {}
    return {"approval": {"required": True, "approved": unapproved is None}}


def promote(
    *, reason: str | None = None, force: bool = False, **target: Unpack[VersionTarget]
) -> PromotionResult:
    """Make ``version`` serve: old Production becomes ``previous``, stages follow.

    Refuses (GateFailedError, recorded in the history) a version whose
    ``validation_status`` is not ``passed``, or, under ``approval: required``, that nobody
    approved (``boltit.registry.approval``), unless ``force`` is given with a reason, and
    (BadInputError, recorded too) a version whose model cannot be loaded, forced or not.
    Promotions of one model are serialised by a database lock, so racing promotions
    each see the other's result.
    """
    client, database, settings = target["client"], target["database"], target["settings"]
    name, actor, version = target["name"], target["actor"], str(target["version"]).strip()
    reason = audited_reason(reason, force=force, what="promotions")
    get_version(client, name=name, version=version)
    check_bucket(settings)
    gate_config = load_gate_config(settings.gates_config)
    served, unloadable = _load_check(database, name=name, version=version)

    with hold(database, LockKind.registry, model_name=name, holder=actor) as session:
        current = aliases(client, name=name)
        serving = current.get(PRODUCTION)
        if serving == version and unloadable is None:
            return PromotionResult(
                name=name,
                version=version,
                previous=current.get(PREVIOUS),
                changed=False,
                forced=False,
            )
        status, gates = _gate_evidence(client, name=name, version=version)
        refused = _refusal(version=version, status=status, unloadable=unloadable, force=force)
        unapproved = approval_refusal(session, gate_config, name=name, version=version)
        if refused is None and unapproved is not None and not force:
            refused = unapproved
        moved_at = None
        if refused is None:
            moved_at = utcnow()
            move_production(client, name=name, to_version=version, previous=serving)
        record_event(
            session,
            client,
            action="promote",
            actor=actor,
            model_name=name,
            from_version=serving,
            to_version=version,
            reason=reason,
            # Nothing was bypassed by a refused promotion; a refused --force shows in details.
            forced=force and refused is None,
            details=_details(
                gates, served=served, refused=refused, unloadable=unloadable, force=force
            )
            | _approval_details(gate_config, unapproved),
            at=moved_at,
        )
    if unloadable is not None:
        raise BadInputError(unloadable)
    if refused is not None and refused == unapproved:
        raise GateFailedError(f"{refused}; or use --force --reason")
    if refused is not None:
        raise GateFailedError(f"{refused}; run `boltit validate {version}` or use --force --reason")
    manifests = write_manifests(
        settings,
        client,
        name=name,
        current=version,
        previous=serving,
        changed_at=datetime.now(UTC),
    )
    return PromotionResult(
        name=name,
        version=version,
        previous=serving,
        changed=True,
        forced=force,
        manifests=manifests,
    )
