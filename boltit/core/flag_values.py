"""The runtime flags' values, without storage: what ``boltit.core.flags`` reads and writes.

Apart from the storage so that a command can refuse a bad value before SQLAlchemy loads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from boltit.core.errors import BadInputError
from boltit.core.vocabulary import AUTO_APPLY_FLAG, CANARY_PERCENT_FLAG, SHADOW_FLAG

if TYPE_CHECKING:
    from boltit.core.settings import Settings


class FlagValueError(BadInputError):
    """A flag value outside what the flag accepts (a canary share outside 0-100)."""


@dataclass(frozen=True, slots=True)
class RolloutFlags:
    """How the challenger takes part in serving right now."""

    shadow_enabled: bool
    canary_percent: float


@dataclass(frozen=True, slots=True)
class FlagValues:
    """Every flag at one moment: what a replica follows between two refreshes."""

    auto_apply_enabled: bool
    shadow_enabled: bool
    canary_percent: float

    @property
    def rollout(self) -> RolloutFlags:
        """The rollout flags alone."""
        return RolloutFlags(shadow_enabled=self.shadow_enabled, canary_percent=self.canary_percent)

    @property
    def challenger_needed(self) -> bool:
        """Whether the challenger takes any part (shadow scoring or a canary share)."""
        return self.shadow_enabled or self.canary_percent > 0

    def as_dict(self) -> dict[str, bool | float]:
        """Flag name to value, in ``KNOWN_FLAGS`` order."""
        return {
            AUTO_APPLY_FLAG: self.auto_apply_enabled,
            SHADOW_FLAG: self.shadow_enabled,
            CANARY_PERCENT_FLAG: self.canary_percent,
        }


def defaults_from(settings: Settings) -> FlagValues:
    """The environment's values: every flag's first value, and its value until stored."""
    return FlagValues(
        auto_apply_enabled=settings.auto_apply_enabled,
        shadow_enabled=settings.shadow_enabled,
        canary_percent=checked_canary_percent(settings.canary_percent),
    )


def checked_canary_percent(percent: object) -> float:
    """``percent`` as a float in 0..100, or ``FlagValueError`` naming what was wrong."""
    if isinstance(percent, bool) or not isinstance(percent, int | float):
        raise FlagValueError(f"canary percent must be a number from 0 to 100, got {percent!r}")
    value = float(percent)
    if not math.isfinite(value) or not 0.0 <= value <= 100.0:
        raise FlagValueError(f"canary percent must be from 0 to 100, got {percent!r}")
    return value
