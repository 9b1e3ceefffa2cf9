"""The shadow report: a challenger against the champion on live traffic, with intervals.

Figures come from ``boltit.data_checks.shadow`` (the store) and are judged with the gates'
own interval code (``boltit.registry.gates``), so ``boltit shadow report`` and ``validate``'s
``shadow_*`` gates can never disagree about the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from boltit.data_checks.shadow import ShadowEvidence
from boltit.registry.gate_config import GateConfig
from boltit.registry.gates import (
    GateResult,
    shadow_accuracy_drops,
    shadow_agreement_share,
    shadow_results,
)


@dataclass(frozen=True)
class ShadowReport:
    """The evidence, its intervals, and what the ``shadow_*`` gates would say of it."""

    evidence: ShadowEvidence
    agreement_interval: tuple[float, float] | None
    accuracy_drop: float | None
    accuracy_drop_interval: tuple[float, float] | None
    confidence: float
    gates: list[GateResult]

    def to_dict(self) -> dict[str, Any]:
        return self.evidence.to_dict() | {
            "agreement_interval": self.agreement_interval,
            "accuracy_drop": self.accuracy_drop,
            "accuracy_drop_interval": self.accuracy_drop_interval,
            "interval_confidence": self.confidence,
            "gates": [
                {"name": g.name, "passed": g.passed, "observed": g.observed, "note": g.note}
                for g in self.gates
            ],
        }


def shadow_report(evidence: ShadowEvidence, config: GateConfig) -> ShadowReport:
    """Agreement with its Wilson interval, the paired accuracy drop on labelled tickets."""
    confidence = config.bootstrap.confidence
    agreement_interval = None
    if evidence.rows:
        low, high = shadow_agreement_share(evidence, confidence).interval or (0.0, 1.0)
        agreement_interval = (1.0 - high, 1.0 - low)
    drops = shadow_accuracy_drops(evidence, config)
    return ShadowReport(
        evidence=evidence,
        agreement_interval=agreement_interval,
        accuracy_drop=None if drops is None else drops.accuracy.observed,
        accuracy_drop_interval=None if drops is None else (drops.accuracy.low, drops.accuracy.high),
        confidence=confidence,
        gates=shadow_results(evidence, config),
    )
