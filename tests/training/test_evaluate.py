"""Pure evaluation metrics."""

from pathlib import Path

import numpy as np
import pytest

from boltit.core.evaluation import expected_calibration_error
from boltit.training.evaluate import (
    confusion_matrix_png,
    evaluate,
    metric_name,
    priority_metrics,
    threshold_suffix,
)


def test_metric_names_are_mlflow_safe() -> None:
    assert metric_name("Administrative rights") == "Administrative_rights"
    assert metric_name("HR Support") == "HR_Support"
    assert metric_name("a/b (c)") == "a_b_c"
    assert threshold_suffix(0.75) == "at_0_75"
    assert threshold_suffix(0.9) == "at_0_9"


def test_no_precision_metric_when_no_ticket_reaches_the_threshold() -> None:
    """The gate reads None then; the run logs nothing rather than a misleading 0."""
    proba = np.array([[0.6, 0.4], [0.3, 0.7], [0.55, 0.45]])
    result = evaluate(
        y_true=["a", "b", "b"],
        y_pred=["a", "b", "a"],
        proba=proba,
        classes=["a", "b"],
        auto_apply_threshold=0.75,
        extra_thresholds=(0.65,),
    )
    m = result.metrics
    assert m["auto_apply_coverage"] == m["auto_apply_coverage_at_0_75"] == 0.0
    assert "auto_apply_precision" not in m and "auto_apply_precision_at_0_75" not in m
    assert m["auto_apply_precision_at_0_65"] == 1.0  # the 0.7 ticket, right
    # The run's ECE is the core's, same bins and argument order.
    assert m["expected_calibration_error"] == pytest.approx(
        expected_calibration_error(
            confidence=proba.max(axis=1), correct=np.array([True, True, False])
        )
    )


def test_evaluate_names_every_category_metric() -> None:
    classes = ["Access", "HR Support"]
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    result = evaluate(
        y_true=["Access", "HR Support", "HR Support", "HR Support"],
        y_pred=["Access", "HR Support", "Access", "HR Support"],
        proba=proba,
        classes=classes,
        auto_apply_threshold=0.75,
    )
    m = result.metrics
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["recall_HR_Support"] == pytest.approx(2 / 3)
    assert m["precision_Access"] == pytest.approx(0.5)
    assert m["auto_apply_coverage"] == m["auto_apply_coverage_at_0_75"] == pytest.approx(0.5)
    assert "auto_apply_precision_at_0_9" in m
    assert m["log_loss"] > 0
    assert result.confusion.tolist() == [[1, 0], [1, 2]]
    assert result.label_distribution == {"Access": 1, "HR Support": 3}
    assert "HR Support" in result.report


def test_priority_metrics_skip_rows_without_priority() -> None:
    metrics = priority_metrics(["P1", None, "P3"], ["P1", "P2", "P2"])
    assert metrics["priority_accuracy"] == pytest.approx(0.5)
    assert priority_metrics([None, None], ["P1", "P2"]) == {}


def test_confusion_matrix_png(tmp_path: Path) -> None:
    path = confusion_matrix_png(np.array([[3, 1], [0, 4]]), ["a", "b"], tmp_path / "cm.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
