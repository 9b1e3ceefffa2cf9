"""``--min-class-rows``: rare categories fold into a named fallback category."""

from __future__ import annotations

import pandas as pd
import pytest

from boltit.core.errors import BadInputError
from boltit.training.rare import fold_rare_categories


def _frame(counts: dict[str, int]) -> pd.DataFrame:
    labels = [label for label, n in counts.items() for _ in range(n)]
    return pd.DataFrame({"text": [f"ticket {i}" for i in range(len(labels))], "category": labels})


def test_rare_categories_fold_into_other_and_are_listed() -> None:
    frame = _frame({"Hardware": 10, "Access": 6, "Printers 3/F": 2, "Ünïcode": 1, "Other": 1})
    folding = fold_rare_categories(frame, min_rows=3)
    # Smallest first; an existing 'Other' absorbs them rather than being folded itself.
    assert folding.folded == {"Ünïcode": 1, "Printers 3/F": 2}
    assert folding.frame["category"].value_counts().to_dict() == {
        "Hardware": 10,
        "Access": 6,
        "Other": 4,
    }
    assert "'Printers 3/F' (2)" in folding.describe(3)
    assert frame["category"].nunique() == 5  # the input is left as it was


def test_off_by_default_and_bad_settings_are_refused() -> None:
    frame = _frame({"A": 5, "B": 1})
    assert fold_rare_categories(frame, min_rows=0).folded == {}
    assert fold_rare_categories(frame, min_rows=0).frame is frame
    with pytest.raises(BadInputError, match="--min-class-rows"):
        fold_rare_categories(frame, min_rows=-1)
    with pytest.raises(BadInputError, match="blank"):
        fold_rare_categories(frame, min_rows=2, other=" ")
    with pytest.raises(BadInputError, match="at least two categories"):
        fold_rare_categories(frame, min_rows=10)
