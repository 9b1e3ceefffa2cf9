"""Gates as data: config merging and modes, metric computation, pure verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from boltit.core.errors import BadInputError
from boltit.registry.gate_config import GateMode, load_gate_config, parse_gate_config
from boltit.registry.gate_evidence import ModelEvaluation, score_predictions
from boltit.registry.gates import NO_BASELINE, NO_CHAMPION, GateResult, evaluate_gates

CATEGORIES = np.array(["Hardware", "Access", "Storage"], dtype=object)
BUDGET_MS = 50.0


def _rows(n: int = 400, *, accuracy: float = 0.93, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """True categories and a champion's predictions, right on ``accuracy`` of the rows."""
    rng = np.random.default_rng(seed)
    truth = CATEGORIES[rng.integers(0, len(CATEGORIES), n)]
    predicted = truth.copy()
    wrong = rng.permutation(n)[: round(n * (1 - accuracy))]
    predicted[wrong] = [CATEGORIES[(list(CATEGORIES).index(t) + 1) % 3] for t in truth[wrong]]
    return truth, predicted


def _evaluation(
    version: str,
    truth: np.ndarray,
    predicted: np.ndarray,
    *,
    confidence: float = 0.93,
    latency_ms: float = 2.0,
    size_bytes: int = 1_000_000,
) -> ModelEvaluation:
    return score_predictions(
        version=version,
        true_categories=truth.tolist(),
        predicted_categories=predicted.tolist(),
        confidence=[confidence] * len(truth),
        auto_apply_threshold=0.75,
        latencies_ms=[latency_ms] * 20,
        size_bytes=size_bytes,
    )


def _by_name(report):
    return {r.name: r for r in report.results}


def test_packaged_defaults_follow_the_runbook() -> None:
    config = parse_gate_config()
    assert config.gates.min_accuracy.threshold == 0.90
    assert config.gates.min_accuracy.mode is GateMode.ENABLED
    assert config.sync.on_gate_fail == "revert"
    assert config.with_min_accuracy(0.5).gates.min_accuracy.threshold == 0.5
    with pytest.raises(BadInputError, match="--min-accuracy"):
        config.with_min_accuracy(1.5)


