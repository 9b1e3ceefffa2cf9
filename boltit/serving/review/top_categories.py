"""The top 3 categories of the tickets on a page, from the version that served them.

Probabilities are not stored with predictions: ``POST /classify`` stays as fast as it was. They
are computed here for the page's tickets only (25 texts: a few milliseconds), with the
replica's loaded model of the ticket's version. A ticket served by a version this replica has
not loaded (an older one) shows its stored prediction and confidence only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from boltit.core.schema import Ticket
from boltit.serving.follower import LoadedModel

TOP = 3


@dataclass(frozen=True)
class Alternative:
    """A category and its probability for one ticket."""

    category: str
    probability: float


def top_categories(
    page: Sequence[Ticket], models: Sequence[LoadedModel]
) -> dict[str, list[Alternative]]:
    """Each ticket's top 3 by ticket id; tickets of versions not loaded are left out."""
    by_version = {model.version: model for model in models}
    grouped: dict[str, list[Ticket]] = defaultdict(list)
    for ticket in page:
        if ticket.model_version in by_version:
            grouped[ticket.model_version].append(ticket)
    found: dict[str, list[Alternative]] = {}
    for version, group in grouped.items():
        probabilities = by_version[version].predictor.probabilities([t.text for t in group])
        for ticket, scores in zip(group, probabilities, strict=True):
            best = sorted(scores.items(), key=lambda item: item[1], reverse=True)[:TOP]
            found[ticket.id] = [Alternative(category=c, probability=p) for c, p in best]
    return found
