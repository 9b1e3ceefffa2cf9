"""The sequential regression test: behaviour on fixed streams and Monte-Carlo figures.

The figures printed here (run with ``-s``) are the ones quoted in the README. Each simulated
run draws the proven accuracy the way validation measures it (binomial on the evaluation
rows) and tests live feedback against its lower bound, as the monitor does.
"""

from __future__ import annotations

import pytest

from boltit.monitoring.sequential import SequentialConfig, cusum, proven_lower_bound, simulate

RUNS = 2000
HORIZON = 2000  # labelled tickets a version is watched for
EVALUATION_ROWS = 1000
CONFIG = SequentialConfig(threshold=9.0, proven_confidence=0.90)  # the packaged alerts.yaml
# The README's detection figures, as bounds: evaluation-set rows -> (share of 10-point drops
# detected, p95 labelled tickets to detection), for proven accuracies 0.85 and 0.95; the
# median is at most MEDIAN_AT_MOST. A figure proven on few rows leaves room below it: a
# 10-point drop from it is a smaller drop from its lower bound, and takes longer to tell
# from noise. tests/monitoring/test_real_data.py holds the real monitor to these bounds.
DETECTION_BOUNDS = {300: (0.85, 2000), EVALUATION_ROWS: (0.99, 900), 5000: (0.99, 700)}
MEDIAN_AT_MOST = 400


def stated_p95(rows: int) -> int:
    """The stated p95 bound for a figure proven on ``rows`` rows: that of the largest
    simulated set no bigger (fewer rows only lengthen detection)."""
    fitting = [size for size in DETECTION_BOUNDS if size <= rows]
    if not fitting:
        raise ValueError(f"no stated detection figure for an evaluation set of {rows} rows")
    return DETECTION_BOUNDS[max(fitting)][1]


def test_the_packaged_parameters_are_the_simulated_ones() -> None:
    from boltit.monitoring.rules import load_alert_config

    assert load_alert_config().sequential == CONFIG


def test_a_stream_of_mistakes_alarms_and_a_perfect_one_does_not() -> None:
    perfect = cusum([True] * 500, baseline=0.92, config=CONFIG)
    assert not perfect.alarm and perfect.statistic == 0.0 and perfect.accuracy == 1.0
    broken = cusum([False] * 50, baseline=0.92, config=CONFIG)
    assert broken.alarm and broken.alarm_at is not None and broken.alarm_at < 15


def test_the_statistic_resets_so_a_late_drop_is_still_caught() -> None:
    # 3,000 good tickets must not bank credit against a later run of mistakes.
    stream = [True] * 3000 + [False, False, True] * 40
    result = cusum(stream, baseline=0.92, config=CONFIG)
    assert result.alarm and result.alarm_at is not None
    assert 3000 < result.alarm_at < 3060


def test_the_lower_bound_shrinks_towards_the_proven_figure_with_more_rows() -> None:
    bounds = [proven_lower_bound(0.865, rows, confidence=0.90) for rows in (100, 1000, 10000)]
    assert bounds[0] < bounds[1] < bounds[2] < 0.865
    assert 0.865 - bounds[2] < 0.005 and 0.865 - bounds[0] > 0.03
    assert proven_lower_bound(0.865, None, confidence=0.90) == 0.865  # size unknown


@pytest.mark.parametrize("proven", [0.85, 0.95])
@pytest.mark.parametrize(
    ("rows", "detected", "p95_at_most"),
    [(rows, detected, p95) for rows, (detected, p95) in DETECTION_BOUNDS.items()],
)
def test_a_ten_point_drop_is_detected_within_a_few_hundred_labelled_tickets(
    proven: float, rows: int, detected: float, p95_at_most: float
) -> None:
    drop = simulate(
        proven_accuracy=proven,
        live_accuracy=proven - 0.10,
        evaluation_rows=rows,
        runs=RUNS,
        horizon=HORIZON,
        seed=11,
        config=CONFIG,
    )
    print(
        f"\nproven {proven:.2f} on {rows} rows, live {proven - 0.10:.2f}: detected "
        f"in {drop.alarm_rate:.1%} of {RUNS} runs, median {drop.median_delay:.0f}, "
        f"p95 {drop.p95_delay:.0f} labelled tickets"
    )
    assert drop.alarm_rate >= detected
    assert drop.median_delay is not None and drop.median_delay <= MEDIAN_AT_MOST
    assert drop.p95_delay is not None and drop.p95_delay <= p95_at_most


@pytest.mark.parametrize("proven", [0.85, 0.95])
@pytest.mark.parametrize("rows", [300, EVALUATION_ROWS, 5000])
def test_an_honest_model_raises_a_false_alarm_in_under_one_percent_of_runs(
    proven: float, rows: int
) -> None:
    stable = simulate(
        proven_accuracy=proven,
        live_accuracy=proven,
        evaluation_rows=rows,
        runs=RUNS,
        horizon=HORIZON,
        seed=5,
        config=CONFIG,
    )
    print(
        f"\nproven {proven:.2f} on {rows} rows, live the same: false alarms in "
        f"{stable.alarm_rate:.2%} of {RUNS} runs over {HORIZON} labelled tickets"
    )
    assert stable.alarm_rate < 0.01


def test_testing_against_the_point_estimate_would_alarm_on_honest_models() -> None:
    # Why H0 is the lower bound: a figure measured on 300 rows is often a lucky one.
    point = SequentialConfig(threshold=9.0, proven_confidence=0.5)
    naive = simulate(
        proven_accuracy=0.85, live_accuracy=0.85, evaluation_rows=300, runs=RUNS, seed=5,
        config=point,
    )  # fmt: skip
    bounded = simulate(
        proven_accuracy=0.85, live_accuracy=0.85, evaluation_rows=300, runs=RUNS, seed=5,
        config=CONFIG,
    )  # fmt: skip
    assert naive.alarm_rate > 0.03 > 0.01 > bounded.alarm_rate


def test_a_better_model_never_alarms() -> None:
    better = simulate(
        proven_accuracy=0.90, live_accuracy=0.95, evaluation_rows=EVALUATION_ROWS, runs=RUNS,
        horizon=HORIZON, seed=3, config=CONFIG,
    )  # fmt: skip
    assert better.alarm_rate == 0.0


@pytest.mark.parametrize(
    "fields",
    [
        {"drop": 0.0},
        {"drop": 0.6},
        {"threshold": -1},
        {"warning_fraction": 1.5},
        {"proven_confidence": 0.3},
    ],
)
def test_bad_parameters_are_refused(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SequentialConfig(**fields)  # type: ignore[arg-type]
