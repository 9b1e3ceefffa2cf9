"""Fast regression detection: a Bernoulli CUSUM of Production's feedback against what it proved.

Each labelled ticket is a Bernoulli trial (the model was right or not). The statistic
accumulates the log-likelihood ratio of "accuracy is ``drop`` below what the version proved"
(H1) against "accuracy is what the version proved" (H0), and resets at zero, so a long good
stretch never hides a later drop. It alarms when the statistic crosses ``threshold``; the
default was chosen by Monte-Carlo simulation (see the README).

The proven figure is itself an estimate from a finite evaluation set. H0 is therefore its
one-sided lower confidence bound (Wilson), not the point estimate: a version proven on 300
rows is not held to a figure it may have reached by luck, and one proven on 5,000 rows is
held almost exactly to it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from statistics import NormalDist
from typing import Any

import numpy as np

# Keep the hypotheses away from 0 and 1, where the log-likelihood ratio is infinite.
_P_MIN = 0.05
_P_MAX = 0.995


@dataclass(frozen=True)
class SequentialConfig:
    """Parameters of the test: size of the drop to detect, alarm threshold, and how far
    below the proven point estimate H0 sits (one-sided confidence of its lower bound)."""

    drop: float = 0.10
    threshold: float = 10.0
    warning_fraction: float = 0.5
    proven_confidence: float = 0.95

    def __post_init__(self) -> None:
        if not 0.0 < self.drop < 0.5:
            raise ValueError(f"sequential drop must be in (0, 0.5), got {self.drop}")
        if self.threshold <= 0:
            raise ValueError(f"sequential threshold must be positive, got {self.threshold}")
        if not 0.0 < self.warning_fraction < 1.0:
            raise ValueError("sequential warning_fraction must be in (0, 1)")
        if not 0.5 <= self.proven_confidence < 1.0:
            raise ValueError(
                f"sequential proven_confidence must be in [0.5, 1), got {self.proven_confidence}"
            )

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> SequentialConfig:
        """From the ``sequential`` block of ``alerts.yaml``; an unknown key is named."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ValueError(
                f"unknown sequential setting {unknown[0]!r} (known: {', '.join(known)})"
            )
        return cls(**{key: float(value) for key, value in raw.items()})


def proven_lower_bound(accuracy: float, rows: int | None, *, confidence: float) -> float:
    """One-sided Wilson lower bound of an accuracy measured on ``rows`` evaluation rows.

    With ``rows`` unknown the point estimate is all there is, and it is returned as is.
    """
    if rows is None or rows <= 0 or confidence <= 0.5:
        return accuracy
    z = NormalDist().inv_cdf(confidence)
    centre = accuracy + z * z / (2 * rows)
    spread = z * math.sqrt(accuracy * (1 - accuracy) / rows + z * z / (4 * rows * rows))
    return max(0.0, (centre - spread) / (1 + z * z / rows))


@dataclass(frozen=True)
class SequentialResult:
    """Outcome of the test over the observations seen so far."""

    baseline: float
    """H0: the accuracy the version proved (its lower confidence bound), clipped to (0, 1)."""
    alternative: float
    """H1: ``baseline - drop``."""
    observations: int
    correct: int
    statistic: float
    peak: float
    threshold: float
    alarm: bool
    alarm_at: int | None
    """1-based index of the labelled ticket at which the statistic first crossed the threshold."""

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.observations if self.observations else None


def increments(baseline: float, drop: float) -> tuple[float, float, float]:
    """(p0, log-LR step for a correct answer, log-LR step for a wrong one)."""
    p0 = min(max(baseline, _P_MIN + drop), _P_MAX)
    p1 = p0 - drop
    return p0, math.log(p1 / p0), math.log((1.0 - p1) / (1.0 - p0))


@dataclass(frozen=True)
class Detection:
    """The CUSUM over one or many feedback streams, one entry per stream."""

    statistic: np.ndarray
    """The statistic after the last labelled ticket."""
    peak: np.ndarray
    alarm_at: np.ndarray
    """1-based index of the labelled ticket at which the statistic first crossed the
    threshold, 0 where it never did."""


