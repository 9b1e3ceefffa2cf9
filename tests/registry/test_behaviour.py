"""The behavioural checks and their gates, on real fitted ticket classifiers.

Healthy models (generator tickets, a dataset with other category names, the real dataset)
pass; models broken in one behavioural way fail the check that names that way: keyed on
ticket ids or on letter case (invariance), probabilities served under the wrong category
names (directional), labels that taught nothing (minimum functionality).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from boltit.core.errors import BadInputError
from boltit.registry.behaviour import BehaviourEvidence, check_behaviour
from boltit.registry.behaviour.functionality import check_functionality, load_cases
from boltit.registry.behaviour.invariance import PERTURBATIONS
from boltit.registry.behaviour.share import Share
from boltit.registry.gate_config import GateConfig, parse_gate_config
from boltit.registry.gate_evidence import score_predictions
from boltit.registry.gates import GateResult, evaluate_gates
from boltit.training.generator import CATEGORIES, generate_tickets
from boltit.training.model import TicketClassifier
from tests.registry.behaviour_broken_model_code import IdKeyedClassifier

BEHAVIOUR_GATES = (
    "behaviour_invariance",
    "behaviour_directional",
    "behaviour_minimum_functionality",
)


def _verdicts(
    classifier: Any, evaluation: pd.DataFrame, config: GateConfig | None = None
) -> tuple[dict[str, GateResult], BehaviourEvidence]:
    """The behavioural gate results of ``classifier``, as ``validate`` judges them."""
    config = config or parse_gate_config()
    evidence = check_behaviour(classifier, evaluation["text"].tolist(), config=config)
    predicted = classifier.predict_frame(evaluation["text"].tolist())
    candidate = score_predictions(
        version="1",
        true_categories=evaluation["category"].tolist(),
        predicted_categories=predicted["category"].astype(str).tolist(),
        confidence=predicted["confidence"].astype(float).tolist(),
        auto_apply_threshold=0.9,
        size_bytes=1,
    )
    report = evaluate_gates(
        candidate=candidate,
        champion=None,
        config=config,
        latency_budget_ms=50.0,
        behaviour=evidence,
    )
    return {r.name: r for r in report.results if r.name in BEHAVIOUR_GATES}, evidence


def _fit(frame: pd.DataFrame) -> TicketClassifier:
    return TicketClassifier.fit(frame["text"], frame["category"])


@pytest.fixture(scope="module")
def tickets() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training tickets and evaluation tickets no model here trained on."""
    return generate_tickets(1500, seed=1), generate_tickets(400, seed=7)


@pytest.fixture(scope="module")
def healthy(tickets: tuple[pd.DataFrame, pd.DataFrame]) -> TicketClassifier:
    return _fit(tickets[0])


class CaseKeyedClassifier:
    """A model whose preprocessing keys on case: shouted tickets go to the next category."""

    def __init__(self, inner: TicketClassifier) -> None:
        self._inner = inner
        self.categories = inner.categories

    def predict_frame(self, texts: Sequence[str], *, probabilities: bool = False) -> pd.DataFrame:
        frame = self._inner.predict_frame(texts, probabilities=probabilities)
        shouted = [sum(ch.isupper() for ch in t) > len(t) / 2 for t in texts]
        frame["category"] = [
            self.categories[(self.categories.index(c) + 1) % len(self.categories)] if s else c
            for c, s in zip(frame["category"], shouted, strict=True)
        ]
        return frame


class MisnamedClassifier:
    """The category head's probabilities served under the next category's name: a model
    whose saved class order does not match the names it is served with."""

    def __init__(self, inner: TicketClassifier) -> None:
        self._inner = inner
        self.features = inner.features
        self.category_head = inner.category_head
        self.categories = inner.categories

    def _renamed(self, category: str) -> str:
        return self.categories[(self.categories.index(category) + 1) % len(self.categories)]

    def predict_frame(self, texts: Sequence[str], *, probabilities: bool = False) -> pd.DataFrame:
        frame = self._inner.predict_frame(texts, probabilities=probabilities)
        frame["category"] = [self._renamed(c) for c in frame["category"]]
        return frame.rename(
            columns={f"proba_{c}": f"proba_{self._renamed(c)}" for c in self.categories}
        )


@pytest.mark.unit
def test_a_share_fails_only_when_its_whole_interval_is_above_the_limit() -> None:
    none_changed = Share(0, 360, 0.95)
    assert none_changed.observed == 0.0
    assert none_changed.interval is not None and 0.0 < none_changed.interval[1] < 0.02
    # 20/360 = 0.056 is above 0.05, but its interval reaches below: noise, not a fault.
    assert not Share(20, 360, 0.95).clearly_above(0.05)
    assert Share(30, 360, 0.95).clearly_above(0.05)
    assert Share(0, 0, 0.95).interval is None and not Share(0, 0, 0.95).clearly_above(0.0)


@pytest.mark.unit
def test_packaged_cases_cover_every_generator_category_and_bad_files_are_refused(
    tmp_path: Path,
) -> None:
    cases = load_cases()
    by_category = {c: sum(case.category == c for case in cases) for c in CATEGORIES}
    assert all(count >= 3 for count in by_category.values()), by_category
    assert {case.category for case in cases} == set(CATEGORIES)

    bad = tmp_path / "cases.yaml"
    bad.write_text("cases:\n  Hardware: my laptop is broken\n")  # a string, not a list
    with pytest.raises(BadInputError, match="list of ticket texts"):
        load_cases(bad)
    with pytest.raises(BadInputError, match="cannot be read"):
        load_cases(tmp_path / "missing.yaml")


