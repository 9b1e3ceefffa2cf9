"""Choosing and calibrating the category head on training rows only, on any class mix."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from boltit.core.errors import BadInputError
from boltit.core.evaluation import expected_calibration_error
from boltit.training.model import ModelConfig, TicketClassifier
from boltit.training.selection import (
    DEFAULT_SEARCH_SPACE,
    Candidate,
    assign_folds,
    load_search_space,
)
from boltit.training.shapes import short_texts, skewed_teams, two_classes

CONFIG = ModelConfig(seed=5)
ECE_BOUND = 0.05


def _split(frame: pd.DataFrame, test_share: float = 0.25) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Held-out rows from classes with enough rows; every rare row stays in training."""
    counts = frame["category"].map(frame["category"].value_counts())
    rng = np.random.default_rng(0)
    held = (counts >= 5).to_numpy() & (rng.random(len(frame)) < test_share)
    return frame[~held], frame[held]


def _ece(model: TicketClassifier, held: pd.DataFrame) -> tuple[float, float]:
    predicted = model.predict_frame(held["text"].tolist())
    correct = predicted["category"].to_numpy() == held["category"].to_numpy()
    ece = expected_calibration_error(confidence=predicted["confidence"], correct=correct)
    return float(correct.mean()), ece


def test_folds_take_classes_rarer_than_the_folds_without_warnings() -> None:
    labels = np.array(["a"] * 10 + ["b"] * 4 + ["only"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        folds = assign_folds(labels, 3, seed=1)
    assert set(folds.tolist()) == {0, 1, 2}
    for label in ("a", "b"):
        per_fold = np.bincount(folds[labels == label], minlength=3)
        assert per_fold.max() - per_fold.min() <= 1  # stratified: dealt round-robin
    np.testing.assert_array_equal(folds, assign_folds(labels, 3, seed=1))


def test_default_search_space_is_class_weighting_by_c(tmp_path: Path) -> None:
    space = load_search_space()
    assert {c.class_weight for c in space.candidates} == {None, "balanced"}
    assert len({c.c for c in space.candidates}) >= 3
    assert space.folds >= 2
    assert load_search_space(DEFAULT_SEARCH_SPACE) == space


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("class_weight: [weighted]\nc: [1.0]\n", "class_weight"),
        ("c: []\n", "'c'"),
        ("c: [-1]\n", "positive"),
        ("c: [1.0]\nfolds: 1\n", "folds"),
        ("- 1\n", "mapping"),
    ],
)
def test_bad_search_space_is_refused_by_name(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BadInputError, match=problem):
        load_search_space(path)


def test_many_skewed_classes_with_singletons_are_calibrated_without_warnings() -> None:
    frame = skewed_teams(2500, n_classes=64, singletons=3, seed=4)
    counts = frame["category"].value_counts()
    assert len(counts) == 64 and (counts == 1).sum() == 3
    assert counts.iloc[0] / len(frame) > 0.25  # skewed like a real help desk
    train, held = _split(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no sklearn (or any) warning reaches the user
        model = TicketClassifier.fit(
            train["text"], train["category"], config=CONFIG, search=load_search_space()
        )
    assert set(model.categories) == set(frame["category"])
    selection = model.selection
    assert selection is not None
    # The singletons cannot be scored out of fold; calibration goes ahead without them
    # instead of leaving the temperature at 1.0.
    assert selection.calibration_rows >= len(train) - 3
    assert "left out of calibration" in selection.note
    assert model.category_head.temperature != pytest.approx(1.0, abs=0.05)
    accuracy, ece = _ece(model, held)
    assert accuracy > 0.8
    assert ece <= ECE_BOUND


@pytest.mark.parametrize("shape", [two_classes, short_texts])
def test_two_classes_and_short_texts_are_calibrated(shape) -> None:  # type: ignore[no-untyped-def]
    train, held = _split(shape(2000, seed=3))
    model = TicketClassifier.fit(
        train["text"], train["category"], config=CONFIG, search=load_search_space()
    )
    _, ece = _ece(model, held)
    assert ece <= ECE_BOUND


def test_the_search_chooses_the_best_cv_candidate_from_training_rows_only() -> None:
    frame = skewed_teams(1500, n_classes=20, singletons=1, seed=9)
    model = TicketClassifier.fit(
        frame["text"], frame["category"], config=CONFIG, search=load_search_space()
    )
    selection = model.selection
    assert selection is not None
    table = pd.DataFrame(selection.table())
    assert len(table) == len(load_search_space().candidates)
    assert table["chosen"].sum() == 1
    best = table.loc[table["chosen"]].iloc[0]
    assert best["cv_accuracy"] == table["cv_accuracy"].max()
    assert Candidate(
        best["c"], None if best["class_weight"] == "none" else best["class_weight"]
    ) == (selection.chosen)
    # The candidates really differ: the table is measured, not a constant.
    assert table["cv_accuracy"].nunique() > 1
    # The registered head is the chosen one, refitted on every given row.
    assert selection.chosen.c == model.category_head.estimator.C
    assert model.category_head.estimator.class_weight == selection.chosen.class_weight
    assert model.category_head.estimator.n_features_in_ == len(
        model.features.transformer_list[0][1].vocabulary_
    )
