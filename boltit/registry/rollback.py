"""``boltit rollback``: move ``Production`` back to the version that served before it.

Two rollbacks in a row walk further back through the serving history instead of
undoing each other: after a rollback, ``previous`` names the version that served
before the one now restored (or is removed when there was none), so a second rollback
never re-promotes the version just rolled back from.

A target that failed its gates, or that an open or recent incident found regressed, is
refused unless forced with a reason (``boltit.registry.rollback_guard``); the refusal and the
override are both recorded with the guards that fired.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mlflow import MlflowClient
from sqlalchemy.orm import Session

from boltit.core.errors import BadInputError, BoltitError, GateFailedError, NotFoundError
from boltit.core.locks import LockKind, hold
from boltit.core.schema import utcnow
from boltit.core.settings import Settings
from boltit.core.vocabulary import PREVIOUS, PRODUCTION
from boltit.registry.history import (
    audited_reason,
    record_event,
    served_before,
    serving_timeline,
)
from boltit.registry.loadable import LOADED, SKIPPED_AS_SERVED, known_to_load, load_failure
from boltit.registry.lookup import aliases, get_version
from boltit.registry.manifests import check_bucket, write_manifests
from boltit.registry.rollback_guard import Guard, version_guards
from boltit.registry.transitions import move_production

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack is 3.12+

    from boltit.registry.target import Target


@dataclass(frozen=True)
class RollbackResult:
    """Production moved ``from_version`` → ``to_version``; ``previous`` is the new alias."""

    name: str
    from_version: str
    to_version: str
    previous: str | None
    manifests: list[str] = field(default_factory=list)
    forced: bool = False
    guards: list[Guard] = field(default_factory=list)  # overridden by ``force``


def rollback(
    *,
    to_version: str | int | None = None,
    reason: str | None = None,
    force: bool = False,
    **registry: Unpack[Target],  # ``target`` below is the version restored
) -> RollbackResult:
    """Reassign ``Production`` to ``previous`` or to ``to_version`` (a version that served).

    Raises NotFoundError when nothing serves, BadInputError when there is no version to
    roll back to, the target never served or cannot be loaded, or ``force`` comes without
    a reason; GateFailedError (recorded as a refused ``rollback``) when a guard fires and
    ``force`` is not given. No alias moves then.
    """
    client, database, settings = registry["client"], registry["database"], registry["settings"]
    name, actor = registry["name"], registry["actor"]
    reason = audited_reason(reason, force=force, what="rollbacks")
    wanted = None if to_version is None else str(to_version).strip()
    if wanted is not None:
        get_version(client, name=name, version=wanted)
    check_bucket(settings)

    with hold(database, LockKind.registry, model_name=name, holder=actor) as session:
        serving, target, timeline = _rollback_target(session, client, name=name, wanted=wanted)
        guards = _guards(session, client, name=name, version=target, settings=settings)
        fired = [guard.to_dict() for guard in guards]
        refusal, proven = _refusal(session, name=name, target=target, guards=guards, force=force)
        new_previous: str | None = None
        moved_at = utcnow()
        details: dict[str, object] = {"guards": fired}
        if refusal is not None:
            details |= {"outcome": "refused", "refusal": str(refusal), "force_requested": force}
        else:
            new_previous = served_before(timeline, version=target, excluding={serving})
            move_production(client, name=name, to_version=target, previous=new_previous)
            details |= {
                "outcome": "rolled_back",
                "previous": new_previous,
                "load_check": SKIPPED_AS_SERVED if proven else LOADED,
            }
        record_event(
            session,
            client,
            action="rollback",
            actor=actor,
            model_name=name,
            from_version=serving,
            to_version=target,
            reason=reason,
            forced=refusal is None and bool(guards),
            details=details,
            at=moved_at,
        )
    if refusal is not None:
        # Raised after the lock's session committed, so the refusal stays in the history.
        raise refusal
    manifests = write_manifests(
        settings,
        client,
        name=name,
        current=target,
        previous=new_previous,
        changed_at=datetime.now(UTC),
    )
    return RollbackResult(
        name=name,
        from_version=serving,
        to_version=target,
        previous=new_previous,
        manifests=manifests,
        forced=bool(guards),
        guards=guards,
    )


def _rollback_target(
    session: Session, client: MlflowClient, *, name: str, wanted: str | None
) -> tuple[str, str, list[str]]:
    """The serving version, the version to restore, and the serving timeline.

    Raises:
        NotFoundError: Nothing serves.
        BadInputError: No version to roll back to, it already serves, or it never served.
    """
    current = aliases(client, name=name)
    serving = current.get(PRODUCTION)
    if serving is None:
        raise NotFoundError(f"nothing serves {name!r}: it has no {PRODUCTION} alias")
    timeline = serving_timeline(session, model_name=name)
    if not timeline or timeline[-1] != serving:
        timeline.append(serving)  # moved outside the CLI and not yet synced
    target = wanted or current.get(PREVIOUS)
    if target is None:
        raise BadInputError(f"{name!r} has no {PREVIOUS} version to roll back to; use --to VERSION")
    if target == serving:
        raise BadInputError(f"version {target} already serves {name!r}")
    if target not in timeline and target != current.get(PREVIOUS):
        served = ", ".join(f"v{v}" for v in timeline)
        raise BadInputError(
            f"version {target} never served {name!r} (served: {served}); promote it instead"
        )
    get_version(client, name=name, version=target)
    return serving, target, timeline


def _refusal(
    session: Session, *, name: str, target: str, guards: list[Guard], force: bool
) -> tuple[BoltitError | None, bool]:
    """Why the rollback is refused (None when it may go), and whether ``target`` is proven
    to load by having served."""
    if guards and not force:
        refusal = GateFailedError(
            f"rollback to v{target} refused: "
            + "; ".join(g.message for g in guards)
            + "; use --force --reason to restore it anyway"
        )
        return refusal, False
    # A version that served is known to load; only an unproven one is loaded.
    proven = known_to_load(session, name=name, version=target)
    if not proven and (unloadable := load_failure(name=name, version=target)):
        return BadInputError(unloadable), proven
    return None, proven


def _guards(
    session: Session, client: MlflowClient, *, name: str, version: str, settings: Settings
) -> list[Guard]:
    return version_guards(
        session, client, name=name, version=version, recent_days=settings.rollback_guard_days
    )
