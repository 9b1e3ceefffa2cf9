"""Choosing and calibrating the category head on training rows only, on any class mix."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from boltit.core.errors import BadInputError
from boltit.core.evaluation import expected_calibration_error
from boltit.training.counted import CountedTexts
from boltit.training.model import ModelConfig, TicketClassifier, build_features
from boltit.training.selection import (
    DEFAULT_SEARCH_SPACE,
    Candidate,
    SearchSpace,
    assign_folds,
    load_search_space,
    select,
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
    # The reference is the plain baseline's own configuration, so the search can keep it.
    assert space.reference == Candidate(1.0, None)
    assert space.reference in space.candidates


def test_a_reference_outside_the_grid_joins_the_candidates(tmp_path: Path) -> None:
    path = tmp_path / "space.yaml"
    path.write_text("c: [0.5]\nreference: {c: 2, class_weight: balanced}\n", encoding="utf-8")
    space = load_search_space(path)
    assert space.candidates == (Candidate(2.0, "balanced"), Candidate(0.5, None))
    assert space.min_gain_se == 2.0  # the default


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("class_weight: [weighted]\nc: [1.0]\n", "class_weight"),
        ("c: []\n", "'c'"),
        ("c: [-1]\n", "positive"),
        ("c: [1.0]\nfolds: 1\n", "folds"),
        ("- 1\n", "mapping"),
        ("c: [1.0]\nreference: 1.0\n", "reference"),
        ("c: [1.0]\nreference: {c: 1.0, class_weight: weighted}\n", "reference class_weight"),
        ("c: [1.0]\nreference: {c: 0, class_weight: null}\n", "positive"),
        ("c: [1.0]\nmin_gain_se: -1\n", "min_gain_se"),
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


def _chosen_by_rule(table: pd.DataFrame, min_gain_se: float) -> pd.Series:
    """The row the reference rule picks: the best CV accuracy among the reference and the
    candidates that beat it by more than ``min_gain_se`` standard errors (first on ties)."""
    clear = table[
        table["reference"] | (table["gain_over_reference"] > min_gain_se * table["gain_se"])
    ]
    return clear.loc[clear["cv_accuracy"].idxmax()]


def test_the_search_chooses_from_training_rows_only_by_the_reference_rule() -> None:
    frame = skewed_teams(1500, n_classes=20, singletons=1, seed=9)
    space = load_search_space()
    model = TicketClassifier.fit(frame["text"], frame["category"], config=CONFIG, search=space)
    selection = model.selection
    assert selection is not None
    table = pd.DataFrame(selection.table())
    assert len(table) == len(space.candidates)
    assert table["chosen"].sum() == 1 and table["reference"].sum() == 1
    best = table.loc[table["chosen"]].iloc[0]
    assert best["candidate"] == _chosen_by_rule(table, space.min_gain_se)["candidate"]
    assert Candidate(
        best["c"], None if best["class_weight"] == "none" else best["class_weight"]
    ) == (selection.chosen)
    # The candidates really differ: the table is measured, not a constant.
    assert table["cv_accuracy"].nunique() > 1
    reference = table.loc[table["reference"]].iloc[0]
    assert reference["gain_over_reference"] == 0.0
    gains = table["cv_accuracy"] - reference["cv_accuracy"]
    np.testing.assert_allclose(table["gain_over_reference"], gains, atol=1e-12)
    # The registered head is the chosen one, refitted on every given row.
    assert selection.chosen.c == model.category_head.estimator.C
    assert model.category_head.estimator.class_weight == selection.chosen.class_weight
    assert model.category_head.estimator.n_features_in_ == len(
        model.features.transformer_list[0][1].vocabulary_
    )


def test_the_reference_stays_unless_a_candidate_is_clearly_better() -> None:
    frame = skewed_teams(1200, n_classes=12, singletons=0, seed=11)
    reference = Candidate(1.0, None)
    weak = Candidate(0.01, None)  # far too regularised: much worse than the reference
    strong_and_weak = (reference, Candidate(3.0, "balanced"), weak)
    featurize = CountedTexts(frame["text"], build_features(CONFIG)).featurize
    labels = frame["category"].to_numpy()

    def chosen(min_gain_se: float) -> tuple[Candidate, pd.DataFrame]:
        space = SearchSpace(strong_and_weak, 3, reference, min_gain_se)
        selection = select(labels, featurize, space, seed=1, n_jobs=1)
        return selection.chosen, pd.DataFrame(selection.table())

    # No evidence is enough: the reference stays, whatever CV says.
    kept, table = chosen(1e9)
    assert kept == reference
    # Any gain is enough: the best CV accuracy wins (the weak candidate never does).
    best, table = chosen(0.0)
    assert best == strong_and_weak[int(table["cv_accuracy"].idxmax())]
    assert best != weak
    assert table["gain_over_reference"].iloc[2] < 0


def test_counting_once_equals_fitting_tfidf_on_each_subset() -> None:
    texts = skewed_teams(600, n_classes=6, singletons=0, seed=1)["text"].tolist()
    for config in (CONFIG, ModelConfig(char_features=True, min_df=2)):
        counted = CountedTexts(texts, build_features(config))
        fit_rows, held = np.arange(0, 600, 3), np.setdiff1d(np.arange(600), np.arange(0, 600, 3))
        train_x, held_x = counted.featurize(fit_rows, held)
        reference = build_features(config)
        expected = reference.fit_transform([texts[i] for i in fit_rows])
        assert train_x.shape == expected.shape
        assert abs(train_x - expected).max() < 1e-6
        assert abs(held_x - reference.transform([texts[i] for i in held])).max() < 1e-6
        union, matrix = counted.fitted()
        everything = build_features(config)
        assert abs(matrix - everything.fit_transform(texts)).max() < 1e-6
        # The fitted union transforms new text as a normally fitted one does.
        assert (
            abs(
                union.transform(["printer on fire"]) - everything.transform(["printer on fire"])
            ).max()
            < 1e-6
        )
