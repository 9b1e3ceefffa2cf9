"""Time windows as given on the command line: ``START..END``, or one date (the runbook's form).

Kept apart from the frames so that ``boltit drift`` can refuse a malformed window before it
imports pandas, MLflow or scipy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from boltit.core.errors import BadInputError

# How many days one date stands for, unless the command says otherwise (``--window-days``).
DEFAULT_WINDOW_DAYS = 7

# Which way a single date reaches: the runbook compares ``--baseline 2025-10-01`` (a week
# then: the days from that date) with ``--current $(date +%Y-%m-%d)`` (the week up to today:
# days from that date would be in the future, and empty).
Anchor = Literal["starting", "ending"]


@dataclass(frozen=True)
class Window:
    """A half-open time range ``[start, end)``, as given on the command line.

    ``label`` is what the command printed; for a single date it spells out the days chosen.
    """

    start: datetime
    end: datetime
    label: str


def parse_window(
    text: str, *, single: Anchor | None = None, days: int = DEFAULT_WINDOW_DAYS
) -> Window:
    """Parse ``START..END`` (dates or ISO datetimes, UTC; a date END includes that day).

    With ``single`` set, one date ``D`` is also accepted: the ``days`` days starting on ``D``
    (``starting``) or ending on and including ``D`` (``ending``).

    Raises:
        BadInputError: The range is malformed or empty.
    """
    parts = text.split("..")
    if len(parts) == 1 and single is not None and text.strip():
        return _single_date(text.strip(), single, days)
    if len(parts) != 2 or not all(p.strip() for p in parts):
        form = "START..END or one date" if single is not None else "START..END"
        raise BadInputError(f"window {text!r}: expected {form}, e.g. 2026-10-01..2026-10-31")
    start = _moment(parts[0].strip(), text, end=False)
    end = _moment(parts[1].strip(), text, end=True)
    if end <= start:
        raise BadInputError(f"window {text!r}: END must come after START")
    return Window(start, end, text)


def _single_date(value: str, anchor: Anchor, days: int) -> Window:
    if days < 1:
        raise BadInputError(f"window {value!r}: the window must span at least 1 day (got {days})")
    try:
        day = date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise BadInputError(
            f"window {value!r}: expected a date (YYYY-MM-DD) or START..END, e.g. 2026-10-01"
        )
    first = day if anchor == "starting" else day - timedelta(days=days - 1)
    last = first + timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    label = f"{first:%Y-%m-%d}..{last:%Y-%m-%d} ({days} days {anchor} {day:%Y-%m-%d})"
    return Window(start, start + timedelta(days=days), label)


def _moment(value: str, window: str, *, end: bool) -> datetime:
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadInputError(f"window {window!r}: {value!r} is not a date or datetime") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
