"""Gates as data: config merging and modes, metric computation, pure verdicts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from boltit.errors import BadInputError
from registry.gate_config import GateMode, load_gate_config, parse_gate_config
from registry.gates import NO_CHAMPION, evaluate_gates
from registry.metrics import ModelEvaluation, expected_calibration_error, score_predictions


def _evaluation(version: str = "2", **changes: object) -> ModelEvaluation:
    base = ModelEvaluation(
        version=version,
        rows=400,
        accuracy=0.93,
        macro_f1=0.91,
        recall_by_category={"Hardware": 0.95, "Access": 0.90, "Storage": 0.85},
        ece=0.03,
        auto_apply_threshold=0.75,
        auto_apply_precision=0.97,
        auto_apply_coverage=0.8,
        latency_p95_ms=2.0,
        size_bytes=1_000_000,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


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
    report = evaluate_gates(candidate=_evaluation(), champion=None, config=parse_gate_config())
    results = _by_name(report)
    assert report.passed
    for name in ("accuracy_drop", "macro_f1_drop", "category_recall_drop", "latency_p95"):
        assert results[name].passed is True
        assert results[name].note == NO_CHAMPION


def test_every_gate_can_fail_with_its_observed_value() -> None:
    champion = _evaluation("1")
    candidate = _evaluation(
        "2",
        accuracy=0.80,
        macro_f1=0.70,
        recall_by_category={"Hardware": 0.95, "Access": 0.50, "Storage": 0.85},
        ece=0.25,
        auto_apply_precision=0.6,
        latency_p95_ms=40.0,
        size_bytes=5_000_000,
    )
    report = evaluate_gates(candidate=candidate, champion=champion, config=parse_gate_config())
    results = _by_name(report)
    assert not report.passed
    assert {r.name for r in report.failures} == set(results)
    assert results["min_accuracy"].observed == pytest.approx(0.80)
    assert results["accuracy_drop"].observed == pytest.approx(0.13)
    assert results["category_recall_drop"].observed == pytest.approx(0.40)
    assert "Access" in results["category_recall_drop"].note
    assert results["model_size"].observed == 5_000_000


def test_dry_run_reports_but_never_refuses_and_disabled_skips() -> None:
    config = parse_gate_config(
        {"gates": {"min_accuracy": {"mode": "dry_run"}, "max_ece": {"mode": "disabled"}}}
    )
    report = evaluate_gates(
        candidate=_evaluation(accuracy=0.5, ece=0.9), champion=None, config=config
    )
    results = _by_name(report)
    assert results["min_accuracy"].passed is False
    assert results["max_ece"].passed is None
    assert report.passed


def test_small_regressions_inside_the_limits_pass() -> None:
    champion = _evaluation("1")
    candidate = _evaluation("2", accuracy=0.925, macro_f1=0.905, latency_p95_ms=2.5)
    report = evaluate_gates(candidate=candidate, champion=champion, config=parse_gate_config())
    assert report.passed, [r.describe() for r in report.failures]


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
    with pytest.raises(ValueError):
        score_predictions(
            version="3",
            true_categories=[],
            predicted_categories=[],
            confidence=[],
            auto_apply_threshold=0.75,
            latencies_ms=[],
            size_bytes=0,
        )


def test_expected_calibration_error() -> None:
    confidence = np.array([1.0, 1.0, 0.5, 0.5])
    correct = np.array([1.0, 1.0, 1.0, 0.0])
    assert expected_calibration_error(correct, confidence) == pytest.approx(0.0)
    overconfident = expected_calibration_error(np.zeros(4), np.full(4, 0.9))
    assert overconfident == pytest.approx(0.9)
