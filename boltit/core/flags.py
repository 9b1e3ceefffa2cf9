"""Runtime feature flags persisted in the project database.

Every replica reads them from the same table, so a change made by any process
(API, CLI, monitor) is seen everywhere without a restart.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from boltit.core import audit
from boltit.core.db import Database
from boltit.core.schema import FeatureFlag, utcnow
from boltit.core.vocabulary import AUTO_APPLY_FLAG

KNOWN_FLAGS = (AUTO_APPLY_FLAG,)


def read_flag(session: Session, name: str, *, default: bool) -> bool:
    """The flag's stored value, or ``default`` when it was never set."""
    row = session.get(FeatureFlag, name)
    return default if row is None else row.enabled


def read_all(session: Session, *, defaults: dict[str, bool]) -> dict[str, bool]:
    """Every known flag, stored values over defaults."""
    stored = {row.name: row.enabled for row in session.scalars(select(FeatureFlag))}
    return {name: stored.get(name, defaults.get(name, False)) for name in KNOWN_FLAGS}


def seed_flag(database: Database, name: str, *, value: bool, actor: str) -> None:
    """Store the flag's first value (from the environment) unless one is already stored."""
    try:
        with database.session() as session:
            if session.get(FeatureFlag, name) is None:
                session.add(FeatureFlag(name=name, enabled=value, updated_by=actor))
                session.flush()
                audit.record(
                    session,
                    action="flag_seed",
                    actor=actor,
                    reason=f"first value of {name} from the environment",
                    details={"flag": name, "enabled": value},
                )
    except IntegrityError:
        pass  # another replica seeded it first; its value stands


def set_flag(
    session: Session, name: str, *, enabled: bool, actor: str, reason: str | None = None
) -> bool:
    """Set a flag and record the change; returns the value it had before."""
    if name not in KNOWN_FLAGS:
        raise KeyError(name)
    row = session.get(FeatureFlag, name, with_for_update=True)
    before = row.enabled if row is not None else None
    if row is None:
        session.add(FeatureFlag(name=name, enabled=enabled, updated_by=actor))
    else:
        row.enabled = enabled
        row.updated_by = actor
        row.updated_at = utcnow()
    audit.record(
        session,
        action="flag_change",
        actor=actor,
        reason=reason,
        details={"flag": name, "from": before, "to": enabled},
    )
    return bool(before)
