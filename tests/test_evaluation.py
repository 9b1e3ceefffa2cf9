"""The one evaluation module: each figure defined once, checked against scikit-learn, and a
grep that fails if a second definition of ECE or of live accuracy creeps back in."""

from __future__ import annotations

import re
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, recall_score

from boltit.core import evaluation
from boltit.core.db import Database
from boltit.core.errors import BadInputError
from boltit.core.schema import Ticket, utcnow
from boltit.core.tickets import add_feedback

ROOT = Path(__file__).resolve().parents[1]
# Tests check figures against scikit-learn on purpose; everything else that ships is searched.
NOT_SOURCE = {"tests", "docs"}


def _predictions(n: int = 600, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.array(["Access", "Hardware", "HR Support", "Storage"], dtype=object)
    truth = labels[rng.integers(0, 4, n)]
    predicted = truth.copy()
    wrong = rng.random(n) < 0.25
    predicted[wrong] = labels[rng.integers(0, 4, int(wrong.sum()))]
    return truth, predicted


def test_accuracy_macro_f1_and_recall_agree_with_scikit_learn() -> None:
    truth, predicted = _predictions()
    labels = sorted(set(truth))
    assert evaluation.accuracy(truth, predicted) == pytest.approx(accuracy_score(truth, predicted))
    assert evaluation.macro_f1(truth, predicted) == pytest.approx(
        f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)
    )
    recalls = recall_score(truth, predicted, labels=labels, average=None, zero_division=0)
    assert evaluation.category_recall(truth, predicted) == pytest.approx(
        dict(zip(labels, recalls, strict=True))
    )
    scores = evaluation.category_scores(truth, predicted)
    assert scores.weighted_f1 == pytest.approx(
        f1_score(truth, predicted, labels=labels, average="weighted", zero_division=0)
    )


def test_a_predicted_category_nobody_filed_does_not_join_the_macro_average() -> None:
    truth = ["a", "a", "b", "b"]
    predicted = ["a", "c", "b", "b"]
    # Over the true categories a and b only: F1(a) = 2/3, F1(b) = 1 (c would add a 0).
    assert evaluation.macro_f1(truth, predicted) == pytest.approx((2 / 3 + 1) / 2)
    # Named labels are scored even when absent (0, never NaN).
    assert evaluation.category_recall(truth, predicted, ["a", "b", "z"])["z"] == 0.0


def test_misaligned_or_empty_inputs_are_named() -> None:
    with pytest.raises(BadInputError, match="must align"):
        evaluation.accuracy(["a", "b"], ["a"])
    with pytest.raises(BadInputError, match="empty"):
        evaluation.accuracy([], [])
    with pytest.raises(BadInputError, match="must align"):
        evaluation.expected_calibration_error(confidence=[0.5, 0.5], correct=[True])


def test_expected_calibration_error_uses_one_bin_count() -> None:
    assert evaluation.ECE_BINS == 15
    # Confidence 0.8 everywhere, 80% right: perfectly calibrated.
    confidence = np.full(10, 0.8)
    correct = np.array([True] * 8 + [False] * 2)
    assert evaluation.expected_calibration_error(
        confidence=confidence, correct=correct
    ) == pytest.approx(0.0)
    # Confidence 1.0 (the last bin, not past it) but half right: off by 0.5.
    ones = evaluation.expected_calibration_error(
        confidence=np.ones(4), correct=np.array([1, 0, 1, 0])
    )
    assert ones == pytest.approx(0.5)
    # Two bins, each weighted by its share: |0.95 - 1| * 0.5 + |0.55 - 0| * 0.5.
    two = evaluation.expected_calibration_error(
        confidence=[0.95, 0.95, 0.55, 0.55], correct=[True, True, False, False]
    )
    assert two == pytest.approx(0.5 * 0.05 + 0.5 * 0.55)
    # 0.62 and 0.64 share a bin with 15 bins (width 1/15) but not with 50.
    split: dict[str, Any] = {"confidence": [0.62, 0.64], "correct": [False, True]}
    assert evaluation.expected_calibration_error(**split) == pytest.approx(0.13)
    assert evaluation.expected_calibration_error(**split, bins=50) == pytest.approx(0.49)
    assert evaluation.expected_calibration_error(confidence=[], correct=[]) == 0.0


