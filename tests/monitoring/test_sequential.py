"""The sequential regression test: behaviour on fixed streams and Monte-Carlo figures.

The figures printed here (run with ``-s``) are the ones quoted in the README. Each simulated
run draws the proven accuracy the way validation measures it (binomial on the evaluation
rows) and tests live feedback against its lower bound, as the monitor does.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from mlflow import MlflowClient

from boltit.core.db import Database
from boltit.core.schema import utcnow
from boltit.core.settings import Settings
from boltit.monitoring.sequential import (
    SequentialConfig,
    cusum,
    detect,
    increments,
    proven_lower_bound,
    simulate,
    simulated_streams,
)
from boltit.monitoring.status import collect_status, proven_accuracy
from tests.monitoring.conftest import TrainedState
from tests.monitoring.tickets import CATEGORIES, send_feedback, store_tickets, ticket_row

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


def test_the_detector_is_the_cusum_that_resets_at_zero() -> None:
    # The detector scores whole streams through running sums; it must be the textbook
    # recursion, step by step, including the resets.
    baselines, outcomes = simulated_streams(
        proven_accuracy=0.90, live_accuracy=0.82, evaluation_rows=EVALUATION_ROWS, runs=40,
        horizon=600, seed=2, config=CONFIG,
    )  # fmt: skip
    detection = detect(outcomes, baseline=baselines, config=CONFIG)
    assert 0 < int((detection.alarm_at > 0).sum()) < 40  # streams that alarm and that do not
    for run in range(40):
        _, right, wrong = increments(float(baselines[run]), CONFIG.drop)
        statistic = peak = 0.0
        alarm_at = 0
        for index, outcome in enumerate(outcomes[run], start=1):
            statistic = max(0.0, statistic + (right if outcome else wrong))
            peak = max(peak, statistic)
            if not alarm_at and statistic >= CONFIG.threshold:
                alarm_at = index
        assert detection.alarm_at[run] == alarm_at
        assert detection.statistic[run] == pytest.approx(statistic, abs=1e-9)
        assert detection.peak[run] == pytest.approx(peak, abs=1e-9)


def test_the_monitor_alarms_where_the_simulated_detector_does(
    trained: tuple[Settings, MlflowClient, Database, TrainedState],
) -> None:
    # The README's table measures ``simulate``; this feeds one of its streams through the
    # monitor's own path (stored tickets, agents' feedback, collect_status) and asks for the
    # same alarm on the same labelled ticket.
    from boltit.registry.promote import promote

    settings, client, database, _ = trained
    name = settings.model_name
    promote(
        client=client, database=database, name=name, settings=settings, version="1",
        actor="test", force=True, reason="pilot",
    )  # fmt: skip
    proven = proven_accuracy(client, name, "1")
    assert proven is not None
    baseline = proven_lower_bound(proven.accuracy, proven.rows, confidence=CONFIG.proven_confidence)
    # Streams drawn as the table's are; the test takes the first the detector alarms on
    # (a 10-point drop from a figure proven on few rows is not always caught in 600 tickets).
    _, streams = simulated_streams(
        proven_accuracy=proven.accuracy, live_accuracy=proven.accuracy - 0.10,
        evaluation_rows=proven.rows, runs=20, horizon=600, seed=11, config=CONFIG,
    )  # fmt: skip
    simulated = detect(streams, baseline=baseline, config=CONFIG)
    alarmed = np.flatnonzero(simulated.alarm_at)
    assert alarmed.size, "no simulated stream alarmed"
    run = int(alarmed[0])
    stream = streams[run]

    start = utcnow() + timedelta(seconds=1)  # after the promotion the monitor counts from
    rows, labels = [], []
    for index, right in enumerate(stream):
        predicted = CATEGORIES[index % len(CATEGORIES)]
        row = ticket_row(
            text=f"ticket {index} about {predicted.lower()}", category=predicted,
            confidence=0.9, version="1", created_at=start + timedelta(milliseconds=index),
        )  # fmt: skip
        rows.append(row)
        feedback = predicted if right else CATEGORIES[(index + 1) % len(CATEGORIES)]
        labels.append((row["id"], feedback))
    store_tickets(database, rows)
    send_feedback(database, labels)

    status = collect_status(settings=settings, database=database, client=client)
    assert status.sequential is not None
    assert status.sequential.observations == len(stream)
    assert status.sequential.alarm_at == int(simulated.alarm_at[run])
    assert status.sequential.statistic == pytest.approx(float(simulated.statistic[run]))


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
