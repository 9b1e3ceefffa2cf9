"""The sequential regression test: behaviour on fixed streams and Monte-Carlo figures.

The figures printed here (run with ``-s``) are the ones quoted in the README.
"""

from __future__ import annotations

import pytest

from monitoring.sequential import SequentialConfig, cusum, simulate

RUNS = 1000
HORIZON = 2000  # labelled tickets a version is watched for


def test_a_stream_of_mistakes_alarms_and_a_perfect_one_does_not() -> None:
    config = SequentialConfig()
    perfect = cusum([True] * 500, baseline=0.92, config=config)
    assert not perfect.alarm and perfect.statistic == 0.0 and perfect.accuracy == 1.0
    broken = cusum([False] * 50, baseline=0.92, config=config)
    assert broken.alarm and broken.alarm_at is not None and broken.alarm_at < 15


def test_the_statistic_resets_so_a_late_drop_is_still_caught() -> None:
    # 3,000 good tickets must not bank credit against a later run of mistakes.
    stream = [True] * 3000 + [False, False, True] * 40
    result = cusum(stream, baseline=0.92)
    assert result.alarm and result.alarm_at is not None
    assert 3000 < result.alarm_at < 3060


@pytest.mark.parametrize("baseline", [0.85, 0.92, 0.95])
def test_a_ten_point_drop_is_detected_within_a_few_hundred_labelled_tickets(
    baseline: float,
) -> None:
    drop = simulate(
        baseline=baseline, true_accuracy=baseline - 0.10, runs=RUNS, horizon=HORIZON, seed=11
    )
    print(
        f"\nbaseline {baseline:.2f}, true accuracy {baseline - 0.10:.2f}: detected in "
        f"{drop.alarm_rate:.1%} of {RUNS} runs, median delay {drop.median_delay:.0f}, "
        f"p95 {drop.p95_delay:.0f} labelled tickets"
    )
    assert drop.alarm_rate == 1.0
    assert drop.median_delay is not None and drop.median_delay <= 300
    assert drop.p95_delay is not None and drop.p95_delay <= 600


@pytest.mark.parametrize("baseline", [0.85, 0.92, 0.95])
def test_a_stable_model_raises_a_false_alarm_in_under_one_percent_of_runs(
    baseline: float,
) -> None:
    stable = simulate(baseline=baseline, true_accuracy=baseline, runs=RUNS, horizon=HORIZON, seed=5)
    print(
        f"\nbaseline {baseline:.2f}, stable: false alarms in {stable.alarm_rate:.2%} of "
        f"{RUNS} runs over {HORIZON} labelled tickets"
    )
    assert stable.alarm_rate < 0.01


def test_a_better_model_never_alarms() -> None:
    better = simulate(baseline=0.90, true_accuracy=0.95, runs=RUNS, horizon=HORIZON, seed=3)
    assert better.alarm_rate == 0.0


@pytest.mark.parametrize(
    "fields", [{"drop": 0.0}, {"drop": 0.6}, {"threshold": -1}, {"warning_fraction": 1.5}]
)
def test_bad_parameters_are_refused(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SequentialConfig(**fields)  # type: ignore[arg-type]