def test_auto_apply_precision_is_none_when_nothing_reaches_the_threshold() -> None:
    confidence = np.array([0.95, 0.8, 0.7, 0.6])
    correct = np.array([True, False, True, True])
    at_075 = evaluation.auto_apply(confidence=confidence, correct=correct, threshold=0.75)
    assert (at_075.coverage, at_075.precision) == (0.5, 0.5)
    at_09 = evaluation.auto_apply(confidence=confidence, correct=correct, threshold=0.9)
    assert (at_09.coverage, at_09.precision) == (0.25, 1.0)
    nothing = evaluation.auto_apply(confidence=confidence, correct=correct, threshold=0.99)
    assert nothing.coverage == 0.0 and nothing.precision is None


def test_feedback_outcomes_skip_missing_labels() -> None:
    served = ["Access", "Hardware", "Storage", "Access"]
    feedback = ["Access", None, float("nan"), "Storage"]
    labelled, right = evaluation.feedback_outcomes(served, feedback)
    assert labelled.tolist() == [True, False, False, True]
    assert right.tolist() == [True, False, False, False]
    live = evaluation.live_accuracy_of(served, feedback)
    assert (live.labelled, live.correct, live.accuracy) == (2, 1, 0.5)
    assert evaluation.live_accuracy_of([], []).accuracy is None


def _ticket(session, *, category: str, version: str, served_by: str, age: timedelta) -> str:
    ticket_id = uuid.uuid4().hex
    session.add(
        Ticket(
            id=ticket_id,
            text=f"ticket {ticket_id}",
            category=category,
            confidence=0.9,
            model_name="ticket-classifier",
            model_version=version,
            served_by=served_by,
            latency_ms=1.0,
            auto_applied=False,
            reason="test",
            created_at=utcnow() - age,
        )
    )
    session.flush()
    return ticket_id


def test_live_accuracy_over_a_window_from_the_store(database: Database) -> None:
    day = timedelta(days=1)
    with database.session() as session:
        rows = [
            # (served, feedback, version, route, age, client)
            ("Access", "Access", "1", "production", day, "agents"),
            ("Access", "Storage", "1", "production", day, "agents"),
            ("Storage", "Storage", "2", "canary", day, "agents"),
            ("Access", "Access", "1", "production", 9 * day, "agents"),  # outside 7 days
            ("Access", "Hardware", "1", "production", day, None),  # anonymous: not ground truth
            ("Access", None, "1", "production", day, None),  # no feedback
        ]
        for served, label, version, route, age, client in rows:
            ticket_id = _ticket(session, category=served, version=version, served_by=route, age=age)
            if label is not None:
                assert add_feedback(session, ticket_id, category=label, client=client)
    with database.session() as session:
        week = evaluation.live_accuracy(session, since=utcnow() - 7 * day)
        only_v1 = evaluation.live_accuracy(session, since=utcnow() - 7 * day, model_version="1")
        older = evaluation.live_accuracy(
            session, since=utcnow() - 10 * day, until=utcnow() - 2 * day
        )
    assert (week.labelled, week.correct) == (3, 2)
    assert week.accuracy == pytest.approx(2 / 3)
    assert week.by_route == {
        ("1", "production"): evaluation.LiveAccuracy(labelled=2, correct=1),
        ("2", "canary"): evaluation.LiveAccuracy(labelled=1, correct=1),
    }
    assert (only_v1.labelled, only_v1.correct) == (2, 1)
    assert (older.labelled, older.correct) == (1, 1)


@pytest.mark.e2e
def test_the_core_imports_no_scikit_learn() -> None:
    import subprocess

    code = "import sys, boltit.core.evaluation; print('sklearn' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"


def _source_files() -> list[Path]:
    """Every Python file and notebook of the project: all packages, bench/, notebooks/, and
    any folder or script added later (virtualenvs, hidden folders and the tests excepted)."""
    found = []
    for path in sorted([*ROOT.rglob("*.py"), *ROOT.rglob("*.ipynb")]):
        parts = path.relative_to(ROOT).parts
        if parts[0] in NOT_SOURCE or any(p.startswith(".") or p == "build" for p in parts):
            continue
        found.append(path)
    return found


