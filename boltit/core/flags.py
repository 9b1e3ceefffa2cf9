"""Runtime feature flags persisted in the project database.

Every replica reads them from the same table, so a change made by any process
(API, CLI, monitor, a gradual rollout) is seen everywhere without a restart.

Three flags: ``auto_apply_enabled`` and ``shadow_enabled`` are switches (``enabled``);
``canary_percent`` is a share of tickets from 0 to 100, kept in ``value`` (its ``enabled``
says whether the share is above 0, so a reader of switches alone still sees a canary).
The environment gives each flag its first value only (``seed_defaults``).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from boltit.core import audit
from boltit.core.db import Database

# The values live apart (no SQLAlchemy) so a command can refuse a bad one quickly; they are
# re-exported here for callers of the storage.
from boltit.core.flag_values import FlagValueError as FlagValueError
from boltit.core.flag_values import FlagValues as FlagValues
from boltit.core.flag_values import RolloutFlags as RolloutFlags
from boltit.core.flag_values import checked_canary_percent as checked_canary_percent
from boltit.core.flag_values import defaults_from as defaults_from
from boltit.core.schema import FeatureFlag, utcnow
from boltit.core.vocabulary import AUTO_APPLY_FLAG, CANARY_PERCENT_FLAG, SHADOW_FLAG

SWITCH_FLAGS = (AUTO_APPLY_FLAG, SHADOW_FLAG)
KNOWN_FLAGS = (AUTO_APPLY_FLAG, SHADOW_FLAG, CANARY_PERCENT_FLAG)


def _stored_value(row: FeatureFlag) -> bool | float:
    if row.name == CANARY_PERCENT_FLAG:
        return float(row.value) if row.value is not None else 0.0
    return bool(row.enabled)


def read_flag(session: Session, name: str, *, default: bool) -> bool:
    """A switch's stored value, or ``default`` when it was never set."""
    row = session.get(FeatureFlag, name)
    return default if row is None else row.enabled


def read_values(session: Session, *, defaults: FlagValues) -> FlagValues:
    """Every flag in one query, stored values over ``defaults``."""
    stored = {row.name: _stored_value(row) for row in session.scalars(select(FeatureFlag))}
    return FlagValues(
        auto_apply_enabled=bool(stored.get(AUTO_APPLY_FLAG, defaults.auto_apply_enabled)),
        shadow_enabled=bool(stored.get(SHADOW_FLAG, defaults.shadow_enabled)),
        canary_percent=float(stored.get(CANARY_PERCENT_FLAG, defaults.canary_percent)),
    )


def read_rollout(session: Session, *, defaults: RolloutFlags) -> RolloutFlags:
    """The shadow switch and the canary share, stored values over ``defaults``."""
    values = read_values(
        session,
        defaults=FlagValues(
            auto_apply_enabled=False,  # not returned
            shadow_enabled=defaults.shadow_enabled,
            canary_percent=defaults.canary_percent,
        ),
    )
    return values.rollout


def read_all(session: Session, *, defaults: dict[str, bool | float]) -> dict[str, bool | float]:
    """Every known flag by name, stored values over ``defaults`` (missing ones off / 0)."""
    return read_values(
        session,
        defaults=FlagValues(
            auto_apply_enabled=bool(defaults.get(AUTO_APPLY_FLAG, False)),
            shadow_enabled=bool(defaults.get(SHADOW_FLAG, False)),
            canary_percent=float(defaults.get(CANARY_PERCENT_FLAG, 0.0)),
        ),
    ).as_dict()


def seed_flag(database: Database, name: str, *, value: bool | float, actor: str) -> None:
    """Store the flag's first value (from the environment) unless one is already stored."""
    if name not in KNOWN_FLAGS:
        raise KeyError(name)
    if name == CANARY_PERCENT_FLAG:
        percent = checked_canary_percent(value)
        row = FeatureFlag(name=name, enabled=percent > 0, value=percent, updated_by=actor)
        shown: bool | float = percent
    else:
        row = FeatureFlag(name=name, enabled=bool(value), updated_by=actor)
        shown = bool(value)
    try:
        with database.session() as session:
            if session.get(FeatureFlag, name) is None:
                session.add(row)
                session.flush()
                audit.record(
                    session,
                    action="flag_seed",
                    actor=actor,
                    reason=f"first value of {name} from the environment",
                    details={"flag": name, "enabled": row.enabled, "value": shown},
                )
    except IntegrityError:
        pass  # another replica seeded it first; its value stands


def seed_defaults(database: Database, defaults: FlagValues, *, actor: str = "environment") -> None:
    """Seed every flag from the environment's values (each only if never stored)."""
    for name, value in defaults.as_dict().items():
        seed_flag(database, name, value=value, actor=actor)


def set_flag(
    session: Session, name: str, *, enabled: bool, actor: str, reason: str | None = None
) -> bool:
    """Turn a switch on or off and record the change; returns the value it had before.

    ``canary_percent`` is a share, not a switch: use ``set_canary_percent``.
    """
    if name not in SWITCH_FLAGS:
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


def set_shadow(session: Session, enabled: bool, *, actor: str, reason: str | None = None) -> bool:
    """Turn shadow scoring on or off (audited); returns the value it had before."""
    return set_flag(session, SHADOW_FLAG, enabled=enabled, actor=actor, reason=reason)


def set_canary_percent(
    session: Session, percent: float, *, actor: str, reason: str | None = None
) -> float:
    """Set the challenger's share of tickets (0-100, audited); returns the share before.

    Raises:
        FlagValueError: ``percent`` is not a number from 0 to 100 (nothing is written).
    """
    value = checked_canary_percent(percent)
    row = session.get(FeatureFlag, CANARY_PERCENT_FLAG, with_for_update=True)
    before = None if row is None else (float(row.value) if row.value is not None else 0.0)
    if row is None:
        session.add(
            FeatureFlag(name=CANARY_PERCENT_FLAG, enabled=value > 0, value=value, updated_by=actor)
        )
    else:
        row.enabled = value > 0
        row.value = value
        row.updated_by = actor
        row.updated_at = utcnow()
    audit.record(
        session,
        action="flag_change",
        actor=actor,
        reason=reason,
        details={"flag": CANARY_PERCENT_FLAG, "from": before, "to": value},
    )
    return before if before is not None else 0.0
