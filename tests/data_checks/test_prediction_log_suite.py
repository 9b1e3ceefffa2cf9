"""Each ``prediction_log`` expectation passes a clean log and catches its own defect."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from boltit.data_checks.suites import run_prediction_log_suite
from tests.data_checks.conftest import failing

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
KNOWN = {"1": {"Hardware", "Access", "Storage"}, "2": {"Hardware", "Access", "Storage", "Purchase"}}


@pytest.fixture
def log() -> pd.DataFrame:
    rows = 200
    return pd.DataFrame(
        {
            "model_version": ["1"] * 100 + ["2"] * 100,
            "category": (["Hardware", "Access", "Storage", "Hardware"] * 50),
            "confidence": [0.5 + (i % 50) / 100 for i in range(rows)],
            "latency_ms": [5.0 + i % 7 for i in range(rows)],
            "created_at": [NOW - timedelta(hours=rows - i) for i in range(rows)],
        }
    )


def _edit(column: str, rows: slice, value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def apply(frame: pd.DataFrame) -> pd.DataFrame:
        bad = frame.copy()
        bad[column] = bad[column].astype(object)
        bad.loc[bad.index[rows], column] = value
        return bad

    return apply


DEFECTS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "required_columns": lambda f: f.drop(columns=["latency_ms"]),
    "model_version_present": _edit("model_version", slice(0, 2), " "),
    "confidence_in_range": _edit("confidence", slice(3, 4), 1.3),
    # Purchase is known to version 2 only.
    "categories_known": _edit("category", slice(0, 1), "Purchase"),
    "latency_non_negative": _edit("latency_ms", slice(0, 1), -4.0),
    "no_future_timestamps": _edit("created_at", slice(-1, None), NOW + timedelta(hours=2)),
}


def test_clean_log_passes(log: pd.DataFrame) -> None:
    report = run_prediction_log_suite(log, known_categories=KNOWN, now=NOW)

    assert report.success, [o for o in report.outcomes if not o.success]
    assert [o.name for o in report.outcomes] == [
        "required_columns",
        "model_version_present",
        "confidence_in_range",
        "categories_known",
        "latency_non_negative",
        "no_future_timestamps",
    ]


@pytest.mark.parametrize("check", sorted(DEFECTS))
def test_each_defect_fails_its_expectation(log: pd.DataFrame, check: str) -> None:
    report = run_prediction_log_suite(DEFECTS[check](log), known_categories=KNOWN, now=NOW)

    assert check in failing(report.outcomes)


def test_unknown_category_is_named_with_its_version(log: pd.DataFrame) -> None:
    bad = DEFECTS["categories_known"](log)

    report = run_prediction_log_suite(bad, known_categories=KNOWN, now=NOW)

    assert failing(report.outcomes) == ["categories_known"]
    outcome = next(o for o in report.outcomes if o.name == "categories_known")
    assert "1, Purchase" in outcome.observed


def test_one_category_set_for_every_version(log: pd.DataFrame) -> None:
    categories = {"Hardware", "Access", "Storage"}
    assert run_prediction_log_suite(log, known_categories=categories, now=NOW).success

    bad = DEFECTS["categories_known"](log)
    report = run_prediction_log_suite(bad, known_categories=categories, now=NOW)
    assert failing(report.outcomes) == ["categories_known"]


def test_small_clock_skew_is_tolerated(log: pd.DataFrame) -> None:
    skewed = _edit("created_at", slice(-1, None), NOW + timedelta(seconds=30))(log)

    assert run_prediction_log_suite(skewed, known_categories=KNOWN, now=NOW).success
