"""The rollout verdict on constructed evidence: noise holds or advances, a regression aborts."""

from __future__ import annotations

import numpy as np
import pytest

from boltit.core.errors import BadInputError
from boltit.monitoring.rollout_decision import Action, RolloutPolicy, StepEvidence, decide
from boltit.monitoring.rollout_plan import parse_interval, parse_plan, parse_steps

POLICY = RolloutPolicy(interval_seconds=600, min_rows=50, min_labelled=30)


def _evidence(**values: object) -> StepEvidence:
    base: dict[str, object] = {
        "step_index": 0,
        "percent": 5.0,
        "elapsed_seconds": 600.0,
        "canary_rows": 100,
        "canary_errors": 0,
        "production_rows": 1900,
        "production_errors": 0,
    }
    base.update(values)
    return StepEvidence(**base)  # type: ignore[arg-type]


def _simulated_step(
    rng: np.random.Generator,
    *,
    canary_error: float,
    canary_accuracy: float,
    production_error: float = 0.01,
    production_accuracy: float = 0.85,
    looks: int = 5,
    canary_per_look: int = 20,
    production_per_look: int = 380,
) -> list[StepEvidence]:
    """The cumulative evidence the loop sees at each look of one step (half labelled)."""
    seen: list[StepEvidence] = []
    totals = dict.fromkeys(("cn", "ce", "cl", "cc", "pn", "pe", "pl", "pc"), 0)
    for look in range(1, looks + 1):
        totals["cn"] += canary_per_look
        totals["ce"] += int(rng.binomial(canary_per_look, canary_error))
        labelled = canary_per_look // 2
        totals["cl"] += labelled
        totals["cc"] += int(rng.binomial(labelled, canary_accuracy))
        totals["pn"] += production_per_look
        totals["pe"] += int(rng.binomial(production_per_look, production_error))
        totals["pl"] += production_per_look // 2
        totals["pc"] += int(rng.binomial(production_per_look // 2, production_accuracy))
        seen.append(
            _evidence(
                elapsed_seconds=POLICY.interval_seconds * look / looks,
                canary_rows=totals["cn"],
                canary_errors=totals["ce"],
                production_rows=totals["pn"],
                production_errors=totals["pe"],
                canary_labelled=totals["cl"],
                canary_correct=totals["cc"],
                production_labelled=totals["pl"],
                production_correct=totals["pc"],
            )
        )
    return seen


def _aborted(step: list[StepEvidence]) -> bool:
    return any(decide(evidence, POLICY).action is Action.abort for evidence in step)


def test_noise_between_two_equal_versions_rarely_aborts_a_step() -> None:
    # Both versions err on 1 % and are right on 85 %: every abort is a false alarm. The
    # tests run at (1 - 0.95) / (3 signals x 5 looks) each, so fewer than 5 % of steps may.
    rng = np.random.default_rng(7)
    steps = [_simulated_step(rng, canary_error=0.01, canary_accuracy=0.85) for _ in range(400)]
    false_aborts = sum(_aborted(step) for step in steps)
    assert false_aborts / len(steps) < 0.05
    # ... and an equal version's step ends by advancing.
    finals = [decide(step[-1], POLICY).action for step in steps]
    assert finals.count(Action.advance) > 0.9 * len(steps)


def test_a_real_regression_aborts_the_step() -> None:
    rng = np.random.default_rng(8)
    errors = [_simulated_step(rng, canary_error=0.15, canary_accuracy=0.85) for _ in range(100)]
    wrong = [_simulated_step(rng, canary_error=0.01, canary_accuracy=0.55) for _ in range(100)]
    assert sum(_aborted(step) for step in errors) > 95
    assert sum(_aborted(step) for step in wrong) > 90


def test_a_version_that_always_raises_is_aborted_on_its_first_few_tickets() -> None:
    verdict = decide(
        _evidence(elapsed_seconds=5, canary_rows=6, canary_errors=6, production_rows=120), POLICY
    )
    assert verdict.action is Action.abort
    assert verdict.signal == "error_rate"
    assert verdict.p_value is not None and verdict.p_value < POLICY.alpha
    # The reason says what was seen and how sure the test is.
    assert "6/6 (100.0%)" in verdict.reason and "Fisher p =" in verdict.reason
    assert "% sure" in verdict.reason


def test_one_error_among_few_tickets_is_noise() -> None:
    verdict = decide(
        _evidence(
            elapsed_seconds=30,
            canary_rows=10,
            canary_errors=1,
            production_rows=200,
            production_errors=1,
        ),
        POLICY,
    )
    assert verdict.action is Action.hold


def test_with_no_production_rows_the_runbooks_error_budget_judges() -> None:
    # At 100 % every ticket is the canary's: the runbook's 5 % error rate is the reference.
    high = decide(
        _evidence(percent=100, canary_rows=200, canary_errors=40, production_rows=0), POLICY
    )
    assert high.action is Action.abort and "runbook" in high.reason
    fine = decide(
        _evidence(percent=100, canary_rows=200, canary_errors=6, production_rows=0), POLICY
    )
    assert fine.action is Action.advance


def test_accuracy_needs_a_significant_drop_beyond_the_tolerance() -> None:
    slight = _evidence(
        canary_labelled=100, canary_correct=85, production_labelled=1000, production_correct=880
    )
    assert decide(slight, POLICY).action is Action.advance
    clear = _evidence(
        canary_labelled=100, canary_correct=60, production_labelled=1000, production_correct=880
    )
    verdict = decide(clear, POLICY)
    assert verdict.action is Action.abort and verdict.signal == "accuracy"
    too_few = _evidence(
        canary_labelled=10, canary_correct=2, production_labelled=1000, production_correct=880
    )
    assert decide(too_few, POLICY).action is Action.advance


def test_latency_needs_a_significant_slowdown_and_the_budget_broken() -> None:
    # Half the canary's answers are slower than Production's p95, but within 3 s.
    slower_in_budget = _evidence(canary_p95_ms=900, production_p95_ms=200, canary_slower=50)
    assert decide(slower_in_budget, POLICY).action is Action.advance
    # Over budget, but Production is as slow: the same tail is no regression.
    both_slow = _evidence(canary_p95_ms=3500, production_p95_ms=3400, canary_slower=6)
    assert decide(both_slow, POLICY).action is Action.advance
    regressed = _evidence(canary_p95_ms=4200, production_p95_ms=300, canary_slower=60)
    verdict = decide(regressed, POLICY)
    assert verdict.action is Action.abort and verdict.signal == "latency"
    assert "4200 ms > budget 3000 ms" in verdict.reason


def test_a_step_holds_until_it_has_its_rows_and_its_interval() -> None:
    early = decide(_evidence(elapsed_seconds=120), POLICY)
    assert early.action is Action.hold and "120/600 s" in early.reason
    thin = decide(_evidence(canary_rows=20), POLICY)
    assert thin.action is Action.hold and "20/50 canary tickets" in thin.reason
    assert decide(_evidence(), POLICY).action is Action.advance


def test_plans_are_parsed_with_clear_errors() -> None:
    assert parse_steps("5,25,50,100") == (5.0, 25.0, 50.0, 100.0)
    assert parse_steps("10%, 100%") == (10.0, 100.0)
    assert parse_interval("10m") == 600 and parse_interval("30s") == 30
    assert parse_interval("1h") == 3600 and parse_interval("2.5") == 2.5
    for steps, message in (
        ("5,25,x", "'x'"),
        ("5,50,25,100", "must rise"),
        ("0,100", "above 0"),
        ("5,50", "end at 100"),
    ):
        with pytest.raises(BadInputError, match=message):
            parse_steps(steps)
    for interval in ("10x", "", "-1m", "0s"):
        with pytest.raises(BadInputError, match="--interval"):
            parse_interval(interval)
    with pytest.raises(BadInputError, match="--min-rows"):
        parse_plan(steps="100", interval="1m", min_rows=0)