@pytest.mark.integration
def test_a_healthy_model_passes_every_behavioural_gate_and_says_how_sure(
    healthy: TicketClassifier, tickets: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    results, evidence = _verdicts(healthy, tickets[1])
    assert all(r.passed is True for r in results.values()), [r.describe() for r in results.values()]
    assert evidence.invariance is not None and evidence.directional is not None
    # 60 sampled evaluation tickets, each perturbed every way, predicted in one batch.
    assert evidence.invariance.changed.total == 60 * len(PERTURBATIONS)
    assert evidence.directional.added.total == 60 and evidence.directional.removed.total > 0
    for result in results.values():
        assert result.observed is not None and result.interval is not None
        assert "95% CI" in result.observed_text
    assert results["behaviour_minimum_functionality"].note.startswith("0/32 canonical")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("broken", "perturbation"),
    [(IdKeyedClassifier, "ticket_id"), (CaseKeyedClassifier, "upper_case")],
)
def test_a_model_keyed_on_noise_fails_invariance_naming_the_perturbation(
    healthy: TicketClassifier,
    tickets: tuple[pd.DataFrame, pd.DataFrame],
    broken: Any,
    perturbation: str,
) -> None:
    results, evidence = _verdicts(broken(healthy), tickets[1])
    invariance = results["behaviour_invariance"]
    assert invariance.passed is False
    assert evidence.invariance is not None
    assert evidence.invariance.changed_by_perturbation[perturbation] == 60
    assert f"changed by {perturbation} 60" in invariance.note
    # Its canonical tickets carry neither ids nor shouting: that check still passes.
    assert results["behaviour_minimum_functionality"].passed is True
    # These wrappers expose no linear word weights: skipped, and the note says so.
    if broken is IdKeyedClassifier:
        assert results["behaviour_directional"].observed is None
        assert results["behaviour_directional"].note.startswith("skipped: ")


@pytest.mark.integration
def test_probabilities_under_the_wrong_category_names_fail_directional(
    healthy: TicketClassifier, tickets: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    results, evidence = _verdicts(MisnamedClassifier(healthy), tickets[1])
    directional = results["behaviour_directional"]
    assert directional.passed is False, directional.describe()
    # Adding a category's evidence raises what is served as the next category's probability,
    # so the named one falls wherever it was above the tolerance (a healthy model: 0).
    assert evidence.directional is not None and evidence.directional.added.failed >= 10
    assert "moved the wrong way" in directional.note
    # Invariance cannot see it: the renaming is consistent, so no perturbation changes it.
    assert results["behaviour_invariance"].passed is True


@pytest.mark.integration
def test_a_model_that_learnt_nothing_fails_minimum_functionality(
    tickets: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    from tests.registry.conftest import shuffled_tickets

    results, evidence = _verdicts(_fit(shuffled_tickets(1500, seed=2)), tickets[1])
    functionality = results["behaviour_minimum_functionality"]
    assert functionality.passed is False
    assert evidence.functionality is not None
    assert evidence.functionality.failed.total == 32 and evidence.functionality.failed.failed > 8
    assert functionality.observed is not None and functionality.observed > 0.25


@pytest.mark.integration
def test_cases_of_categories_the_model_does_not_know_are_skipped_never_passed(
    tmp_path: Path, tickets: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    # An unseen dataset: the generator's tickets under other category names.
    renamed = {c: f"Queue {i}" for i, c in enumerate(CATEGORIES)}
    train, evaluation = (f.assign(category=f["category"].map(renamed)) for f in tickets)
    model = _fit(train)
    results, _ = _verdicts(model, evaluation)
    functionality = results["behaviour_minimum_functionality"]
    assert functionality.passed is True and functionality.observed is None
    assert functionality.note.startswith("skipped: no case of a category the model knows")
    assert "32 skipped" in functionality.note
    assert results["behaviour_invariance"].passed is True
    assert results["behaviour_directional"].passed is True

    # Known categories are judged, the others counted apart (names matched ignoring case).
    mixed = tmp_path / "cases.yaml"
    mixed.write_text(
        "cases:\n  queue 2:\n    - my account password is locked, please reset it\n"
        "  Hardware:\n    - my laptop is broken\n    - the monitor flickers\n"
    )
    outcome = check_functionality(model, load_cases(mixed), confidence=0.95)
    assert (outcome.failed.failed, outcome.failed.total) == (0, 1)  # "Queue 2" is Access
    assert outcome.skipped == 2 and outcome.unknown_categories == ["Hardware"]


@pytest.mark.integration
@pytest.mark.real_data
@pytest.mark.slow
def test_a_model_of_the_real_dataset_passes_the_behavioural_gates(real_data_path: Path) -> None:
    frame = (
        pd.read_csv(real_data_path)
        .rename(columns={"Document": "text", "Topic_group": "category"})
        .sample(7000, random_state=3)
    )
    results, _ = _verdicts(_fit(frame.iloc[:6000]), frame.iloc[6000:])
    assert all(r.passed is True for r in results.values()), [r.describe() for r in results.values()]
    assert results["behaviour_minimum_functionality"].observed is not None
