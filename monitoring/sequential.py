"""Fast regression detection: a Bernoulli CUSUM on Production's feedback accuracy.

Each labelled ticket is a Bernoulli trial (the model was right or not). The
statistic accumulates the log-likelihood ratio of "accuracy dropped by ``drop``"
against "accuracy equals the baseline" and resets at zero, so a long good
stretch never hides a later drop. It alarms when the statistic crosses
``threshold``; the default was chosen by Monte-Carlo simulation (see the README).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# Keep the hypotheses away from 0 and 1, where the log-likelihood ratio is infinite.
_P_MIN = 0.05
_P_MAX = 0.995


@dataclass(frozen=True)
class SequentialConfig:
    """Parameters of the test: size of the drop to detect and the alarm threshold."""

    drop: float = 0.10
    threshold: float = 10.0
    warning_fraction: float = 0.5
    min_baseline_samples: int = 200

    def __post_init__(self) -> None:
        if not 0.0 < self.drop < 0.5:
            raise ValueError(f"sequential drop must be in (0, 0.5), got {self.drop}")
        if self.threshold <= 0:
            raise ValueError(f"sequential threshold must be positive, got {self.threshold}")
        if not 0.0 < self.warning_fraction < 1.0:
            raise ValueError("sequential warning_fraction must be in (0, 1)")


@dataclass(frozen=True)
class SequentialResult:
    """Outcome of the test over the observations seen so far."""

    baseline: float
    alternative: float
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


def cusum(
    outcomes: Iterable[bool], *, baseline: float, config: SequentialConfig = SequentialConfig()
) -> SequentialResult:
    """Run the CUSUM over outcomes in the order the feedback arrived.

    Args:
        outcomes: True where the model's category matched the agent's feedback.
        baseline: Accuracy the Production version is expected to hold (H0).
        config: Drop to detect and alarm threshold.
    """
    p0, step_right, step_wrong = increments(baseline, config.drop)
    statistic = peak = 0.0
    observations = correct = 0
    alarm_at: int | None = None
    for outcome in outcomes:
        observations += 1
        correct += bool(outcome)
        statistic = max(0.0, statistic + (step_right if outcome else step_wrong))
        peak = max(peak, statistic)
        if alarm_at is None and statistic >= config.threshold:
            alarm_at = observations
    return SequentialResult(
        baseline=p0,
        alternative=p0 - config.drop,
        observations=observations,
        correct=correct,
        statistic=statistic,
        peak=peak,
        threshold=config.threshold,
        alarm=alarm_at is not None,
        alarm_at=alarm_at,
    )


@dataclass(frozen=True)
class SimulationSummary:
    """Monte-Carlo figures of the test for one true accuracy."""

    runs: int
    horizon: int
    true_accuracy: float
    alarm_rate: float
    median_delay: float | None
    p95_delay: float | None


def first_alarms(outcomes: np.ndarray, *, baseline: float, config: SequentialConfig) -> np.ndarray:
    """Vectorised CUSUM over a (runs, tickets) boolean matrix; first alarm index (1-based) or 0."""
    _, step_right, step_wrong = increments(baseline, config.drop)
    steps = np.where(outcomes, step_right, step_wrong)
    runs, horizon = steps.shape
    statistic = np.zeros(runs)
    alarm_at = np.zeros(runs, dtype=np.int64)
    for index in range(horizon):
        statistic = np.maximum(0.0, statistic + steps[:, index])
        fresh = (alarm_at == 0) & (statistic >= config.threshold)
        alarm_at[fresh] = index + 1
    return alarm_at


def simulate(
    *,
    baseline: float,
    true_accuracy: float,
    runs: int = 1000,
    horizon: int = 2000,
    seed: int = 0,
    config: SequentialConfig = SequentialConfig(),
) -> SimulationSummary:
    """Alarm rate and detection delay of the test on simulated feedback streams."""
    rng = np.random.default_rng(seed)
    outcomes = rng.random((runs, horizon)) < true_accuracy
    alarm_at = first_alarms(outcomes, baseline=baseline, config=config)
    delays: Sequence[int] = alarm_at[alarm_at > 0].tolist()
    return SimulationSummary(
        runs=runs,
        horizon=horizon,
        true_accuracy=true_accuracy,
        alarm_rate=float(np.mean(alarm_at > 0)),
        median_delay=float(np.median(delays)) if delays else None,
        p95_delay=float(np.percentile(delays, 95)) if delays else None,
    )