def detect(
    outcomes: np.ndarray, *, baseline: float | np.ndarray, config: SequentialConfig
) -> Detection:
    """The detector: the CUSUM over a (streams, tickets) boolean matrix, in feedback order.

    The monitor runs it on Production's one stream (:func:`cusum`) and :func:`simulate` on
    thousands, so the README's figures measure the test production runs.

    The reset-at-zero recursion ``S_t = max(0, S_{t-1} + x_t)`` equals ``C_t - min(0,
    min_{s<=t} C_s)`` with ``C`` the running sum of the steps (Lindley), which scores whole
    streams without a Python loop over tickets.

    Args:
        outcomes: True where the model's category matched the agent's feedback.
        baseline: H0 for every stream, or one per stream.
        config: Drop to detect and alarm threshold.
    """
    outcomes = np.asarray(outcomes, dtype=bool)
    streams, tickets = outcomes.shape
    baselines = np.broadcast_to(np.asarray(baseline, dtype=float), (streams,))
    steps = np.array([increments(float(value), config.drop)[1:] for value in baselines])
    steps = steps.reshape(streams, 2)
    if tickets == 0:
        empty = np.zeros(streams)
        return Detection(statistic=empty, peak=empty, alarm_at=np.zeros(streams, dtype=np.int64))
    running = np.cumsum(np.where(outcomes, steps[:, :1], steps[:, 1:]), axis=1)
    statistic = running - np.minimum(np.minimum.accumulate(running, axis=1), 0.0)
    crossed = statistic >= config.threshold
    alarm_at = np.where(crossed.any(axis=1), crossed.argmax(axis=1) + 1, 0)
    return Detection(statistic=statistic[:, -1], peak=statistic.max(axis=1), alarm_at=alarm_at)


def cusum(
    outcomes: Iterable[bool], *, baseline: float, config: SequentialConfig = SequentialConfig()
) -> SequentialResult:
    """Run the CUSUM over outcomes in the order the feedback arrived.

    Args:
        outcomes: True where the model's category matched the agent's feedback.
        baseline: H0, the accuracy the Production version proved (already lowered by
            :func:`proven_lower_bound` where its evaluation set was small).
        config: Drop to detect and alarm threshold.
    """
    stream = np.fromiter((bool(outcome) for outcome in outcomes), dtype=bool)
    detection = detect(stream[np.newaxis, :], baseline=baseline, config=config)
    p0 = increments(baseline, config.drop)[0]
    alarm_at = int(detection.alarm_at[0]) or None
    return SequentialResult(
        baseline=p0,
        alternative=p0 - config.drop,
        observations=len(stream),
        correct=int(stream.sum()),
        statistic=float(detection.statistic[0]),
        peak=float(detection.peak[0]),
        threshold=config.threshold,
        alarm=alarm_at is not None,
        alarm_at=alarm_at,
    )


@dataclass(frozen=True)
class SimulationSummary:
    """Monte-Carlo figures of the test for one proven and one live accuracy."""

    runs: int
    horizon: int
    proven_accuracy: float
    live_accuracy: float
    evaluation_rows: int | None
    alarm_rate: float
    median_delay: float | None
    p95_delay: float | None


def simulated_streams(
    *,
    proven_accuracy: float,
    live_accuracy: float,
    evaluation_rows: int | None,
    runs: int,
    horizon: int,
    seed: int,
    config: SequentialConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """(H0 per run, a (runs, horizon) matrix of right/wrong labelled tickets) as
    :func:`simulate` draws them; arguments as there."""
    rng = np.random.default_rng(seed)
    if evaluation_rows is None:
        baselines = np.full(runs, proven_accuracy)
    else:
        measured = rng.binomial(evaluation_rows, proven_accuracy, size=runs) / evaluation_rows
        baselines = np.array(
            [
                proven_lower_bound(float(m), evaluation_rows, confidence=config.proven_confidence)
                for m in measured
            ]
        )
    return baselines, rng.random((runs, horizon)) < live_accuracy


def simulate(
    *,
    proven_accuracy: float,
    live_accuracy: float,
    evaluation_rows: int | None = None,
    runs: int = 1000,
    horizon: int = 2000,
    seed: int = 0,
    config: SequentialConfig = SequentialConfig(),
) -> SimulationSummary:
    """Alarm rate and detection delay of the test on simulated feedback streams.

    Args:
        proven_accuracy: The version's true accuracy on data like its evaluation set.
        live_accuracy: Its true accuracy on the live tickets.
        evaluation_rows: Size of the evaluation set. Each run then draws the proven figure
            the way validation measured it (binomial on that many rows) and tests against its
            lower bound, as the monitor does; None tests against the exact figure.
    """
    baselines, outcomes = simulated_streams(
        proven_accuracy=proven_accuracy,
        live_accuracy=live_accuracy,
        evaluation_rows=evaluation_rows,
        runs=runs,
        horizon=horizon,
        seed=seed,
        config=config,
    )
    alarm_at = detect(outcomes, baseline=baselines, config=config).alarm_at
    delays: Sequence[int] = alarm_at[alarm_at > 0].tolist()
    return SimulationSummary(
        runs=runs,
        horizon=horizon,
        proven_accuracy=proven_accuracy,
        live_accuracy=live_accuracy,
        evaluation_rows=evaluation_rows,
        alarm_rate=float(np.mean(alarm_at > 0)),
        median_delay=float(np.median(delays)) if delays else None,
        p95_delay=float(np.percentile(delays, 95)) if delays else None,
    )
