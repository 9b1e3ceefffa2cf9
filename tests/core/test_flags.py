"""The rollout flags in the project database: seeded once, validated, audited, read as one."""

from __future__ import annotations

import math

import pytest

from boltit.core import audit, flags
from boltit.core.db import Database
from boltit.core.flags import FlagValueError, FlagValues, RolloutFlags
from boltit.core.schema import FeatureFlag
from boltit.core.settings import Settings
from boltit.core.vocabulary import AUTO_APPLY_FLAG, CANARY_PERCENT_FLAG, SHADOW_FLAG

DEFAULTS = FlagValues(auto_apply_enabled=True, shadow_enabled=False, canary_percent=0.0)


def _check_rollout_flags(database: Database) -> None:
    with database.session() as session:  # nothing stored yet: the defaults
        assert flags.read_values(session, defaults=DEFAULTS) == DEFAULTS
        assert flags.read_rollout(
            session, defaults=RolloutFlags(shadow_enabled=True, canary_percent=5.0)
        ) == RolloutFlags(shadow_enabled=True, canary_percent=5.0)

    seeded = FlagValues(auto_apply_enabled=True, shadow_enabled=True, canary_percent=12.5)
    flags.seed_defaults(database, seeded)
    flags.seed_defaults(database, DEFAULTS)  # a second replica's environment: no-op
    with database.session() as session:
        assert flags.read_values(session, defaults=DEFAULTS) == seeded

    with database.session() as session:
        assert flags.set_canary_percent(session, 30, actor="alice", reason="step 1") == 12.5
        assert flags.set_shadow(session, False, actor="bob", reason=None) is True
    with database.session() as session:
        assert flags.read_rollout(session, defaults=DEFAULTS.rollout) == RolloutFlags(
            shadow_enabled=False, canary_percent=30.0
        )
        canary = session.get(FeatureFlag, CANARY_PERCENT_FLAG)
        assert canary is not None and canary.enabled is True and canary.value == 30.0
        assert canary.updated_by == "alice"
        assert flags.set_canary_percent(session, 0, actor="alice", reason="abort") == 30.0
    with database.session() as session:
        canary = session.get(FeatureFlag, CANARY_PERCENT_FLAG)
        assert canary is not None and canary.enabled is False and canary.value == 0.0
        events = audit.history(session)

    assert [e.action for e in events] == ["flag_seed"] * 3 + ["flag_change"] * 3
    seeds = {e.details["flag"]: e.details["value"] for e in events[:3] if e.details}
    assert seeds == {AUTO_APPLY_FLAG: True, SHADOW_FLAG: True, CANARY_PERCENT_FLAG: 12.5}
    changes = [(e.actor, e.reason, e.details) for e in events[3:]]
    assert changes == [
        ("alice", "step 1", {"flag": CANARY_PERCENT_FLAG, "from": 12.5, "to": 30.0}),
        ("bob", None, {"flag": SHADOW_FLAG, "from": True, "to": False}),
        ("alice", "abort", {"flag": CANARY_PERCENT_FLAG, "from": 30.0, "to": 0.0}),
    ]


def test_rollout_flags_on_sqlite(database: Database) -> None:
    _check_rollout_flags(database)


@pytest.mark.postgres
def test_rollout_flags_on_postgres(postgres_url: str) -> None:
    database = Database(postgres_url)
    try:
        _check_rollout_flags(database)
    finally:
        database.dispose()


@pytest.mark.parametrize("percent", [-0.1, 100.5, math.nan, math.inf, True, "10", None], ids=repr)
def test_a_canary_share_outside_0_to_100_is_refused_and_nothing_written(
    database: Database, percent: object
) -> None:
    with database.session() as session, pytest.raises(FlagValueError, match="canary percent"):
        flags.set_canary_percent(session, percent, actor="alice", reason=None)  # type: ignore[arg-type]
    with database.session() as session:
        assert session.get(FeatureFlag, CANARY_PERCENT_FLAG) is None
        assert audit.history(session) == []


def test_the_share_is_not_a_switch(database: Database) -> None:
    with database.session() as session, pytest.raises(KeyError):
        flags.set_flag(session, CANARY_PERCENT_FLAG, enabled=True, actor="alice")


def test_the_environment_gives_the_first_values(settings: Settings) -> None:
    live = settings.model_copy(
        update={"auto_apply_enabled": False, "shadow_enabled": True, "canary_percent": 7.0}
    )
    assert flags.defaults_from(live) == FlagValues(
        auto_apply_enabled=False, shadow_enabled=True, canary_percent=7.0
    )
    assert flags.defaults_from(live).challenger_needed
    assert not DEFAULTS.challenger_needed
    assert DEFAULTS.as_dict() == {
        AUTO_APPLY_FLAG: True,
        SHADOW_FLAG: False,
        CANARY_PERCENT_FLAG: 0.0,
    }
