"""A share of failing cases with its interval: how sure a behavioural gate is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scipy.stats import binomtest


@dataclass(frozen=True)
class Share:
    """``failed`` of ``total`` cases, with a Wilson score interval at ``confidence``.

    Wilson rather than the normal approximation: the shares judged are near 0 and the
    counts small, where the normal interval collapses to a point (0 of 300 is not "0").
    """

    failed: int
    total: int
    confidence: float

    @property
    def observed(self) -> float | None:
        return self.failed / self.total if self.total else None

    @property
    def interval(self) -> tuple[float, float] | None:
        if not self.total:
            return None
        ci = binomtest(self.failed, self.total).proportion_ci(self.confidence, method="wilson")
        return float(ci.low), float(ci.high)

    def clearly_above(self, limit: float) -> bool:
        """The whole interval lies above ``limit``: more failures than noise explains."""
        interval = self.interval
        return interval is not None and interval[0] > limit

    def to_dict(self) -> dict[str, Any]:
        return {
            "failed": self.failed,
            "total": self.total,
            "observed": self.observed,
            "interval": self.interval,
            "confidence": self.confidence,
        }
