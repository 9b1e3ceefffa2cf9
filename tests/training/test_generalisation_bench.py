"""The generalisation bench measures model and plain baseline on the same rows."""

from __future__ import annotations

from pathlib import Path

from bench.generalisation_bench import holdout, markdown, measure, shapes
from boltit.training.shapes import skewed_teams, two_classes


def test_rare_categories_stay_in_training_and_the_rest_is_split() -> None:
    frame = skewed_teams(800, n_classes=20, singletons=2, seed=1)
    train_frame, eval_frame = holdout(frame)
    singletons = frame["category"].value_counts().loc[lambda c: c == 1].index
    assert set(singletons) <= set(train_frame["category"])
    assert not set(singletons) & set(eval_frame["category"])
    assert len(train_frame) + len(eval_frame) == len(frame)


def test_one_shape_reports_model_beside_baseline(tmp_path: Path) -> None:
    figures = measure(two_classes(800, seed=2))
    assert figures["classes"] == 2
    assert 0.8 < figures["accuracy"] <= 1.0
    assert 0.8 < figures["baseline_accuracy"] <= 1.0
    assert 0.0 <= figures["ece"] <= 0.1
    assert figures["chosen"].startswith("C=")
    available = shapes(tmp_path / "absent.csv", 500)
    assert available["shared dataset (8 classes)"] is None
    assert len(available) == 4
    # Several seeds: each generated shape once per seed, the shared dataset once.
    assert len(shapes(tmp_path / "absent.csv", 500, (1, 2))) == 7
    assert figures["fit_cpu_seconds"] > 0 and figures["baseline_fit_cpu_seconds"] > 0
    results = {
        "machine": "test",
        "load_average_1m": 0.0,
        "model_at_least_baseline": 1,
        "shapes_measured": 1,
        "shapes": {"2 classes": figures, "shared": None},
    }
    table = markdown(results)
    assert "| 2 classes | 2 |" in table and "skipped" in table
    assert "on 1 of 1 shapes" in table
