"""Verdicts relative to what the model proved: the accuracy floor, relative rules, certainty.

Pure: snapshots from frames, evaluation figures as the registry would give them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from boltit.monitoring import rules, snapshot
from boltit.monitoring.rules import EvaluationFigures, LiveAccuracy, ProvenAccuracy
from boltit.monitoring.sequential import cusum

CONFIG = rules.load_alert_config()
CATEGORIES = ["Access", "Hardware", "Network", "Storage"]


def _frame(n: int, accuracy: float, *, confidence: float = 0.86, seed: int = 0) -> pd.DataFrame:
    """``n`` labelled tickets, exactly ``round(n * accuracy)`` of them right, evenly spread."""
    rng = np.random.default_rng(seed)
    truth = [CATEGORIES[i % len(CATEGORIES)] for i in range(n)]
    right = np.zeros(n, dtype=bool)
    right[rng.permutation(n)[: round(n * accuracy)]] = True
    predicted = [
        t if ok else CATEGORIES[(CATEGORIES.index(t) + 1) % 4]
        for t, ok in zip(truth, right, strict=True)
    ]
    return pd.DataFrame(
        {
            "category": predicted,
            "feedback_category": truth,
            "confidence": np.clip(rng.normal(confidence, 0.05, n), 0.0, 1.0),
            "latency_ms": 20.0,
            "auto_applied": True,
        }
    )


def _snapshot(frame: pd.DataFrame) -> snapshot.Snapshot:
    return snapshot.compute_snapshot(frame, window_days=7, recent_tickets=200)


def _figures(
    accuracy: float | None = 0.865,
    *,
    rows: int | None = 2000,
    status: str | None = "passed",
    confidence: float | None = 0.86,
    recall: dict[str, float] | None = None,
) -> EvaluationFigures:
    proven = ProvenAccuracy("1", accuracy, rows, "validate") if accuracy is not None else None
    return EvaluationFigures(
        version="1",
        proven=proven,
        mean_confidence=confidence,
        category_recall=recall or {c: accuracy or 0.0 for c in CATEGORIES},
        validation_status=status,
    )


def _evaluate(frame: pd.DataFrame, figures: EvaluationFigures) -> dict[str, rules.Evaluation]:
    snapshot = _snapshot(frame)
    live = LiveAccuracy(correct=snapshot.correct, labelled=snapshot.labelled)
    sequential = None
    if figures.proven is not None:
        outcomes = (frame["category"] == frame["feedback_category"]).tolist()
        bound = figures.proven.lower_bound(CONFIG.sequential.proven_confidence)
        sequential = cusum(outcomes, baseline=bound, config=CONFIG.sequential)
    evaluations = rules.evaluate(
        config=CONFIG,
        quality=snapshot,
        service=snapshot,
        sequential=sequential,
        figures=figures,
        live=live,
    )
    return {e.label: e for e in evaluations}


def test_a_model_at_its_proven_accuracy_under_the_floor_is_reported_not_an_incident() -> None:
    verdicts = _evaluate(_frame(400, 0.865), _figures(0.865))

    floor = verdicts["accuracy_floor"]
    assert floor.level is rules.Level.critical  # it is under the runbook's 0.90 ...
    assert not floor.opens_incident  # ... and that alone is no incident
    line = floor.describe()
    assert "performs as it proved" in line and "v1 proved 0.865 on 2,000 evaluation rows" in line
    assert "400 observations" in line and "critical < 0.9" in line and "binomial p" in line
    assert not any(e.opens_incident for e in verdicts.values()), [
        e.describe() for e in verdicts.values() if e.opens_incident
    ]
    sequential = verdicts["sequential_regression"]
    assert sequential.level is rules.Level.ok
    assert "400 observations" in sequential.describe() and "H0 0.85" in sequential.describe()


def test_the_floor_acts_when_the_model_does_worse_than_it_proved() -> None:
    floor = _evaluate(_frame(400, 0.85), _figures(0.95))["accuracy_floor"]
    assert floor.level is rules.Level.critical and floor.opens_incident
    assert "below what it proved" in floor.note


def test_the_floor_applies_as_written_to_a_version_whose_proof_was_not_accepted() -> None:
    never = _evaluate(_frame(400, 0.865), _figures(0.865, status=None))["accuracy_floor"]
    assert never.opens_incident and "never validated" in never.note
    failed = _evaluate(_frame(400, 0.865), _figures(0.865, status="failed"))["accuracy_floor"]
    assert failed.opens_incident and "validation_status=failed" in failed.note
    unproven = _evaluate(_frame(400, 0.865), _figures(None))
    assert unproven["accuracy_floor"].opens_incident
    assert "no proven accuracy" in unproven["accuracy_floor"].note
    # Without a proven accuracy the sequential test says why it cannot run.
    assert unproven["sequential_regression"].level is rules.Level.no_data
    assert "nothing to test" in unproven["sequential_regression"].note


def test_the_floor_waits_for_enough_labelled_tickets_since_the_version_went_live() -> None:
    frame = _frame(400, 0.80)
    snapshot = _snapshot(frame)
    evaluations = rules.evaluate(
        config=CONFIG,
        quality=snapshot,
        service=snapshot,
        figures=_figures(0.95),
        live=LiveAccuracy(correct=8, labelled=10),  # promoted a moment ago
    )
    floor = next(e for e in evaluations if e.rule == "accuracy_floor")
    assert floor.level is rules.Level.critical and not floor.opens_incident
    assert "too few" in floor.note


def test_a_proven_figure_from_few_rows_is_not_held_against_the_model() -> None:
    # Proven 0.90 on 150 rows is compatible with a true 0.85; live 0.85 is not a regression.
    small = ProvenAccuracy("1", 0.90, 150, "validate")
    large = ProvenAccuracy("1", 0.90, 20000, "validate")
    confidence = CONFIG.sequential.proven_confidence
    assert small.lower_bound(confidence) < 0.87 < large.lower_bound(confidence) < 0.90
    live = LiveAccuracy(correct=425, labelled=500)
    assert not rules.compare_with_proven(live, small, confidence=confidence, alpha=0.01).below
    assert rules.compare_with_proven(live, large, confidence=confidence, alpha=0.01).below


def test_mean_confidence_is_judged_against_the_evaluation_set() -> None:
    # The runbook's fixed 0.75 would call this model critical; it was this confident when proven.
    calm = _evaluate(_frame(400, 0.80, confidence=0.72), _figures(0.80, confidence=0.73))
    assert calm["mean_confidence"].level is rules.Level.ok
    assert "relative to mean confidence 0.730" in calm["mean_confidence"].note
    shaken = _evaluate(_frame(400, 0.95, confidence=0.80), _figures(0.95, confidence=0.95))
    assert shaken["mean_confidence"].level is rules.Level.critical
    assert shaken["mean_confidence"].opens_incident
    unknown = _evaluate(_frame(400, 0.95), _figures(0.95, confidence=None))
    assert unknown["mean_confidence"].level is rules.Level.no_data
    assert "no limits" in unknown["mean_confidence"].describe()  # not its margins as limits


def test_per_category_accuracy_is_relative_and_report_only() -> None:
    recall = {"Access": 0.70, "Hardware": 0.99, "Network": 0.95, "Storage": 0.95}
    frame = _frame(400, 0.70)
    verdicts = _evaluate(frame, _figures(0.90, recall=recall))
    # A category that was always hard is not an alarm at its usual level ...
    assert verdicts["category_accuracy[Access]"].level in (rules.Level.ok, rules.Level.warning)
    # ... one far under its own recall is, but it is reported only.
    hardware = verdicts["category_accuracy[Hardware]"]
    assert hardware.level is rules.Level.critical and not hardware.opens_incident
    assert "reported only" in hardware.note and "Hardware recall 0.990" in hardware.note


def test_a_shift_in_confidences_is_reported_only() -> None:
    frame = pd.concat(
        [_frame(300, 0.9, confidence=0.95, seed=1), _frame(200, 0.9, confidence=0.55, seed=2)],
        ignore_index=True,
    )
    anomaly = _evaluate(frame, _figures(0.90, confidence=0.80))["confidence_anomaly"]
    assert anomaly.level is rules.Level.critical and not anomaly.opens_incident


@pytest.mark.parametrize("proven", [0.80, 0.865, 0.92, 0.96])
def test_honest_feedback_at_the_proven_accuracy_opens_nothing(proven: float) -> None:
    for seed in range(5):
        verdicts = _evaluate(_frame(400, proven, seed=seed), _figures(proven))
        assert not [e.describe() for e in verdicts.values() if e.opens_incident]
