"""The paired drop rule and the latency rule, as pure functions on synthetic predictions.

A drop fails only when its paired bootstrap interval lies above 0 and the observed drop
exceeds the tolerance; the latency gate is an absolute budget plus a ratio above a floor.
"""

from __future__ import annotations

import numpy as np
import pytest

from boltit.core.errors import BadInputError
from boltit.registry.gate_config import parse_gate_config
from boltit.registry.gate_evidence import ModelEvaluation, score_predictions
from boltit.registry.gates import GateResult, evaluate_gates
from boltit.registry.paired import paired_drops
from boltit.registry.scoring import single_predictor, time_single_predictions
from boltit.training import generator

CATEGORIES = np.array(generator.CATEGORIES, dtype=object)
BUDGET_MS = 50.0


def _champion(n: int, *, accuracy: float = 0.88, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = CATEGORIES[rng.integers(0, len(CATEGORIES), n)]
    predicted = truth.copy()
    wrong = rng.permutation(n)[: round(n * (1 - accuracy))]
    predicted[wrong] = _other(truth[wrong])
    return truth, predicted


def _other(categories: np.ndarray) -> np.ndarray:
    index = {c: i for i, c in enumerate(CATEGORIES)}
    return np.array(
        [CATEGORIES[(index[c] + 1) % len(CATEGORIES)] for c in categories], dtype=object
    )


def _candidate(
    truth: np.ndarray, champion: np.ndarray, *, worse: int, better: int, seed: int = 1
) -> np.ndarray:
    """The champion's predictions, ``worse`` right rows made wrong, ``better`` wrong right."""
    rng = np.random.default_rng(seed)
    candidate = champion.copy()
    right = rng.permutation(np.flatnonzero(champion == truth))[:worse]
    wrong = rng.permutation(np.flatnonzero(champion != truth))[:better]
    candidate[right] = _other(truth[right])
    candidate[wrong] = truth[wrong]
    return candidate


def _scored(version: str, truth: np.ndarray, predicted: np.ndarray, latency: float = 1.0):
    return score_predictions(
        version=version,
        true_categories=truth.tolist(),
        predicted_categories=predicted.tolist(),
        confidence=[0.9] * len(truth),
        auto_apply_threshold=0.75,
        latencies_ms=[latency] * 20,
        size_bytes=1000,
    )


def _drop_gates(
    truth: np.ndarray, champion: np.ndarray, candidate: np.ndarray
) -> dict[str, GateResult]:
    report = evaluate_gates(
        candidate=_scored("2", truth, candidate),
        champion=_scored("1", truth, champion),
        config=parse_gate_config(),
        latency_budget_ms=BUDGET_MS,
    )
    return {
        r.name: r
        for r in report.results
        if r.name in ("accuracy_drop", "macro_f1_drop", "category_recall_drop")
    }


def test_a_two_point_accuracy_drop_on_2000_rows_fails_with_its_interval() -> None:
    truth, champion = _champion(2000)
    # 60 tickets lost, 20 gained: a net 2-point drop, the way a real regression looks.
    candidate = _candidate(truth, champion, worse=60, better=20)
    gates = _drop_gates(truth, champion, candidate)
    accuracy = gates["accuracy_drop"]
    assert accuracy.observed == pytest.approx(0.02)
    assert accuracy.passed is False
    assert accuracy.interval is not None and 0 < accuracy.interval[0] < 0.02 < accuracy.interval[1]
    line = accuracy.describe()
    assert line.startswith("accuracy_drop: observed 0.02 [95% CI 0.01")
    assert "limit: fails when > 0.01 and CI excludes 0" in line


def test_identical_predictions_pass_with_a_zero_interval() -> None:
    truth, champion = _champion(2000)
    gates = _drop_gates(truth, champion, champion.copy())
    for result in gates.values():
        assert result.passed is True
        assert result.observed == 0.0 and result.interval == (0.0, 0.0)


def test_noise_between_equal_models_passes() -> None:
    truth, champion = _champion(2000)
    # Two equal-quality models disagree on some rows both ways.
    candidate = _candidate(truth, champion, worse=45, better=40)
    gates = _drop_gates(truth, champion, candidate)
    assert all(r.passed for r in gates.values()), [r.describe() for r in gates.values()]
    accuracy = gates["accuracy_drop"]
    assert accuracy.interval is not None and accuracy.interval[0] < 0 < accuracy.interval[1]


def test_a_significant_but_negligible_drop_on_10k_rows_passes() -> None:
    truth, champion = _champion(10_000)
    candidate = _candidate(truth, champion, worse=50, better=0)  # half a point, every row worse
    drops = paired_drops(truth=truth, champion=champion, candidate=candidate)
    assert drops.accuracy.significant  # real...
    gates = _drop_gates(truth, champion, candidate)
    assert gates["accuracy_drop"].passed is True  # ...but inside the 0.01 tolerance


def test_a_collapsed_category_fails_with_a_corrected_interval() -> None:
    truth, champion = _champion(2000)
    candidate = champion.copy()
    storage = np.flatnonzero((truth == "Storage") & (champion == truth))
    candidate[storage[: len(storage) // 3]] = "Hardware"  # a third of Storage lost
    gates = _drop_gates(truth, champion, candidate)
    recall = gates["category_recall_drop"]
    assert recall.passed is False
    assert "worst category: Storage" in recall.note
    assert recall.level == pytest.approx(1 - 0.05 / len(CATEGORIES))
    assert "[99.38% CI" in recall.describe()


def test_the_bootstrap_is_reproducible_and_seeded() -> None:
    truth, champion = _champion(2000)
    candidate = _candidate(truth, champion, worse=50, better=30)
    first = paired_drops(truth=truth, champion=champion, candidate=candidate, seed=5)
    again = paired_drops(truth=truth, champion=champion, candidate=candidate, seed=5)
    other = paired_drops(truth=truth, champion=champion, candidate=candidate, seed=6)
    assert first == again
    assert first.accuracy.observed == other.accuracy.observed
    assert (first.accuracy.low, first.accuracy.high) != (other.accuracy.low, other.accuracy.high)


def test_the_bootstrap_interval_matches_the_textbook_standard_error() -> None:
    """Paired accuracy drop: mean of d_i in {-1, 0, 1}; its sd is sqrt(var(d) / n)."""
    truth, champion = _champion(2000)
    candidate = _candidate(truth, champion, worse=60, better=20)
    d = (champion == truth).astype(float) - (candidate == truth).astype(float)
    expected_half_width = 1.96 * d.std() / np.sqrt(len(d))
    drops = paired_drops(truth=truth, champion=champion, candidate=candidate, resamples=4000)
    half_width = (drops.accuracy.high - drops.accuracy.low) / 2
    assert half_width == pytest.approx(expected_half_width, rel=0.15)


def test_rows_that_do_not_pair_are_refused() -> None:
    truth, champion = _champion(200)
    other_truth, other = _champion(200, seed=9)
    with pytest.raises(BadInputError, match="same evaluation rows"):
        evaluate_gates(
            candidate=_scored("2", other_truth, other),
            champion=_scored("1", truth, champion),
            config=parse_gate_config(),
            latency_budget_ms=BUDGET_MS,
        )
    with pytest.raises(BadInputError, match="same non-empty rows"):
        paired_drops(truth=truth, champion=champion[:10], candidate=champion)


def _latency(candidate_ms: float, champion_ms: float | None) -> GateResult:
    truth, predicted = _champion(200)
    champion: ModelEvaluation | None = (
        None if champion_ms is None else _scored("1", truth, predicted, champion_ms)
    )
    report = evaluate_gates(
        candidate=_scored("2", truth, predicted, candidate_ms),
        champion=champion,
        config=parse_gate_config(),
        latency_budget_ms=BUDGET_MS,
    )
    (result,) = [r for r in report.results if r.name == "latency_p95"]
    return result


def test_latency_is_judged_against_the_budget_and_a_ratio_only_above_the_floor() -> None:
    # Below the 10 ms floor a 3x ratio is scheduler noise: passes.
    assert _latency(3.0, 1.0).passed is True
    # Above the floor the ratio applies.
    assert _latency(16.0, 10.0).passed is False
    assert _latency(14.0, 10.0).passed is True
    # The budget applies always, with or without a champion.
    assert _latency(60.0, 55.0).passed is False
    assert _latency(60.0, None).passed is False
    assert _latency(40.0, None).passed is True
    assert "50 ms budget" in _latency(40.0, None).limit


def test_single_predictions_are_timed_interleaved_through_predict_one() -> None:
    from boltit.training.generator import generate_tickets
    from boltit.training.model import TicketClassifier

    frame = generate_tickets(400, seed=4)
    classifier = TicketClassifier.fit(frame["text"], frame["category"])
    # The serving path: predict_one, not a one-row frame.
    assert single_predictor(classifier) == classifier.predict_one
    texts = frame["text"].tolist()[:30]
    first, second = time_single_predictions([classifier, classifier], texts)
    assert len(first) == len(second) == 30
    assert all(ms > 0 for ms in first + second)
    assert time_single_predictions([classifier], []) == [[]]
