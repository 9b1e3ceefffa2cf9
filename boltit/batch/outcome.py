"""A scored row as the service would answer it: the prediction plus the auto-apply decision.

The decision is serving's own function (``auto_apply_decision``), so a batch re-score of
history and the live service never disagree on which tickets would have been auto-applied.
Plain pandas in, pandas out: the local engine calls it per chunk, Spark per Arrow batch
(``mapInPandas``), on the executors.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pandas as pd

from boltit.serving.decision import auto_apply_decision


@dataclass(frozen=True)
class Decision:
    """What the auto-apply decision reads: the threshold and the persisted flag."""

    threshold: float
    enabled: bool
    model_version: str


def decided(ids: pd.Series, predictions: pd.DataFrame, decision: Decision) -> pd.DataFrame:
    """Output rows: id, category, priority, confidence, model_version, auto_applied, reason."""
    answers = [
        auto_apply_decision(
            confidence=float(c), threshold=decision.threshold, enabled=decision.enabled
        )
        for c in predictions["confidence"]
    ]
    priority = predictions["priority"]
    return pd.DataFrame(
        {
            ids.name: ids.to_numpy(),
            "category": predictions["category"].astype(str).to_numpy(),
            "priority": priority.where(priority.notna(), None).to_numpy(dtype=object),
            "confidence": predictions["confidence"].astype("float64").to_numpy(),
            "model_version": decision.model_version,
            "auto_applied": [a for a, _ in answers],
            "reason": [r for _, r in answers],
        }
    )


def decide_batches(
    batches: Iterable[pd.DataFrame], *, id_column: str, decision: Decision
) -> Iterator[pd.DataFrame]:
    """``decided`` over Spark's Arrow batches (columns: id, part, category, priority,
    confidence); ``part`` is kept so Spark can write each part to its own folder."""
    for batch in batches:
        rows = decided(batch[id_column], batch, decision)
        rows["part"] = batch["part"].to_numpy()
        yield rows
