"""A rollout's plan as the user writes it: ``--steps 5,25,50,100 --interval 10m``."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from boltit.core.errors import BadInputError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")


@dataclass(frozen=True)
class RolloutPlan:
    """The challenger's share at each step, how long each step lasts at least, and how many
    canary tickets it needs before it may advance."""

    steps: tuple[float, ...]
    interval_seconds: float
    min_rows: int


def parse_steps(text: str) -> tuple[float, ...]:
    """``5,25,50,100`` as shares; rising, each in (0, 100], ending at 100.

    Raises:
        BadInputError: naming the first share that is wrong.
    """
    parts = [part.strip().removesuffix("%") for part in text.split(",")]
    steps: list[float] = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise BadInputError(
                f"--steps must be rising percentages like 5,25,50,100, got {part!r} in {text!r}"
            ) from None
        if not math.isfinite(value) or not 0.0 < value <= 100.0:
            raise BadInputError(f"each --steps share must be above 0 and at most 100, got {part}")
        if steps and value <= steps[-1]:
            raise BadInputError(f"--steps must rise: {value:g} comes after {steps[-1]:g}")
        steps.append(value)
    if not steps or steps[-1] != 100.0:
        raise BadInputError(
            f"--steps must end at 100 (the last step serves every ticket), got {text!r}"
        )
    return tuple(steps)


def parse_interval(text: str) -> float:
    """``10m``, ``30s``, ``1h`` or plain seconds, as seconds above 0.

    Raises:
        BadInputError: the text is no such duration.
    """
    match = _INTERVAL.match(text)
    if match is None:
        raise BadInputError(f"--interval must be a duration like 30s, 10m or 1h, got {text!r}")
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise BadInputError(f"--interval must be longer than 0, got {text!r}")
    return seconds


def parse_plan(*, steps: str, interval: str, min_rows: int) -> RolloutPlan:
    """The whole plan, each part checked before anything is opened or written."""
    if min_rows < 1:
        raise BadInputError(f"--min-rows must be at least 1, got {min_rows}")
    return RolloutPlan(parse_steps(steps), parse_interval(interval), min_rows)
