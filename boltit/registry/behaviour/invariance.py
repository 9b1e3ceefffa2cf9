"""Invariance: edits that carry no category must not change the predicted category.

Every perturbation adds or changes only what any help-desk ticket may carry whatever
its category (letter case, spacing, a ticket id, a name, a signature, a greeting), so a
ticket whose category changes under one shows a model keyed on noise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from boltit.registry.behaviour.share import Share

_NAMES = ("Alex Morgan", "Priya Shah", "Tomasz Nowak", "Maria Garcia", "Kenji Sato")
_GREETINGS = ("Hello,", "Good afternoon team,", "Hi all,", "Dear colleagues,")
_SPACE = re.compile(r" ")


def _ticket_id(text: str, index: int) -> str:
    # The id alone: the word "ticket" is itself evidence in real data (it leans
    # Miscellaneous there). Ids differ per ticket, as they do in a help desk.
    return f"{text} [INC{(104729 * (index + 1)) % 10_000_000:07d}]"


def _signature(text: str, index: int) -> str:
    return f"{text}\n\n--\n{_NAMES[index % len(_NAMES)]}\nBoltIT Ltd, 1 King Street, London"


PERTURBATIONS: dict[str, Callable[[str, int], str]] = {
    "upper_case": lambda text, index: text.upper(),
    "whitespace_punctuation": lambda text, index: f"  {_SPACE.sub('  ', text)} ...!\n",
    "ticket_id": _ticket_id,
    "person_name": lambda text, index: f"{text} - {_NAMES[(index + 2) % len(_NAMES)]}",
    "email_signature": _signature,
    "greeting": lambda text, index: f"{_GREETINGS[index % len(_GREETINGS)]} {text}",
}
"""Perturbation name -> (ticket text, ticket index) -> perturbed text."""


@dataclass(frozen=True)
class InvarianceOutcome:
    """How many perturbed tickets changed category, overall and per perturbation."""

    changed: Share
    tickets: int
    changed_by_perturbation: dict[str, int]
    examples: list[dict[str, str]]

    def summary(self) -> str:
        """``7/360 perturbed tickets changed category (ticket_id 7)``."""
        broken = ", ".join(f"{k} {v}" for k, v in self.changed_by_perturbation.items() if v)
        text = (
            f"{self.changed.failed}/{self.changed.total} perturbed tickets changed category "
            f"({self.tickets} evaluation tickets x {len(PERTURBATIONS)} perturbations)"
        )
        return f"{text}; changed by {broken}" if broken else text

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed.to_dict(),
            "tickets": self.tickets,
            "changed_by_perturbation": dict(self.changed_by_perturbation),
            "examples": list(self.examples),
        }


def check_invariance(
    classifier: Any, texts: Sequence[str], *, confidence: float, examples: int = 5
) -> InvarianceOutcome:
    """Predict ``texts`` and every perturbation of them in one batch; count the changes.

    Args:
        classifier: Has ``predict_frame(texts)`` returning a ``category`` column.
        texts: Evaluation tickets the model did not train on.
        confidence: Coverage of the interval of the changed share.
        examples: How many changed tickets to keep as evidence.
    """
    originals = [str(t) for t in texts]
    names = list(PERTURBATIONS)
    perturbed = [PERTURBATIONS[name](text, i) for name in names for i, text in enumerate(originals)]
    predicted = classifier.predict_frame(originals + perturbed)["category"].astype(str).tolist()
    before, after = predicted[: len(originals)], predicted[len(originals) :]
    changed_by = dict.fromkeys(names, 0)
    kept: list[dict[str, str]] = []
    for position, category in enumerate(after):
        name, index = names[position // len(originals)], position % len(originals)
        if category != before[index]:
            changed_by[name] += 1
            if len(kept) < examples:
                kept.append(
                    {
                        "perturbation": name,
                        "text": perturbed[position],
                        "before": before[index],
                        "after": category,
                    }
                )
    return InvarianceOutcome(
        changed=Share(sum(changed_by.values()), len(perturbed), confidence),
        tickets=len(originals),
        changed_by_perturbation=changed_by,
        examples=kept,
    )
