"""Paired bootstrap of the champion-minus-candidate drop, on the rows both were scored on.

Both versions predicted the same tickets, so the question is not "are the two accuracies
different" but "is the candidate worse on these tickets". Resampling *rows* (the same
resample for both versions) keeps the pairing: tickets both get right or both get wrong
add no noise, which is why a paired interval is far narrower than two separate ones.

Vectorised: a resample is a vector of row weights (how often each row was drawn), and
every figure is a weighted sum of per-row indicators (true category k, predicted k,
right on k), so ``weights @ indicators`` gives the counts of thousands of resamples at
once. Seeded: the same rows, predictions and seed give the same interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from boltit.core.errors import BadInputError
from boltit.core.evaluation import f1_from_counts

# Resamples are drawn in blocks so 10k rows x 2,000 resamples never needs 160 MB at once.
_BLOCK_CELLS = 4_000_000


@dataclass(frozen=True)
class Drop:
    """Observed champion-minus-candidate drop and its bootstrap interval.

    ``level`` is the interval's coverage (0.95, or higher when corrected for several
    categories). Positive means the candidate is worse.
    """

    observed: float
    low: float
    high: float
    level: float

    @property
    def significant(self) -> bool:
        """The interval lies above 0: the candidate is worse on these rows, not by chance."""
        return self.low > 0.0


@dataclass(frozen=True)
class PairedDrops:
    """Accuracy, macro-F1 and per-category recall drops of one candidate vs. a champion."""

    rows: int
    resamples: int
    accuracy: Drop
    macro_f1: Drop
    recall: dict[str, Drop]


def _interval(
    draws: np.ndarray, observed: np.ndarray, alpha: float
) -> list[tuple[float, float, float]]:
    """Percentile interval per column; a category absent from a resample is skipped."""
    low = np.nanquantile(draws, alpha / 2.0, axis=0)
    high = np.nanquantile(draws, 1.0 - alpha / 2.0, axis=0)
    return [(float(o), float(lo), float(hi)) for o, lo, hi in zip(observed, low, high, strict=True)]


def paired_drops(
    *,
    truth: np.ndarray,
    champion: np.ndarray,
    candidate: np.ndarray,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedDrops:
    """Bootstrap the drops (champion minus candidate) of accuracy, macro-F1, category recall.

    Args:
        truth: True category per row.
        champion: The champion's predicted category per row.
        candidate: The candidate's predicted category per row, same rows.
        resamples: Bootstrap resamples.
        seed: Seed of the resampling, so a verdict is reproducible.
        confidence: Interval coverage of accuracy and macro-F1. Per-category recall
            intervals are Bonferroni-corrected: ``1 - (1 - confidence) / categories``.
    """
    y_true = np.asarray(truth, dtype=object).astype(str)
    y_champion = np.asarray(champion, dtype=object).astype(str)
    y_candidate = np.asarray(candidate, dtype=object).astype(str)
    n = len(y_true)
    if n == 0 or len(y_champion) != n or len(y_candidate) != n:
        raise BadInputError(
            "a paired comparison needs both versions' predictions on the same non-empty rows "
            f"(got {n} true, {len(y_champion)} champion, {len(y_candidate)} candidate)"
        )
    if resamples < 100:
        raise BadInputError(f"bootstrap resamples must be at least 100, got {resamples}")
    if not 0.5 <= confidence < 1.0:
        raise BadInputError(f"bootstrap confidence must be in [0.5, 1), got {confidence}")
    labels = sorted(set(y_true.tolist()))
    k = len(labels)
    is_true = np.stack([y_true == label for label in labels], axis=1)
    # Per-row indicators, one column each: true k | champion says k | candidate says k |
    # champion right on k | candidate right on k.
    champion_says = np.stack([y_champion == label for label in labels], axis=1)
    candidate_says = np.stack([y_candidate == label for label in labels], axis=1)
    indicators = np.concatenate(
        [is_true, champion_says, candidate_says, is_true & champion_says, is_true & candidate_says],
        axis=1,
    ).astype(np.float64)

    def figures(counts: np.ndarray, total: np.ndarray) -> np.ndarray:
        """Per resample: [accuracy drop, macro-F1 drop, recall drop per category]."""
        support = counts[:, 0:k]
        said_champion, said_candidate = counts[:, k : 2 * k], counts[:, 2 * k : 3 * k]
        right_champion, right_candidate = counts[:, 3 * k : 4 * k], counts[:, 4 * k : 5 * k]
        accuracy_drop = (right_champion.sum(axis=1) - right_candidate.sum(axis=1)) / total
        present = support > 0
        f1_champion = f1_from_counts(right_champion, support, said_champion)
        f1_candidate = f1_from_counts(right_candidate, support, said_candidate)
        # Macro over the categories present in this resample, as on the original rows.
        macro_drop = ((f1_champion - f1_candidate) * present).sum(axis=1) / present.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall_drop = np.where(present, (right_champion - right_candidate) / support, np.nan)
        return np.column_stack([accuracy_drop, macro_drop, recall_drop])

    observed = figures(indicators.sum(axis=0, keepdims=True), np.array([float(n)]))[0]
    rng = np.random.default_rng(seed)
    block = max(1, min(resamples, _BLOCK_CELLS // n))
    draws: list[np.ndarray] = []
    for start in range(0, resamples, block):
        size = min(block, resamples - start)
        picks = rng.integers(0, n, size=(size, n))
        # Row weights: how often each row was drawn in each resample.
        offsets = (picks + n * np.arange(size)[:, None]).ravel()
        weights = np.bincount(offsets, minlength=size * n).reshape(size, n).astype(np.float64)
        draws.append(figures(weights @ indicators, np.full(size, float(n))))
    sampled = np.concatenate(draws, axis=0)

    alpha = 1.0 - confidence
    overall = _interval(sampled[:, :2], observed[:2], alpha)
    per_category = _interval(sampled[:, 2:], observed[2:], alpha / k)
    recall_level = 1.0 - alpha / k
    return PairedDrops(
        rows=n,
        resamples=resamples,
        accuracy=Drop(*overall[0], level=confidence),
        macro_f1=Drop(*overall[1], level=confidence),
        recall={
            label: Drop(*values, level=recall_level)
            for label, values in zip(labels, per_category, strict=True)
        },
    )
