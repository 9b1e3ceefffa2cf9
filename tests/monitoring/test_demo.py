"""The demo's closing act: real predictions of a worse version, then the monitor's response."""

from __future__ import annotations

from monitoring.demo import serve_and_label, simulate_regression
from registry.promote import promote
from tests.monitoring.conftest import AMBIGUITY
from tests.monitoring.test_respond import Trained
from training.generator import generate_tickets


def test_the_simulated_regression_ends_in_a_rollback_and_a_review(trained: Trained) -> None:
    settings, client, database, _ = trained
    promote(
        client=client, database=database, name=settings.model_name, version="1",
        actor="demo", reason="first version", force=True, settings=settings,
    )  # fmt: skip
    tickets = generate_tickets(400, seed=31, ambiguity=AMBIGUITY)
    good = serve_and_label(
        settings=settings,
        database=database,
        version="1",
        texts=tickets["text"].iloc[:250].tolist(),
        truths=tickets["category"].iloc[:250].tolist(),
    )
    assert good > 0.85

    demo = simulate_regression(
        settings=settings,
        database=database,
        client=client,
        worse_version="2",
        texts=tickets["text"].iloc[250:].tolist(),
        truths=tickets["category"].iloc[250:].tolist(),
    )

    assert demo.accuracy < 0.5
    assert demo.restored_version == "1"
    assert demo.review is not None and "**Root Cause:** Recent model deployment" in demo.review
