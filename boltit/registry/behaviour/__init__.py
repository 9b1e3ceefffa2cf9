"""Behavioural tests of a candidate model, run by ``validate`` as three gates.

After Made-With-ML's model tests, made to work on any dataset:

- ``invariance``: perturbations that carry no category (case, spacing and punctuation, a
  ticket id, a person's name, an email signature, a greeting) applied to evaluation
  tickets the candidate did not train on must not change its predicted category;
- ``directional``: a category's evidence words (from the model's own coefficients) added
  to a ticket must not lower that category's probability, removed must not raise it;
- ``functionality``: canonical tickets per category name (``behaviour_cases.yaml``) must
  be classified right; cases of categories the model does not know are skipped.

Each check counts failing cases and gives the share an interval (``share.Share``), so a
gate can fail only when the failures are more than noise. The checks predict in a few
batches of a few hundred tickets, which costs far less than scoring the evaluation set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from boltit.registry.behaviour.directional import DirectionalOutcome, check_directional
from boltit.registry.behaviour.functionality import (
    FunctionalityOutcome,
    check_functionality,
    load_cases,
)
from boltit.registry.behaviour.invariance import InvarianceOutcome, check_invariance
from boltit.registry.gate_config import GateConfig, GateMode


@dataclass(frozen=True)
class BehaviourEvidence:
    """The outcome of each behavioural check; None for a check whose gate is disabled."""

    invariance: InvarianceOutcome | None
    directional: DirectionalOutcome | None
    functionality: FunctionalityOutcome | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "invariance": None if self.invariance is None else self.invariance.to_dict(),
            "directional": None if self.directional is None else self.directional.to_dict(),
            "functionality": None if self.functionality is None else self.functionality.to_dict(),
        }


def sample_tickets(texts: Sequence[str], *, rows: int, seed: int) -> list[str]:
    """``rows`` of ``texts`` chosen with ``seed``: the same set always gives the same verdict."""
    items = [str(t) for t in texts]
    if len(items) <= rows:
        return items
    chosen = np.random.default_rng(seed).choice(len(items), size=rows, replace=False)
    return [items[i] for i in sorted(chosen)]


def check_behaviour(
    classifier: Any, evaluation_texts: Sequence[str], *, config: GateConfig
) -> BehaviourEvidence:
    """Run every behavioural check whose gate is not disabled.

    Args:
        classifier: The candidate's ticket classifier (``predict_frame``).
        evaluation_texts: Evaluation tickets the candidate did not train on.
        config: The gate config (modes and limits, and its ``behaviour`` section).
    """
    gates, settings = config.gates, config.behaviour
    tickets = sample_tickets(evaluation_texts, rows=settings.rows, seed=settings.seed)
    invariance = directional = functionality = None
    if gates.behaviour_invariance.mode != GateMode.DISABLED:
        invariance = check_invariance(classifier, tickets, confidence=settings.confidence)
    if gates.behaviour_directional.mode != GateMode.DISABLED:
        directional = check_directional(
            classifier,
            tickets,
            evidence_per_category=settings.evidence_words,
            words_added=settings.words_added,
            tolerance=gates.behaviour_directional.tolerance,
            confidence=settings.confidence,
        )
    if gates.behaviour_minimum_functionality.mode != GateMode.DISABLED:
        functionality = check_functionality(
            classifier, load_cases(settings.cases), confidence=settings.confidence
        )
    return BehaviourEvidence(invariance, directional, functionality)
