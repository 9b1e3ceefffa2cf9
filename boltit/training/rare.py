"""Folding categories too rare to learn into one fallback category (``--min-class-rows``)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from boltit.core.errors import BadInputError
from boltit.training.data import CATEGORY

DEFAULT_OTHER = "Other"


@dataclass(frozen=True)
class Folding:
    """The frame with rare categories relabelled, and which categories were folded."""

    frame: pd.DataFrame
    folded: dict[str, int]  # category -> its rows, smallest first
    other: str

    def describe(self, min_rows: int) -> str:
        names = ", ".join(f"{c!r} ({n})" for c, n in self.folded.items())
        return (
            f"folded {len(self.folded)} categor{'y' if len(self.folded) == 1 else 'ies'} "
            f"with fewer than {min_rows} rows into {self.other!r}: {names}"
        )


def fold_rare_categories(
    frame: pd.DataFrame, *, min_rows: int, other: str = DEFAULT_OTHER
) -> Folding:
    """Relabel every category with fewer than ``min_rows`` rows as ``other``.

    An existing ``other`` category keeps its rows and absorbs the folded ones.

    Raises:
        BadInputError: ``min_rows`` is negative, ``other`` is blank, or folding would
            leave fewer than two categories.
    """
    if min_rows < 0:
        raise BadInputError(f"--min-class-rows must be 0 (off) or more, got {min_rows}")
    if not other.strip():
        raise BadInputError("the fallback category name (--other-label) must not be blank")
    counts = frame[CATEGORY].value_counts()
    rare = counts[(counts < min_rows) & (counts.index != other)].sort_values(kind="stable")
    if rare.empty:
        return Folding(frame, {}, other)
    folded = frame.copy()
    folded.loc[folded[CATEGORY].isin(rare.index), CATEGORY] = other
    if folded[CATEGORY].nunique() < 2:
        raise BadInputError(
            f"--min-class-rows {min_rows} would fold every category into {other!r}; "
            "a classifier needs at least two categories"
        )
    return Folding(folded, {str(c): int(n) for c, n in rare.items()}, other)
