"""Each ``training_data`` expectation passes clean tickets and catches its own defect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from boltit.data_checks.config import TrainingDataConfig
from boltit.data_checks.suites import run_training_data_suite
from boltit.training.generator import CATEGORIES, generate_tickets
from tests.data_checks.conftest import failing

Defect = Callable[[pd.DataFrame], pd.DataFrame]


def _set(frame: pd.DataFrame, rows: slice, column: str, value: Any) -> pd.DataFrame:
    bad = frame.copy()
    bad[column] = bad[column].astype(object)
    bad.loc[bad.index[rows], column] = value
    return bad


def _duplicated(frame: pd.DataFrame) -> pd.DataFrame:
    # 15% extra copies, re-cased and re-spaced: still the same ticket text.
    copies = frame.sample(frac=0.15, random_state=1).copy()
    copies["text"] = "  " + copies["text"].str.upper().str.replace(" ", "   ") + "\n"
    return pd.concat([frame, copies], ignore_index=True)


def _conflicting(frame: pd.DataFrame) -> pd.DataFrame:
    copies = frame.sample(frac=0.02, random_state=2).copy()
    copies["category"] = copies["category"].map(
        lambda c: "Hardware" if c != "Hardware" else "Access"
    )
    return pd.concat([frame, copies], ignore_index=True)


def _one_category(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(category="Hardware")


def _rare_category(frame: pd.DataFrame) -> pd.DataFrame:
    rare = frame[frame["category"] == "Administrative rights"].head(20)
    return pd.concat([frame[frame["category"] != "Administrative rights"], rare])


def _imbalanced(frame: pd.DataFrame) -> pd.DataFrame:
    smallest = frame[frame["category"] == "Storage"].head(60)
    hardware = generate_tickets(1400, seed=5, category_weights={"Hardware": 1.0})
    rest = frame[~frame["category"].isin(["Storage", "Hardware"])]
    return pd.concat([rest, smallest, hardware], ignore_index=True)


DEFECTS: dict[str, Defect] = {
    "required_columns": lambda f: f.drop(columns=["category"]),
    "has_rows": lambda f: f.iloc[0:0],
    "text_not_null": lambda f: _set(f, slice(0, 3), "text", None),
    "text_not_empty": lambda f: _set(f, slice(0, 3), "text", " \t  "),
    "text_length_bounds": lambda f: _set(f, slice(0, 2), "text", "x" * 25_000),
    "category_not_null": lambda f: _set(f, slice(5, 7), "category", None),
    "labels_allowed": lambda f: _set(f, slice(0, 60), "category", "Hardwear"),
    "duplicate_rate": _duplicated,
    "conflicting_labels": _conflicting,
    "at_least_two_categories": _one_category,
    "min_rows_per_class": _rare_category,
    "class_imbalance_ratio": _imbalanced,
}

CONFIG = TrainingDataConfig().with_labels(CATEGORIES)


def test_clean_tickets_pass_every_expectation(good_tickets: pd.DataFrame) -> None:
    report = run_training_data_suite(good_tickets, config=CONFIG)

    assert report.success, [o for o in report.outcomes if not o.success]
    assert {o.name for o in report.outcomes} == set(DEFECTS)
    assert report.rows == len(good_tickets)


@pytest.mark.parametrize("check", sorted(DEFECTS))
def test_each_defect_fails_its_expectation(good_tickets: pd.DataFrame, check: str) -> None:
    bad = DEFECTS[check](good_tickets)

    report = run_training_data_suite(bad, config=CONFIG)

    assert not report.success
    assert check in failing(report.outcomes)
    outcome = next(o for o in report.outcomes if o.name == check)
    assert outcome.observed  # the table shows what was seen, not just "fail"
    assert check in report.to_dict()["failed"]


def test_short_text_fails_length_but_not_emptiness(good_tickets: pd.DataFrame) -> None:
    bad = _set(good_tickets, slice(0, 4), "text", "hi")

    report = run_training_data_suite(bad)

    assert failing(report.outcomes) == ["text_length_bounds"]
    outcome = next(o for o in report.outcomes if o.name == "text_length_bounds")
    assert outcome.observed.startswith("4 of 1,600 rows unexpected")
    assert "hi" in outcome.observed


def test_observed_values_name_the_culprits(good_tickets: pd.DataFrame) -> None:
    report = run_training_data_suite(_rare_category(good_tickets))
    rare = next(o for o in report.outcomes if o.name == "min_rows_per_class")
    assert "Administrative rights, 20" in rare.observed

    report = run_training_data_suite(_duplicated(good_tickets))
    duplicates = next(o for o in report.outcomes if o.name == "duplicate_rate")
    assert duplicates.value == pytest.approx(240 / 1840, abs=1e-6)
    assert duplicates.observed == f"duplicate rate {240 / 1840:.2%}"


def test_thresholds_are_configurable(good_tickets: pd.DataFrame) -> None:
    strict = TrainingDataConfig(min_rows_per_class=10_000, max_imbalance_ratio=1.5)

    report = run_training_data_suite(good_tickets, config=strict)

    assert set(failing(report.outcomes)) == {"min_rows_per_class", "class_imbalance_ratio"}


def test_conflicts_below_the_allowed_rate_pass(good_tickets: pd.DataFrame) -> None:
    one_conflict = pd.concat(
        [good_tickets, good_tickets.head(1).assign(category="Purchase")], ignore_index=True
    )

    assert run_training_data_suite(one_conflict).success
    strict = TrainingDataConfig(max_conflicting_label_rate=0.0)
    assert failing(run_training_data_suite(one_conflict, config=strict).outcomes) == [
        "conflicting_labels"
    ]


def test_invalid_config_is_refused() -> None:
    with pytest.raises(ValueError, match="max_duplicate_rate"):
        TrainingDataConfig(max_duplicate_rate=1.5)
    with pytest.raises(ValueError, match="max_text_length"):
        TrainingDataConfig(min_text_length=10, max_text_length=5)
