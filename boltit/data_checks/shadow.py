"""What shadow scoring left in the ticket store: the challenger's answer beside the champion's.

The service stores a challenger's answer to each ticket Production served
(``shadow_predictions``, ``boltit.serving.ticket_writer.ShadowScorer``); this reads them back
paired with the ticket, for ``boltit shadow report`` and the ``shadow_*`` validation gates.
Counts and per-row arrays only: the intervals are the readers' (registry's Wilson share and
paired bootstrap), so every figure is judged the same way as the other gates.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from boltit.core.evaluation import feedback_outcomes
from boltit.core.schema import ShadowPrediction, Ticket

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class CategoryDisagreement:
    """Tickets the champion put in ``category`` and how many the challenger put elsewhere."""

    category: str
    rows: int
    disagreed: int
    # The challenger's most frequent other answer for these tickets, and how often.
    instead: str | None
    instead_rows: int

    @property
    def share(self) -> float:
        return self.disagreed / self.rows if self.rows else 0.0


@dataclass(frozen=True)
class ShadowEvidence:
    """Challenger ``version`` against the champion on the tickets both answered.

    One row per ticket (the newest shadow answer of ``version``). The ``labelled_*`` arrays
    hold the tickets that later got an authenticated agent label, aligned row by row, for a
    paired comparison of the two versions' accuracy.
    """

    version: str | None
    since: datetime
    champions: dict[str, int]
    rows: int
    agreed: int
    categories: list[CategoryDisagreement]
    champion_confidence: np.ndarray
    challenger_confidence: np.ndarray
    labelled_truth: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    labelled_champion: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    labelled_challenger: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))

    @property
    def disagreed(self) -> int:
        return self.rows - self.agreed

    @property
    def labelled(self) -> int:
        return len(self.labelled_truth)

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.rows if self.rows else None

    def accuracy(self, who: str) -> float | None:
        """Accuracy of ``champion`` or ``challenger`` on the labelled shadowed tickets."""
        if not self.labelled:
            return None
        predicted = self.labelled_champion if who == "champion" else self.labelled_challenger
        return float((predicted == self.labelled_truth).mean())

    def quantiles(self, who: str) -> dict[str, float]:
        """Confidence quantiles (``q05`` … ``q95``) of ``champion`` or ``challenger``."""
        values = self.champion_confidence if who == "champion" else self.challenger_confidence
        if not len(values):
            return {}
        points = np.quantile(values, QUANTILES)
        return {f"q{round(q * 100):02d}": float(v) for q, v in zip(QUANTILES, points, strict=True)}

    def to_dict(self) -> dict[str, Any]:
        """The evidence as recorded beside a verdict (counts and figures, no ticket text)."""
        return {
            "version": self.version,
            "since": self.since.isoformat(),
            "champions": self.champions,
            "rows": self.rows,
            "agreed": self.agreed,
            "agreement": self.agreement,
            "labelled": self.labelled,
            "champion_accuracy": self.accuracy("champion"),
            "challenger_accuracy": self.accuracy("challenger"),
            "confidence": {
                "champion": self.quantiles("champion"),
                "challenger": self.quantiles("challenger"),
            },
            "categories": [
                {
                    "category": c.category,
                    "rows": c.rows,
                    "disagreed": c.disagreed,
                    "instead": c.instead,
                    "instead_rows": c.instead_rows,
                }
                for c in self.categories
            ],
        }


def latest_shadow_version(session: Session, *, since: datetime) -> str | None:
    """The version of the newest shadow answer since ``since``, or None without any."""
    return session.scalar(
        select(ShadowPrediction.model_version)
        .where(ShadowPrediction.created_at >= since)
        .order_by(ShadowPrediction.created_at.desc(), ShadowPrediction.id.desc())
        .limit(1)
    )


def shadow_evidence(
    session: Session,
    *,
    since: datetime,
    version: str | None = None,
    champion: str | None = None,
    until: datetime | None = None,
) -> ShadowEvidence:
    """Shadow answers of ``version`` (default: the newest shadowed version) since ``since``.

    Args:
        since: Tickets created from then on.
        version: The challenger; None picks the version of the newest shadow answer.
        champion: Keep only tickets this version served (validation compares with the
            current Production version); None keeps every champion, counted in ``champions``.
        until: Tickets created before then; None: up to now.
    """
    if version is None:
        version = latest_shadow_version(session, since=since)
    newest = (
        select(func.max(ShadowPrediction.id))
        .where(ShadowPrediction.model_version == str(version))
        .group_by(ShadowPrediction.ticket_id)
    )
    query = (
        select(
            Ticket.model_version,
            Ticket.category,
            Ticket.confidence,
            ShadowPrediction.category,
            ShadowPrediction.confidence,
            Ticket.feedback_category,
            Ticket.feedback_client,
        )
        .join(ShadowPrediction, ShadowPrediction.ticket_id == Ticket.id)
        .where(ShadowPrediction.id.in_(newest))
        .where(Ticket.created_at >= since)
        # A ticket the challenger itself served (canary) has no champion answer to compare.
        .where(Ticket.model_version != str(version))
        .order_by(Ticket.created_at, Ticket.id)
    )
    if until is not None:
        query = query.where(Ticket.created_at < until)
    if champion is not None:
        query = query.where(Ticket.model_version == str(champion))
    rows = session.execute(query).all() if version is not None else []
    served = np.array([r[1] for r in rows], dtype=object)
    shadowed = np.array([r[3] for r in rows], dtype=object)
    # Only a label from an authenticated client is ground truth (as in ``live_accuracy``).
    labels = [r[5] if r[6] is not None else None for r in rows]
    labelled, _ = feedback_outcomes(served, labels)
    truth = np.array(labels, dtype=object)
    return ShadowEvidence(
        version=version,
        since=since,
        champions=dict(Counter(str(r[0]) for r in rows)),
        rows=len(rows),
        agreed=int((served == shadowed).sum()),
        categories=_disagreement(served, shadowed),
        champion_confidence=np.array([r[2] for r in rows], dtype=float),
        challenger_confidence=np.array([r[4] for r in rows], dtype=float),
        labelled_truth=truth[labelled],
        labelled_champion=served[labelled],
        labelled_challenger=shadowed[labelled],
    )


def _disagreement(served: np.ndarray, shadowed: np.ndarray) -> list[CategoryDisagreement]:
    """Per champion category, most disagreed share first."""
    result = []
    for category in sorted(set(served.tolist())):
        mask = served == category
        other = Counter(shadowed[mask & (shadowed != category)].tolist())
        instead, instead_rows = other.most_common(1)[0] if other else (None, 0)
        result.append(
            CategoryDisagreement(
                category=str(category),
                rows=int(mask.sum()),
                disagreed=int(sum(other.values())),
                instead=instead,
                instead_rows=int(instead_rows),
            )
        )
    return sorted(result, key=lambda c: (-c.share, -c.rows, c.category))
