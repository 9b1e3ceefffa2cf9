"""Thresholds of the data-quality suites, with defaults measured on real help-desk data.

The defaults were checked against the shared IT-service dataset (47,837 tickets, 8
categories): it has no duplicate texts, no conflicting labels, texts of 7 to 7,015
characters and an imbalance of 7.7 (Hardware 13,617 vs Administrative rights 1,760).
They leave room for messier exports (templated tickets, long e-mail threads) while still
catching the defects that hurt a classifier.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class TrainingDataConfig:
    """What ``training_data`` accepts.

    Attributes:
        min_text_length: Shortest usable ticket text, in characters after trimming.
            Tickets shorter than this ("hi", "test") carry no signal.
        max_text_length: Longest ticket text, in characters; longer ones are usually
            pasted logs or whole e-mail threads.
        allowed_labels: The category set, when the caller knows it; None skips the check.
        min_rows_per_class: Fewest tickets a category may have.
        max_duplicate_rate: Highest share of rows whose text (trimmed, case-folded,
            whitespace collapsed) repeats an earlier row.
        max_conflicting_label_rate: Highest share of rows whose identical text carries
            more than one category across the dataset.
        max_imbalance_ratio: Largest allowed ratio of the biggest to the smallest category.
    """

    min_text_length: int = 5
    max_text_length: int = 20_000
    allowed_labels: frozenset[str] | None = None
    min_rows_per_class: int = 50
    max_duplicate_rate: float = 0.10
    max_conflicting_label_rate: float = 0.01
    max_imbalance_ratio: float = 20.0

    def __post_init__(self) -> None:
        if self.min_text_length < 1:
            raise ValueError("min_text_length must be at least 1")
        if self.max_text_length < self.min_text_length:
            raise ValueError("max_text_length must not be below min_text_length")
        if self.min_rows_per_class < 1:
            raise ValueError("min_rows_per_class must be at least 1")
        for name in ("max_duplicate_rate", "max_conflicting_label_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.max_imbalance_ratio < 1.0:
            raise ValueError("max_imbalance_ratio must be at least 1")

    def with_labels(self, labels: Collection[str] | None) -> TrainingDataConfig:
        """A copy that also checks labels against ``labels``."""
        return TrainingDataConfig(
            min_text_length=self.min_text_length,
            max_text_length=self.max_text_length,
            allowed_labels=frozenset(labels) if labels is not None else None,
            min_rows_per_class=self.min_rows_per_class,
            max_duplicate_rate=self.max_duplicate_rate,
            max_conflicting_label_rate=self.max_conflicting_label_rate,
            max_imbalance_ratio=self.max_imbalance_ratio,
        )


@dataclass(frozen=True)
class PredictionLogConfig:
    """What ``prediction_log`` accepts.

    Attributes:
        clock_skew_seconds: How far in the future a timestamp may be before it counts as
            wrong; replicas' clocks drift by a little.
        max_latency_ms: Optional upper bound on latency; None checks only non-negativity.
    """

    clock_skew_seconds: float = 300.0
    max_latency_ms: float | None = None
