"""The gates: pure verdicts from a candidate's and the champion's evaluations.

Each limit is checked with MLflow's own ``validate_evaluation_results`` and a
``MetricThreshold`` on the gate's metric; drops and ratios are computed here first
because ``MetricThreshold`` only expresses required improvements, not allowed drops.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import mlflow
from mlflow.models import EvaluationResult, MetricThreshold
from mlflow.models.evaluation.validation import ModelValidationFailedException

from registry.gate_config import GateConfig, GateMode
from registry.metrics import ModelEvaluation

NO_CHAMPION = "no champion: nothing to compare with"


@dataclass(frozen=True)
class GateResult:
    """One gate's outcome; ``passed`` is None when the gate is disabled."""

    name: str
    mode: str
    passed: bool | None
    observed: float | None
    limit: str
    note: str = ""

    @property
    def blocking(self) -> bool:
        """True when this gate refuses the candidate."""
        return self.mode == GateMode.ENABLED and self.passed is False

    def describe(self) -> str:
        observed = "n/a" if self.observed is None else f"{self.observed:.4g}"
        text = f"{self.name}: observed {observed}, limit {self.limit}"
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True)
class GateReport:
    """All gate results for one candidate; it passes when no enabled gate failed."""

    candidate: str
    champion: str | None
    results: list[GateResult]

    @property
    def passed(self) -> bool:
        return not any(r.blocking for r in self.results)

    @property
    def failures(self) -> list[GateResult]:
        return [r for r in self.results if r.blocking]

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "champion": self.champion,
            "passed": self.passed,
            "results": [asdict(r) for r in self.results],
        }


def _within(metric: str, value: float, limit: float, *, greater_is_better: bool) -> bool:
    """MLflow's threshold check on one metric value."""
    result = EvaluationResult(metrics={metric: value}, artifacts={})
    thresholds = {metric: MetricThreshold(threshold=limit, greater_is_better=greater_is_better)}
    # MLflow narrates every check at INFO; the gate report says it once.
    logger = logging.getLogger("mlflow.models.evaluation.validation")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        mlflow.validate_evaluation_results(thresholds, result)
        return True
    except ModelValidationFailedException:
        return False
    finally:
        logger.setLevel(level)


def evaluate_gates(
    *,
    candidate: ModelEvaluation,
    champion: ModelEvaluation | None,
    config: GateConfig,
) -> GateReport:
    """Run every gate in ``config`` on ``candidate`` against ``champion`` (or none)."""
    g = config.gates
    results: list[GateResult] = []

    def add(
        name: str,
        mode: GateMode,
        check: tuple[float | None, float, bool] | None,
        limit: str,
        note: str = "",
    ) -> None:
        """``check`` is (observed, limit, greater_is_better); None means nothing to compare."""
        if mode == GateMode.DISABLED:
            results.append(GateResult(name, mode.value, None, None, limit, "disabled"))
            return
        value = None if check is None else check[0]
        if check is None or value is None:
            results.append(GateResult(name, mode.value, True, None, limit, note))
            return
        _, bound, greater = check
        passed = _within(name, float(value), bound, greater_is_better=greater)
        results.append(GateResult(name, mode.value, passed, float(value), limit, note))

    add(
        "min_accuracy",
        g.min_accuracy.mode,
        (candidate.accuracy, g.min_accuracy.threshold, True),
        f">= {g.min_accuracy.threshold:g}",
    )

    if champion is None:
        for name, gate in (
            ("accuracy_drop", g.accuracy_drop),
            ("macro_f1_drop", g.macro_f1_drop),
            ("category_recall_drop", g.category_recall_drop),
        ):
            add(name, gate.mode, None, f"<= {gate.max:g}", NO_CHAMPION)
    else:
        add(
            "accuracy_drop",
            g.accuracy_drop.mode,
            (champion.accuracy - candidate.accuracy, g.accuracy_drop.max, False),
            f"<= {g.accuracy_drop.max:g}",
            f"champion v{champion.version} {champion.accuracy:.4f}",
        )
        add(
            "macro_f1_drop",
            g.macro_f1_drop.mode,
            (champion.macro_f1 - candidate.macro_f1, g.macro_f1_drop.max, False),
            f"<= {g.macro_f1_drop.max:g}",
            f"champion v{champion.version} {champion.macro_f1:.4f}",
        )
        drops = {
            category: recall - candidate.recall_by_category.get(category, 0.0)
            for category, recall in champion.recall_by_category.items()
        }
        worst = max(drops, key=lambda c: drops[c]) if drops else None
        add(
            "category_recall_drop",
            g.category_recall_drop.mode,
            (drops[worst] if worst else 0.0, g.category_recall_drop.max, False),
            f"<= {g.category_recall_drop.max:g}",
            f"worst category: {worst}" if worst else "",
        )

    add("max_ece", g.max_ece.mode, (candidate.ece, g.max_ece.max, False), f"<= {g.max_ece.max:g}")

    precision_note = (
        f"confidence >= {candidate.auto_apply_threshold:g} covers "
        f"{candidate.auto_apply_coverage:.1%} of tickets"
    )
    if candidate.auto_apply_precision is None:
        precision_note = (
            f"no ticket reaches confidence {candidate.auto_apply_threshold:g}; nothing auto-applied"
        )
    add(
        "auto_apply_precision",
        g.auto_apply_precision.mode,
        (candidate.auto_apply_precision, g.auto_apply_precision.min, True),
        f">= {g.auto_apply_precision.min:g}",
        precision_note,
    )

    if champion is None:
        add("latency_p95", g.latency_p95.mode, None, f"x{g.latency_p95.max_ratio:g}", NO_CHAMPION)
        add("model_size", g.model_size.mode, None, f"x{g.model_size.max_ratio:g}", NO_CHAMPION)
    else:
        latency_limit = champion.latency_p95_ms * g.latency_p95.max_ratio + g.latency_p95.slack_ms
        add(
            "latency_p95",
            g.latency_p95.mode,
            (candidate.latency_p95_ms, latency_limit, False),
            f"<= {latency_limit:.3g} ms",
            f"champion v{champion.version} {champion.latency_p95_ms:.3g} ms",
        )
        size_limit = champion.size_bytes * g.model_size.max_ratio
        add(
            "model_size",
            g.model_size.mode,
            (float(candidate.size_bytes), size_limit, False),
            f"<= {size_limit:.0f} bytes",
            f"champion v{champion.version} {champion.size_bytes} bytes",
        )

    return GateReport(
        candidate=candidate.version,
        champion=None if champion is None else champion.version,
        results=results,
    )
