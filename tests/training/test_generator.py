"""The built-in ticket generator: deterministic, realistic, parametrisable."""

from datetime import UTC, datetime

import pandas as pd
import pytest

from boltit.training.generator import CATEGORIES, PRIORITIES, generate_tickets


def test_same_seed_same_tickets_and_other_seed_differs() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    first = generate_tickets(500, seed=3, start=start)
    again = generate_tickets(500, seed=3, start=start)
    other = generate_tickets(500, seed=4, start=start)
    pd.testing.assert_frame_equal(first, again)
    assert not first["text"].equals(other["text"])


def test_has_every_category_and_priority_with_varied_text() -> None:
    frame = generate_tickets(3000, seed=1)
    assert list(frame.columns) == ["text", "category", "priority", "created_at"]
    assert set(frame["category"]) == set(CATEGORIES)
    assert len(CATEGORIES) >= 8
    assert set(frame["priority"]) == set(PRIORITIES) == {"P1", "P2", "P3", "P4"}
    # Varied phrasing: almost every ticket is unique, and lengths differ.
    assert frame["text"].nunique() > 0.95 * len(frame)
    assert frame["text"].map(lambda t: len(t.split())).std() > 3


def test_created_at_spreads_over_the_requested_days() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    frame = generate_tickets(400, seed=2, start=start, days=10)
    assert frame["created_at"].min() >= pd.Timestamp(start)
    assert frame["created_at"].max() <= pd.Timestamp(start) + pd.Timedelta(days=10)
    assert frame["created_at"].dt.date.nunique() >= 8


def test_category_weights_and_label_noise() -> None:
    only_two = generate_tickets(300, seed=5, category_weights={"Hardware": 1, "Access": 1})
    assert set(only_two["category"]) == {"Hardware", "Access"}
    clean = generate_tickets(2000, seed=5)
    noisy = generate_tickets(2000, seed=5, label_noise=0.5)
    changed = (clean["category"] != noisy["category"]).mean()
    assert 0.3 < changed < 0.6  # half relabelled at random, 1/8 of those land on the same label


def test_unknown_category_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown categories"):
        generate_tickets(10, seed=1, category_weights={"Printers": 1.0})