def _code_lines(path: Path) -> list[str]:
    if path.suffix == ".ipynb":
        import nbformat

        notebook = nbformat.read(path, as_version=4)
        cells = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
        return "\n".join(cells).splitlines()
    return path.read_text(encoding="utf-8").splitlines()


def _source_lines() -> list[tuple[str, int, str]]:
    found = []
    for path in _source_files():
        for number, line in enumerate(_code_lines(path), 1):
            found.append((str(path.relative_to(ROOT)), number, line))
    return found


def _matches(pattern: str) -> list[str]:
    regex = re.compile(pattern)
    return [f"{path}:{number}" for path, number, line in _source_lines() if regex.search(line)]


def test_one_definition_of_ece_and_of_live_accuracy_in_the_source_tree() -> None:
    """Fails when someone copies a metric back instead of calling boltit.core.evaluation."""
    # ECE: one function, and the only code binning confidences into calibration bins.
    ece_definitions = _matches(r"def \w*calibration_error\b|def \w*ece\b")
    assert ece_definitions == [
        f"boltit/core/evaluation.py:{_line('def expected_calibration_error')}"
    ]
    binning = _matches(
        r"np\.digitize\(|np\.linspace\(0(\.0)?,\s*1(\.0)?,|pd\.cut\(.*confidence"
        r"|np\.histogram\(.*confidence|np\.searchsorted\(.*edges"
    )
    assert all(hit.startswith("boltit/core/evaluation.py:") for hit in binning), binning
    # Live accuracy: "served category equals (or differs from) the feedback category" is
    # written once, in SQL, pandas or numpy alike.
    comparisons = _matches(LIVE_ACCURACY_COMPARISON)
    assert comparisons == [f"boltit/core/evaluation.py:{_line('served_array == feedback_array')}"]


# ``category`` against ``feedback_category`` in Python (either order, == or !=, attribute
# or subscript, ``.eq``/``.ne``) or SQL text (``=``, ``<>``), or evaluation.py's own arrays.
# (A bare ``category`` is a label being checked, not a prediction: tickets.add_feedback.)
_CATEGORY = r"""\w+(\.|\[["'])category\b["'\]]*"""
_FEEDBACK = r"""\w+(\.|\[["'])feedback_category\b["'\]]*"""
LIVE_ACCURACY_COMPARISON = (
    rf"{_CATEGORY}\s*(==|!=)\s*{_FEEDBACK}"
    rf"|{_FEEDBACK}\s*(==|!=)\s*{_CATEGORY}"
    rf"|{_CATEGORY}\)?\.(eq|ne)\(\s*{_FEEDBACK}"
    r"|(?i:(?<![\w.])category\s*(=|<>)\s*feedback_category\b"
    r"|(?<![\w.])feedback_category\s*(=|<>)\s*category\b)"
    r"|served_array\s*==\s*feedback_array"
)


@pytest.mark.parametrize(
    "copy",
    [
        'labelled["correct"] = labelled["category"] == labelled["feedback_category"]',
        "right = func.sum(case((Ticket.category == Ticket.feedback_category, 1), else_=0))",
        "wrong = (frame.feedback_category != frame.category).sum()",
        "SELECT avg(category = feedback_category) FROM tickets",
        'hits = frame["category"].eq(frame["feedback_category"])',
        "WHERE feedback_category <> category",
    ],
)
def test_the_live_accuracy_grep_catches_a_copy(copy: str) -> None:
    assert re.search(LIVE_ACCURACY_COMPARISON, copy)


def test_the_grep_reads_every_package_bench_and_the_notebooks() -> None:
    searched = {path.relative_to(ROOT).parts[0] for path in _source_files()}
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - NOT_SOURCE
    assert packages <= searched and {"bench", "notebooks"} <= searched, searched
    notebook_lines = [line for path, _, line in _source_lines() if path.startswith("notebooks/")]
    assert any("feedback_outcomes(" in line for line in notebook_lines)


def _line(text: str) -> int:
    lines = (ROOT / "boltit" / "core" / "evaluation.py").read_text(encoding="utf-8").splitlines()
    (number,) = [i for i, line in enumerate(lines, 1) if text in line]
    return number