def test_override_file_merges_over_defaults(tmp_path: Path) -> None:
    path = tmp_path / "gates.yaml"
    path.write_text("gates:\n  max_ece: {mode: dry_run}\n  model_size: {mode: disabled}\n")
    config = load_gate_config(path)
    assert config.gates.max_ece.mode is GateMode.DRY_RUN
    assert config.gates.max_ece.max == 0.10  # the default limit survives the merge
    assert config.gates.model_size.mode is GateMode.DISABLED


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("gates:\n  min_accuracy: {mode: maybe}\n", "gates.min_accuracy.mode"),
        ("gates:\n  unknown_gate: {mode: enabled}\n", "unknown_gate"),
        ("gates:\n  accuracy_drop: {max: lots}\n", "accuracy_drop.max"),
        ("- just\n- a list\n", "must be a mapping"),
        ("gates: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_gate_config_is_named(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "gates.yaml"
    path.write_text(text)
    with pytest.raises(BadInputError, match=problem.replace("[", r"\[")):
        load_gate_config(path)


def test_missing_gate_config_is_named(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="does not exist"):
        load_gate_config(tmp_path / "nope.yaml")


def test_without_champion_relative_gates_pass_with_a_note() -> None:
    truth, predicted = _rows()
    report = evaluate_gates(
        candidate=_evaluation("2", truth, predicted),
        champion=None,
        config=parse_gate_config(),
        latency_budget_ms=BUDGET_MS,
    )
    results = _by_name(report)
    assert report.passed
    for name in ("accuracy_drop", "macro_f1_drop", "category_recall_drop", "model_size"):
        assert results[name].passed is True
        assert results[name].note == NO_CHAMPION
    # The latency budget is absolute: it applies with or without a champion.
    assert results["latency_p95"].observed == pytest.approx(2.0)
    assert results["latency_p95"].note.startswith(NO_CHAMPION)


def test_every_gate_can_fail_with_its_observed_value() -> None:
    truth, champion_predicted = _rows(accuracy=0.93)
    candidate_predicted = champion_predicted.copy()
    # Access is mostly lost; the accuracy falls from 0.93 to about 0.80.
    access = np.flatnonzero((truth == "Access") & (champion_predicted == truth))[:52]
    candidate_predicted[access] = "Storage"
    champion = _evaluation("1", truth, champion_predicted)
    candidate = _evaluation(
        "2", truth, candidate_predicted, confidence=0.99, latency_ms=60.0, size_bytes=5_000_000
    )
    report = evaluate_gates(
        candidate=candidate,
        champion=champion,
        # No size floor: at these test sizes the ratio would otherwise not apply.
        config=parse_gate_config({"gates": {"model_size": {"floor_bytes": 0}}}),
        latency_budget_ms=BUDGET_MS,
        baseline=champion_predicted,  # a plain baseline as good as the champion
        category_rows={"Hardware": 140, "Access": 1, "Storage": 130},  # Access from one row
    )
    results = _by_name(report)
    assert not report.passed
    assert {r.name for r in report.failures} == set(results)
    assert results["min_class_rows"].observed == 1.0
    assert results["min_accuracy"].observed == pytest.approx(candidate.accuracy)
    assert results["accuracy_drop"].observed == pytest.approx(52 / 400)
    low, high = results["accuracy_drop"].interval or (0, 0)
    assert 0 < low < 52 / 400 < high
    assert "Access" in results["category_recall_drop"].note
    assert results["category_recall_drop"].observed > 0.3
    assert results["model_size"].observed == 5_000_000
    assert results["latency_p95"].observed == pytest.approx(60.0)


def test_dry_run_reports_but_never_refuses_and_disabled_skips() -> None:
    config = parse_gate_config(
        {"gates": {"min_accuracy": {"mode": "dry_run"}, "max_ece": {"mode": "disabled"}}}
    )
    truth, predicted = _rows(accuracy=0.5)
    report = evaluate_gates(
        candidate=_evaluation("2", truth, predicted, confidence=0.5),
        champion=None,
        config=config,
        latency_budget_ms=BUDGET_MS,
    )
    results = _by_name(report)
    assert results["min_accuracy"].passed is False
    assert results["max_ece"].passed is None
    assert report.passed


def test_small_regressions_inside_the_limits_pass() -> None:
    truth, champion_predicted = _rows(accuracy=0.93)
    candidate_predicted = champion_predicted.copy()
    right = np.flatnonzero(candidate_predicted == truth)
    candidate_predicted[right[:2]] = "Storage"  # half a point worse, within every tolerance
    report = evaluate_gates(
        candidate=_evaluation("2", truth, candidate_predicted, latency_ms=2.5),
        champion=_evaluation("1", truth, champion_predicted),
        config=parse_gate_config(),
        latency_budget_ms=BUDGET_MS,
    )
    assert report.passed, [r.describe() for r in report.failures]


def test_beats_baseline_fails_only_when_the_baseline_is_significantly_better() -> None:
    truth, baseline = _rows(accuracy=0.93)
    worse = baseline.copy()
    right = np.flatnonzero((worse == truth) & (truth != "Storage"))
    worse[right[:30]] = "Storage"  # 7.5 points below the baseline on the same rows
    config = parse_gate_config()
    assert config.gates.beats_baseline.mode is GateMode.ENABLED  # on by default

    def verdict(predicted: np.ndarray, base: np.ndarray | None, **override):
        report = evaluate_gates(
            candidate=_evaluation("2", truth, predicted),
            champion=None,
            config=parse_gate_config(override or None),
            latency_budget_ms=BUDGET_MS,
            baseline=base,
        )
        return report, _by_name(report)["beats_baseline"]

    report, result = verdict(worse, baseline)
    assert not report.passed and result.passed is False
    assert result.observed == pytest.approx(30 / 400)
    assert result.interval is not None and result.interval[0] > 0
    assert "baseline accuracy 0.9300" in result.note
    # One row worse is noise, not a significant shortfall.
    one_worse = baseline.copy()
    one_worse[right[:1]] = "Storage"
    assert verdict(one_worse, baseline)[1].passed is True
    # Better than the baseline passes, with a negative observed shortfall.
    better = verdict(baseline, worse)[1]
    assert better.passed is True and (better.observed or 0) < 0
    # Unknown baseline rows: nothing to compare, a note says so.
    unknown = verdict(worse, None)[1]
    assert unknown.passed is True and unknown.note == NO_BASELINE
    # dry_run reports the failure without refusing; a tolerance lets it pass.
    dry_report, dry = verdict(worse, baseline, gates={"beats_baseline": {"mode": "dry_run"}})
    assert dry.passed is False
    assert "beats_baseline" not in {r.name for r in dry_report.failures}
    assert "beats_baseline" in {r.name for r in report.failures}
    assert verdict(worse, baseline, gates={"beats_baseline": {"max": 0.1}})[1].passed is True


def test_metrics_from_predictions() -> None:
    true = ["a", "a", "b", "b"]
    predicted = ["a", "b", "b", "b"]
    confidence = [0.9, 0.6, 0.8, 0.95]
    evaluation = score_predictions(
        version="3",
        true_categories=true,
        predicted_categories=predicted,
        confidence=confidence,
        auto_apply_threshold=0.75,
        latencies_ms=[1.0] * 19 + [10.0],
        size_bytes=123,
    )
    assert evaluation.accuracy == 0.75
    assert evaluation.recall_by_category == {"a": 0.5, "b": 1.0}
    assert evaluation.auto_apply_precision == 1.0  # the 0.6 miss is below the threshold
    assert evaluation.auto_apply_coverage == 0.75
    assert 1.0 < evaluation.latency_p95_ms <= 10.0
    with pytest.raises(BadInputError, match="non-empty"):
        score_predictions(
            version="3",
            true_categories=[],
            predicted_categories=[],
            confidence=[],
            auto_apply_threshold=0.75,
            latencies_ms=[],
            size_bytes=0,
        )


def test_model_size_allows_a_retrain_on_more_rows_but_not_a_model_over_its_budget() -> None:
    """A 1.6x larger vocabulary below the floor passes; the absolute budget always applies."""
    truth, predicted = _rows()
    champion = _evaluation("1", truth, predicted, size_bytes=19_000_000)

    def size_gate(size_bytes: int, override: dict[str, int] | None = None) -> bool | None:
        report = evaluate_gates(
            candidate=_evaluation("2", truth, predicted, size_bytes=size_bytes),
            champion=champion,
            config=parse_gate_config({"gates": {"model_size": override or {}}}),
            latency_budget_ms=BUDGET_MS,
        )
        return _by_name(report)["model_size"].passed

    assert size_gate(31_000_000) is True
    assert size_gate(31_000_000, {"floor_bytes": 20_000_000}) is False
    assert size_gate(31_000_000, {"max_bytes": 30_000_000}) is False


def test_min_class_rows_names_the_rare_categories_and_the_option_that_folds_them() -> None:
    truth, predicted = _rows()
    candidate = _evaluation("2", truth, predicted)
    counts = {"Hardware": 140, "Access": 12, "Storage": 3}

    def verdict(
        override: dict[str, Any] | None, rows: dict[str, int] | None = counts
    ) -> GateResult:
        report = evaluate_gates(
            candidate=candidate,
            champion=None,
            config=parse_gate_config(override),
            latency_budget_ms=BUDGET_MS,
            category_rows=rows,
        )
        return _by_name(report)["min_class_rows"]

    assert verdict(None).passed is True  # default floor 2: 3 rows are enough
    strict = verdict({"gates": {"min_class_rows": {"rows": 20}}})
    assert strict.blocking and strict.observed == 3.0
    assert "'Storage' (3), 'Access' (12)" in strict.note
    assert "--min-class-rows 20" in strict.note and "Hardware" not in strict.note
    assert verdict({"gates": {"min_class_rows": {"rows": 0}}}).passed is True
    assert verdict({"gates": {"min_class_rows": {"rows": 20}}}, None).passed is True
    assert verdict({"gates": {"min_class_rows": {"mode": "disabled", "rows": 20}}}).passed is None
