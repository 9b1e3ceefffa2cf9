"""The two data-quality suites: ``training_data`` and ``prediction_log``.

Dataset-level checks GX has no expectation for (rows per class, imbalance, conflicting
labels) run as ordinary GX expectations on derived frames and columns, so they show in
Data Docs like every other check.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Set
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from boltit.data_checks import frames
from boltit.data_checks.config import PredictionLogConfig, TrainingDataConfig
from boltit.data_checks.gx_runner import Batch, Check, ExpectationOutcome, run_batches

TRAINING_DATA = "training_data"
PREDICTION_LOG = "prediction_log"
SUITES = (TRAINING_DATA, PREDICTION_LOG)

TRAINING_REQUIRED = (frames.TEXT, frames.CATEGORY)
PREDICTION_LOG_REQUIRED = ("model_version", "confidence", "category", "latency_ms", "created_at")

__all__ = [
    "PREDICTION_LOG",
    "SUITES",
    "TRAINING_DATA",
    "ExpectationOutcome",
    "SuiteReport",
    "run_prediction_log_suite",
    "run_training_data_suite",
]


@dataclass(frozen=True)
class SuiteReport:
    """The result of one suite run.

    Attributes:
        suite: ``training_data`` or ``prediction_log``.
        success: True when every expectation passed.
        outcomes: One entry per expectation, in suite order.
        rows: How many rows were checked.
        data_docs: The Data Docs index page, when Data Docs were built.
    """

    suite: str
    success: bool
    outcomes: list[ExpectationOutcome]
    rows: int = 0
    data_docs: Path | None = field(default=None, compare=False)

    @property
    def failures(self) -> list[ExpectationOutcome]:
        """The expectations that failed."""
        return [o for o in self.outcomes if not o.success]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (logged as an MLflow artifact and written by ``check-data``)."""
        return {
            "suite": self.suite,
            "success": self.success,
            "rows": self.rows,
            "failed": [o.name for o in self.failures],
            "outcomes": [o.to_dict() for o in self.outcomes],
            "data_docs": str(self.data_docs) if self.data_docs else None,
        }

    def write_json(self, path: Path) -> Path:
        """Write :meth:`to_dict` to ``path``; returns the path."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return path


def run_training_data_suite(
    frame: pd.DataFrame,
    *,
    config: TrainingDataConfig | None = None,
    data_docs_dir: Path | None = None,
) -> SuiteReport:
    """Check a training frame (``text``, ``category``, optional ``priority``/``created_at``).

    Args:
        frame: The tickets to train on.
        config: Thresholds; the documented defaults when None.
        data_docs_dir: Where to build GX Data Docs; none are built when None.
    """
    import great_expectations.expectations as gxe

    config = config or TrainingDataConfig()
    required = Check(
        "required_columns",
        "The frame has the columns training reads: text and category.",
        gxe.ExpectTableColumnsToMatchSet(column_set=list(TRAINING_REQUIRED), exact_match=False),
    )
    rows = frames.training_rows(frame)
    if any(column not in frame.columns for column in TRAINING_REQUIRED):
        return _report(TRAINING_DATA, [Batch(TRAINING_DATA, rows, [required])], data_docs_dir)

    row_checks = [required, *_text_checks(config), *_label_checks(config)]
    class_checks = _training_class_checks(config)
    classes = frames.class_counts(frame)
    batches = [
        Batch(TRAINING_DATA, rows, row_checks),
        Batch(f"{TRAINING_DATA}_classes", classes, class_checks, "categories"),
    ]
    report = _report(TRAINING_DATA, batches, data_docs_dir)
    return _name_failing_categories(report, frame, classes, config)


def _text_checks(config: TrainingDataConfig) -> list[Check]:
    """The per-ticket checks on the text, in report order."""
    import great_expectations.expectations as gxe

    return [
        Check(
            "has_rows",
            "There is at least one ticket to learn from.",
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
        ),
        Check(
            "text_not_null",
            "Every ticket has a text.",
            gxe.ExpectColumnValuesToNotBeNull(column=frames.TEXT),
        ),
        Check(
            "text_not_empty",
            "No ticket text is empty or whitespace only.",
            gxe.ExpectColumnValuesToBeBetween(column=frames.TEXT_LENGTH, min_value=1),
            identify_by=(frames.TEXT,),
        ),
        Check(
            "text_length_bounds",
            f"Trimmed ticket text is {config.min_text_length} to "
            f"{config.max_text_length} characters long.",
            gxe.ExpectColumnValuesToBeBetween(
                column=frames.TEXT_LENGTH,
                min_value=config.min_text_length,
                max_value=config.max_text_length,
            ),
            identify_by=(frames.TEXT,),
        ),
    ]


def _label_checks(config: TrainingDataConfig) -> list[Check]:
    """The per-ticket checks on the category label, in report order."""
    import great_expectations.expectations as gxe

    checks = [
        Check(
            "category_not_null",
            "Every ticket has a category label.",
            gxe.ExpectColumnValuesToNotBeNull(column=frames.CATEGORY),
            identify_by=(frames.TEXT,),
        ),
    ]
    if config.allowed_labels is not None:
        checks.append(
            Check(
                "labels_allowed",
                "Every category is one of the allowed categories.",
                gxe.ExpectColumnValuesToBeInSet(
                    column=frames.CATEGORY, value_set=sorted(config.allowed_labels)
                ),
            )
        )
    checks += [
        Check(
            "duplicate_rate",
            f"At most {config.max_duplicate_rate:.0%} of tickets repeat an earlier ticket's "
            "text (trimmed, case-folded, whitespace collapsed).",
            gxe.ExpectColumnProportionOfUniqueValuesToBeBetween(
                column=frames.TEXT_KEY, min_value=1.0 - config.max_duplicate_rate
            ),
            restate=_duplicate_rate,
        ),
        Check(
            "conflicting_labels",
            f"At most {config.max_conflicting_label_rate:.1%} of tickets have a text that "
            "carries more than one category.",
            gxe.ExpectColumnValuesToBeBetween(
                column=frames.LABELS_FOR_TEXT,
                max_value=1,
                mostly=1.0 - config.max_conflicting_label_rate,
            ),
            identify_by=(frames.TEXT,),
        ),
    ]
    return checks


def _training_class_checks(config: TrainingDataConfig) -> list[Check]:
    """The checks on the per-category frame (one row per category)."""
    import great_expectations.expectations as gxe

    return [
        Check(
            "at_least_two_categories",
            "A classifier needs at least two categories.",
            gxe.ExpectTableRowCountToBeBetween(min_value=2),
        ),
        Check(
            "min_rows_per_class",
            f"Every category has at least {config.min_rows_per_class} tickets.",
            gxe.ExpectColumnValuesToBeBetween(
                column=frames.CLASS_ROWS, min_value=config.min_rows_per_class
            ),
            identify_by=(frames.CATEGORY, frames.CLASS_ROWS),
        ),
        Check(
            "class_imbalance_ratio",
            f"The biggest category has at most {config.max_imbalance_ratio:g} times the "
            "tickets of the smallest.",
            gxe.ExpectColumnMaxToBeBetween(
                column=frames.RATIO_TO_SMALLEST, max_value=config.max_imbalance_ratio
            ),
        ),
    ]


def _name_failing_categories(
    report: SuiteReport, frame: pd.DataFrame, classes: pd.DataFrame, config: TrainingDataConfig
) -> SuiteReport:
    """Attach the categories behind each failed per-category check to its outcome.

    A label nobody meant (feedback naming a category no model knows) shows up as a
    category with a handful of rows; naming it tells the user which labels to fix.
    """
    counts = dict(zip(classes[frames.CATEGORY], classes[frames.CLASS_ROWS], strict=True))
    biggest = max(counts.values(), default=0)
    culprits = {
        "min_rows_per_class": [c for c, n in counts.items() if n < config.min_rows_per_class],
        # The categories too small beside the biggest one, smallest first.
        "class_imbalance_ratio": [
            c
            for c, n in sorted(counts.items(), key=lambda kv: kv[1])
            if n * config.max_imbalance_ratio < biggest
        ],
        "labels_allowed": sorted(
            set(frame[frames.CATEGORY].dropna().astype(str)) - set(config.allowed_labels or ())
        )
        if config.allowed_labels is not None
        else [],
    }
    outcomes = [
        replace(o, categories=tuple(str(c) for c in culprits[o.name]))
        if not o.success and culprits.get(o.name)
        else o
        for o in report.outcomes
    ]
    return replace(report, outcomes=outcomes)


def run_prediction_log_suite(
    frame: pd.DataFrame,
    *,
    known_categories: Mapping[str, Set[str]] | Set[str],
    config: PredictionLogConfig | None = None,
    now: datetime | None = None,
    data_docs_dir: Path | None = None,
) -> SuiteReport:
    """Check a prediction log (``model_version, confidence, category, latency_ms, created_at``).

    Args:
        frame: Logged predictions, e.g. from ``ticket_frames.prediction_log``.
        known_categories: Categories each model version can predict (version -> set), or
            one set that holds for every version.
        config: Thresholds; the defaults when None.
        now: The moment "the future" starts from; the current time when None.
        data_docs_dir: Where to build GX Data Docs; none are built when None.
    """
    import great_expectations.expectations as gxe

    config = config or PredictionLogConfig()
    required = Check(
        "required_columns",
        "The log has model_version, confidence, category, latency_ms and created_at.",
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(PREDICTION_LOG_REQUIRED), exact_match=False
        ),
    )
    if any(column not in frame.columns for column in PREDICTION_LOG_REQUIRED):
        return _report(PREDICTION_LOG, [Batch(PREDICTION_LOG, frame, [required])], data_docs_dir)

    log = _prediction_rows(frame)
    latest = (now or datetime.now(UTC)) + timedelta(seconds=config.clock_skew_seconds)
    checks = [
        required,
        Check(
            "model_version_present",
            "Every prediction names the model version that made it.",
            gxe.ExpectColumnValuesToNotBeNull(column="model_version"),
        ),
        Check(
            "confidence_in_range",
            "Confidence is a probability in [0, 1].",
            gxe.ExpectColumnValuesToBeBetween(column="confidence", min_value=0.0, max_value=1.0),
        ),
        _known_categories_check(known_categories),
        Check(
            "latency_non_negative",
            "Latency is never negative"
            + (f" nor above {config.max_latency_ms:g} ms." if config.max_latency_ms else "."),
            gxe.ExpectColumnValuesToBeBetween(
                column="latency_ms", min_value=0.0, max_value=config.max_latency_ms
            ),
        ),
        Check(
            "no_future_timestamps",
            f"No prediction is stamped more than {config.clock_skew_seconds:g} s in the future.",
            gxe.ExpectColumnValuesToBeBetween(column="created_at", max_value=latest),
        ),
    ]
    return _report(PREDICTION_LOG, [Batch(PREDICTION_LOG, log, checks)], data_docs_dir)


def _known_categories_check(known_categories: Mapping[str, Set[str]] | Set[str]) -> Check:
    """``categories_known``: per model version when the caller knows each version's labels."""
    import great_expectations.expectations as gxe

    if isinstance(known_categories, Mapping):
        pairs = sorted((str(v), c) for v, cats in known_categories.items() for c in cats)
        return Check(
            "categories_known",
            "Every predicted category is one the predicting model version knows.",
            gxe.ExpectColumnPairValuesToBeInSet(
                column_A="model_version", column_B="category", value_pairs_set=pairs
            ),
            identify_by=("model_version", "category"),
        )
    return Check(
        "categories_known",
        "Every predicted category is one the model knows.",
        gxe.ExpectColumnValuesToBeInSet(column="category", value_set=sorted(known_categories)),
    )


def _prediction_rows(frame: pd.DataFrame) -> pd.DataFrame:
    log = frame.copy()
    versions = log["model_version"].astype("str")
    blank = log["model_version"].isna() | (versions.str.strip() == "")
    log["model_version"] = versions.where(~blank, None)
    log["category"] = log["category"].astype("str")
    for column in ("confidence", "latency_ms"):
        log[column] = pd.to_numeric(log[column], errors="coerce")
    log["created_at"] = pd.to_datetime(log["created_at"], utc=True, errors="coerce")
    return log


def _duplicate_rate(unique_share: float) -> tuple[str, float]:
    rate = 1.0 - unique_share
    return f"duplicate rate {rate:.2%}", rate


def _report(suite: str, batches: list[Batch], data_docs_dir: Path | None) -> SuiteReport:
    outcomes, docs = run_batches(batches, data_docs_dir=data_docs_dir)
    return SuiteReport(
        suite=suite,
        success=all(o.success for o in outcomes),
        outcomes=outcomes,
        rows=len(batches[0].frame),
        data_docs=docs,
    )
