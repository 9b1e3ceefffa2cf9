"""The classifier itself: heads, probabilities, determinism, safe serialisation."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skops import io as skops_io

from boltit.training.generator import generate_tickets
from boltit.training.model import ModelConfig, TicketClassifier

CONFIG = ModelConfig(seed=5)


@pytest.fixture(scope="module")
def tickets() -> pd.DataFrame:
    return generate_tickets(2500, seed=21)


@pytest.fixture(scope="module")
def classifier(tickets: pd.DataFrame) -> TicketClassifier:
    train = tickets.iloc[:2000]
    return TicketClassifier.fit(train["text"], train["category"], train["priority"], config=CONFIG)


def test_predicts_category_confidence_and_priority(
    classifier: TicketClassifier, tickets: pd.DataFrame
) -> None:
    held_out = tickets.iloc[2000:]
    frame = classifier.predict_frame(held_out["text"].tolist())
    assert list(frame.columns) == ["category", "confidence", "priority"]
    assert set(frame["category"]) <= set(classifier.categories)
    assert frame["confidence"].between(1 / len(classifier.categories), 1.0).all()
    assert set(frame["priority"]) <= {"P1", "P2", "P3", "P4"}
    accuracy = (frame["category"].to_numpy() == held_out["category"].to_numpy()).mean()
    # Realistic, not trivial: the generator's vocabulary overlaps on purpose.
    assert 0.8 <= accuracy <= 0.97


def test_probabilities_on_request(classifier: TicketClassifier) -> None:
    frame = classifier.predict_frame(["my vpn password has expired"], probabilities=True)
    columns = [f"proba_{c}" for c in classifier.categories]
    assert columns == [c for c in frame.columns if c.startswith("proba_")]
    assert frame[columns].sum(axis=1).iloc[0] == pytest.approx(1.0)
    assert frame["confidence"].iloc[0] == pytest.approx(frame[columns].max(axis=1).iloc[0])
    assert frame["category"].iloc[0] == "Access"


def test_single_ticket_path_matches_batch_path(
    classifier: TicketClassifier, tickets: pd.DataFrame
) -> None:
    texts = [*tickets["text"].iloc[2000:2040].tolist(), "", "zzzz qqqq"]
    batch = classifier.predict_frame(texts)  # more than 16 rows: sparse matrices
    single = pd.concat([classifier.predict_frame([t]) for t in texts], ignore_index=True)
    assert batch["category"].tolist() == single["category"].tolist()
    assert batch["priority"].tolist() == single["priority"].tolist()
    np.testing.assert_allclose(batch["confidence"], single["confidence"], rtol=1e-5)
    one = classifier.predict_one(texts[0])
    assert one["category"] == batch["category"].iloc[0]
    assert one["confidence"] == pytest.approx(batch["confidence"].iloc[0], rel=1e-5)


def test_without_priority_the_priority_is_none(tickets: pd.DataFrame) -> None:
    model = TicketClassifier.fit(tickets["text"], tickets["category"], config=CONFIG)
    assert model.priorities is None
    frame = model.predict_frame(["printer is broken", "vpn locked", *["x"] * 20])
    assert frame["priority"].isna().all()


def test_same_seed_same_model(tickets: pd.DataFrame) -> None:
    sample = tickets.iloc[:800]
    texts = tickets["text"].iloc[2000:2100].tolist()
    first = TicketClassifier.fit(
        sample["text"], sample["category"], sample["priority"], config=CONFIG
    )
    second = TicketClassifier.fit(
        sample["text"], sample["category"], sample["priority"], config=CONFIG
    )
    pd.testing.assert_frame_equal(
        first.predict_frame(texts, probabilities=True),
        second.predict_frame(texts, probabilities=True),
    )


def test_saved_as_skops_without_untrusted_types(
    classifier: TicketClassifier, tickets: pd.DataFrame, tmp_path: Path
) -> None:
    files = classifier.save(tmp_path)
    for role in ("features", "category", "priority"):  # vocabulary and meta are JSON
        assert files[role].suffix == ".skops"
        assert skops_io.get_untrusted_types(file=files[role]) == []
    loaded = TicketClassifier.load(tmp_path)
    texts = tickets["text"].iloc[2000:2050].tolist()
    pd.testing.assert_frame_equal(
        loaded.predict_frame(texts, probabilities=True),
        classifier.predict_frame(texts, probabilities=True),
    )
