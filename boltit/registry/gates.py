"""The gates: pure verdicts from a candidate's and the champion's evaluations.

Each limit is checked with MLflow's own ``validate_evaluation_results`` and a
``MetricThreshold`` on the gate's metric; drops and ratios are computed here first
because ``MetricThreshold`` only expresses required improvements, not allowed drops.

Drop gates are paired (``boltit.registry.paired``): a drop fails only when its bootstrap interval
lies above 0 *and* the observed drop exceeds the gate's tolerance. The latency gate holds
the candidate to the service's single-predict budget, and to a ratio of the champion's p95
only above a floor, both timed in one process (``boltit.registry.scoring.score_versions``).
The behavioural gates judge the counts ``boltit.registry.behaviour`` measured, by the share
of failing cases and its interval.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import mlflow
import numpy as np
from mlflow.models import EvaluationResult, MetricThreshold
from mlflow.models.evaluation.validation import ModelValidationFailedException

from boltit.core.errors import BadInputError
from boltit.data_checks.shadow import ShadowEvidence
from boltit.registry.behaviour import BehaviourEvidence
from boltit.registry.behaviour.share import Share
from boltit.registry.gate_config import GateConfig, GateMode, MaxDropGate
from boltit.registry.gate_evidence import ModelEvaluation
from boltit.registry.paired import Drop, PairedDrops, paired_drops

NO_CHAMPION = "no champion: nothing to compare with"
NO_BASELINE = "no baseline predictions for these rows: nothing to compare with"
NO_BEHAVIOUR = "not run"


@dataclass(frozen=True)
class GateResult:
    """One gate's outcome; ``passed`` is None when the gate is disabled.

    ``interval`` is the bootstrap interval of a drop (``level`` its coverage), when the
    gate judged one.
    """

    name: str
    mode: str
    passed: bool | None
    observed: float | None
    limit: str
    note: str = ""
    interval: tuple[float, float] | None = None
    level: float | None = None

    @property
    def blocking(self) -> bool:
        """True when this gate refuses the candidate."""
        return self.mode == GateMode.ENABLED and self.passed is False

    @property
    def observed_text(self) -> str:
        """``0.031 [95% CI 0.019, 0.043]``, or ``n/a``."""
        if self.observed is None:
            return "n/a"
        text = f"{self.observed:.4g}"
        if self.interval is not None:
            level = f"{100 * (self.level or 0.95):.4g}%"
            text += f" [{level} CI {self.interval[0]:.4g}, {self.interval[1]:.4g}]"
        return text

    def describe(self) -> str:
        text = f"{self.name}: observed {self.observed_text}, limit: {self.limit}"
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


def _drop_result(name: str, gate: MaxDropGate, drop: Drop, note: str) -> GateResult:
    """Fails only when the drop is significant and larger than the tolerance."""
    limit = f"fails when > {gate.max:g} and CI excludes 0"
    if gate.mode == GateMode.DISABLED:
        return GateResult(name, gate.mode.value, None, None, limit, "disabled")
    within_tolerance = _within(name, drop.observed, gate.max, greater_is_better=False)
    return GateResult(
        name,
        gate.mode.value,
        within_tolerance or not drop.significant,
        drop.observed,
        limit,
        note,
        interval=(drop.low, drop.high),
        level=drop.level,
    )


def _paired(
    candidate: ModelEvaluation, champion: ModelEvaluation, config: GateConfig
) -> PairedDrops:
    if not (candidate.has_rows and champion.has_rows) or not (
        len(candidate.truth) == len(champion.truth) and (candidate.truth == champion.truth).all()
    ):
        raise BadInputError(
            f"v{candidate.version} and champion v{champion.version} were not scored on the "
            "same evaluation rows; the drop gates compare them row by row"
        )
    return paired_drops(
        truth=candidate.truth,
        champion=champion.predicted,
        candidate=candidate.predicted,
        resamples=config.bootstrap.resamples,
        seed=config.bootstrap.seed,
        confidence=config.bootstrap.confidence,
    )


def _category_recall_result(
    gate: MaxDropGate, drops: dict[str, Drop], champion: ModelEvaluation
) -> GateResult:
    """The failing category with the largest drop, else the largest drop, is reported."""
    results = {
        category: _drop_result("category_recall_drop", gate, drop, "")
        for category, drop in drops.items()
    }
    failing = [c for c, r in results.items() if r.passed is False]
    pool = failing or list(results)
    worst = max(pool, key=lambda c: drops[c].observed)
    others = f"; {len(failing) - 1} more failing" if len(failing) > 1 else ""
    note = (
        f"worst category: {worst}, champion v{champion.version} recall "
        f"{champion.recall_by_category.get(worst, 0.0):.4f}; interval corrected for "
        f"{len(drops)} categories{others}"
    )
    chosen = results[worst]
    return GateResult(
        chosen.name,
        chosen.mode,
        chosen.passed,
        chosen.observed,
        chosen.limit,
        note if chosen.passed is not None else chosen.note,
        interval=chosen.interval,
        level=chosen.level,
    )


def _value_result(
    name: str,
    mode: GateMode,
    check: tuple[float | None, float, bool] | None,
    limit: str,
    note: str = "",
) -> GateResult:
    """``check`` is (observed, limit, greater_is_better); None means nothing to compare."""
    if mode == GateMode.DISABLED:
        return GateResult(name, mode.value, None, None, limit, "disabled")
    value = None if check is None else check[0]
    if check is None or value is None:
        return GateResult(name, mode.value, True, None, limit, note)
    _, bound, greater = check
    passed = _within(name, float(value), bound, greater_is_better=greater)
    return GateResult(name, mode.value, passed, float(value), limit, note)


def _drop_results(
    candidate: ModelEvaluation, champion: ModelEvaluation | None, config: GateConfig
) -> list[GateResult]:
    """The accuracy, macro F1 and category recall drops against the champion."""
    g = config.gates
    drop_gates = {
        "accuracy_drop": g.accuracy_drop,
        "macro_f1_drop": g.macro_f1_drop,
        "category_recall_drop": g.category_recall_drop,
    }
    # No pairing without a champion, nor when no drop gate would read it (it resamples).
    if champion is None or all(gate.mode == GateMode.DISABLED for gate in drop_gates.values()):
        note = NO_CHAMPION if champion is None else ""
        return [
            _value_result(
                name, gate.mode, None, f"fails when > {gate.max:g} and CI excludes 0", note
            )
            for name, gate in drop_gates.items()
        ]
    drops = _paired(candidate, champion, config)
    champion_note = f"champion v{champion.version}"
    return [
        _drop_result(
            "accuracy_drop",
            g.accuracy_drop,
            drops.accuracy,
            f"{champion_note} {champion.accuracy:.4f}, {drops.rows} paired rows",
        ),
        _drop_result(
            "macro_f1_drop",
            g.macro_f1_drop,
            drops.macro_f1,
            f"{champion_note} {champion.macro_f1:.4f}",
        ),
        _category_recall_result(g.category_recall_drop, drops.recall, champion),
    ]


def _auto_apply_result(candidate: ModelEvaluation, config: GateConfig) -> GateResult:
    gate = config.gates.auto_apply_precision
    note = (
        f"confidence >= {candidate.auto_apply_threshold:g} covers "
        f"{candidate.auto_apply_coverage:.1%} of tickets"
    )
    if candidate.auto_apply_precision is None:
        note = (
            f"no ticket reaches confidence {candidate.auto_apply_threshold:g}; nothing auto-applied"
        )
    return _value_result(
        "auto_apply_precision",
        gate.mode,
        (candidate.auto_apply_precision, gate.min, True),
        f">= {gate.min:g}",
        note,
    )


def _size_result(
    candidate: ModelEvaluation, champion: ModelEvaluation | None, config: GateConfig
) -> GateResult:
    """Within ``max_bytes`` always; within ``max_ratio`` of the champion only above the floor."""
    size = config.gates.model_size
    size_limit = float(size.max_bytes)
    note = NO_CHAMPION
    if champion is not None:
        note = f"champion v{champion.version} {champion.size_bytes} bytes"
        if candidate.size_bytes > size.floor_bytes:
            size_limit = min(size_limit, champion.size_bytes * size.max_ratio)
        else:
            note += f"; below the {size.floor_bytes} bytes floor, no ratio"
    return _value_result(
        "model_size",
        size.mode,
        (float(candidate.size_bytes), size_limit, False),
        f"<= {size.max_bytes} bytes, and <= x{size.max_ratio:g} the champion's above "
        f"{size.floor_bytes} bytes",
        note,
    )


def evaluate_gates(
    *,
    candidate: ModelEvaluation,
    champion: ModelEvaluation | None,
    config: GateConfig,
    latency_budget_ms: float,
    baseline: np.ndarray | None = None,
    behaviour: BehaviourEvidence | None = None,
    category_rows: dict[str, int] | None = None,
    shadow: ShadowEvidence | None = None,
) -> GateReport:
    """Run every gate in ``config`` on ``candidate`` against ``champion`` (or none).

    Args:
        candidate: The version under validation, scored with its per-row predictions.
        champion: The Production version scored on the same rows, or None.
        config: Gate modes and limits.
        latency_budget_ms: The service's single-predict budget
            (``settings.single_predict_budget_ms``), the latency gate's absolute limit.
        baseline: The plain baseline's predicted category per row of ``candidate``
            (``beats_baseline``), or None when unknown for these rows.
        behaviour: The candidate's behavioural checks (``boltit.registry.behaviour``);
            None leaves the behavioural gates out of the report (nothing was measured).
        category_rows: Training rows per category of the candidate (``min_class_rows``),
            or None when its run logged none.
        shadow: The candidate's shadow answers beside the champion's on live tickets
            (``shadow_*`` gates); None leaves those gates out (nothing was read).

    Raises:
        BadInputError: the two versions were not scored on the same rows.
    """
    g = config.gates
    results = [
        _value_result(
            "min_accuracy",
            g.min_accuracy.mode,
            (candidate.accuracy, g.min_accuracy.threshold, True),
            f">= {g.min_accuracy.threshold:g}",
        ),
        *_drop_results(candidate, champion, config),
        _value_result(
            "max_ece",
            g.max_ece.mode,
            (candidate.ece, g.max_ece.max, False),
            f"<= {g.max_ece.max:g}",
        ),
        _auto_apply_result(candidate, config),
        _latency_result(candidate, champion, config, latency_budget_ms),
        _size_result(candidate, champion, config),
        _baseline_result(candidate, baseline, config),
        _class_rows_result(category_rows, config),
    ]
    if behaviour is not None:
        results.extend(_behaviour_results(behaviour, config))
    if shadow is not None:
        results.extend(shadow_results(shadow, config))
    return GateReport(
        candidate=candidate.version,
        champion=None if champion is None else champion.version,
        results=results,
    )


def _latency_result(
    candidate: ModelEvaluation,
    champion: ModelEvaluation | None,
    config: GateConfig,
    budget_ms: float,
) -> GateResult:
    """Within the budget always; within ``max_ratio`` of the champion only above the floor.

    Below the floor a ratio measures the scheduler, not the model: 0.6 ms vs 0.4 ms is
    1.5x and means nothing to a service with a 50 ms budget.
    """
    gate = config.gates.latency_p95
    limit = (
        f"<= {budget_ms:g} ms budget, and <= x{gate.max_ratio:g} the champion's p95 "
        f"when above {gate.floor_ms:g} ms"
    )
    if gate.mode == GateMode.DISABLED:
        return GateResult("latency_p95", gate.mode.value, None, None, limit, "disabled")
    p95 = candidate.latency_p95_ms
    passed = _within("latency_p95", p95, budget_ms, greater_is_better=False)
    if champion is None:
        note = f"{NO_CHAMPION}; budget only"
    elif p95 <= gate.floor_ms:
        note = (
            f"champion v{champion.version} {champion.latency_p95_ms:.3g} ms; "
            f"below the {gate.floor_ms:g} ms floor, no ratio"
        )
    else:
        ratio_limit = champion.latency_p95_ms * gate.max_ratio
        passed = passed and _within("latency_p95", p95, ratio_limit, greater_is_better=False)
        note = (
            f"champion v{champion.version} {champion.latency_p95_ms:.3g} ms, "
            f"ratio limit {ratio_limit:.3g} ms"
        )
    return GateResult("latency_p95", gate.mode.value, passed, p95, limit, note)


def _baseline_result(
    candidate: ModelEvaluation, baseline: np.ndarray | None, config: GateConfig
) -> GateResult:
    """Fails when the plain baseline beats the candidate by more than ``max``, significantly.

    The same paired bootstrap as the drop gates, with the baseline in the champion's seat.
    """
    gate = config.gates.beats_baseline
    limit = f"fails when > {gate.max:g} and CI excludes 0"
    if gate.mode == GateMode.DISABLED:
        return GateResult("beats_baseline", gate.mode.value, None, None, limit, "disabled")
    if baseline is None or not candidate.has_rows or len(baseline) != candidate.rows:
        return GateResult("beats_baseline", gate.mode.value, True, None, limit, NO_BASELINE)
    drops = paired_drops(
        truth=candidate.truth,
        champion=baseline,
        candidate=candidate.predicted,
        resamples=config.bootstrap.resamples,
        seed=config.bootstrap.seed,
        confidence=config.bootstrap.confidence,
    )
    baseline_accuracy = candidate.accuracy + drops.accuracy.observed
    return _drop_result(
        "beats_baseline",
        MaxDropGate(mode=gate.mode, max=gate.max),
        drops.accuracy,
        f"baseline accuracy {baseline_accuracy:.4f}, candidate {candidate.accuracy:.4f} "
        f"(observed: baseline minus candidate)",
    )


def _class_rows_result(category_rows: dict[str, int] | None, config: GateConfig) -> GateResult:
    """Fails when the candidate learned a category from fewer than ``rows`` training rows."""
    gate = config.gates.min_class_rows
    limit = f">= {gate.rows} training rows per category"
    if gate.mode == GateMode.DISABLED:
        return GateResult("min_class_rows", gate.mode.value, None, None, limit, "disabled")
    if gate.rows == 0:
        return GateResult("min_class_rows", gate.mode.value, True, None, limit, "off (rows: 0)")
    if not category_rows:
        note = "no training rows per category logged for this version"
        return GateResult("min_class_rows", gate.mode.value, True, None, limit, note)
    rare = sorted((n, c) for c, n in category_rows.items() if n < gate.rows)
    fewest = float(min(category_rows.values()))
    if not rare:
        return GateResult("min_class_rows", gate.mode.value, True, fewest, limit)
    named = ", ".join(f"{c!r} ({n})" for n, c in rare[:20])
    more = f" and {len(rare) - 20} more" if len(rare) > 20 else ""
    note = (
        f"{len(rare)} categories learned from fewer rows: {named}{more}; retrain with "
        f"--min-class-rows {gate.rows} to fold them into a fallback category (--other-label)"
    )
    return GateResult("min_class_rows", gate.mode.value, False, fewest, limit, note)


def _share_result(
    name: str, mode: GateMode, share: Share | None, limit: str, note: str, *, failed: bool
) -> GateResult:
    """A behavioural gate's verdict; ``failed`` is the caller's rule applied to ``share``."""
    if mode == GateMode.DISABLED:
        return GateResult(name, mode.value, None, None, limit, "disabled")
    if share is None or share.total == 0:
        return GateResult(name, mode.value, True, None, limit, note)
    return GateResult(
        name,
        mode.value,
        not failed,
        share.observed,
        limit,
        note,
        interval=share.interval,
        level=share.confidence,
    )


def _behaviour_results(behaviour: BehaviourEvidence, config: GateConfig) -> list[GateResult]:
    """Invariance and directional fail only when the whole interval of the failing share lies
    above the limit (a few unlucky tickets are noise); minimum functionality fails when the
    observed share of misclassified canonical tickets is above its limit (each case is
    plain enough that any miss counts). An outcome is None only for a disabled gate."""
    g = config.gates
    invariance, directional, functionality = (
        behaviour.invariance,
        behaviour.directional,
        behaviour.functionality,
    )
    changed = invariance.changed if invariance else None
    violations = directional.violations if directional else None
    misclassified = functionality.failed if functionality else None
    max_changed = g.behaviour_invariance.max_changed
    direction = g.behaviour_directional
    max_failed = g.behaviour_minimum_functionality.max_failed
    return [
        _share_result(
            "behaviour_invariance",
            g.behaviour_invariance.mode,
            changed,
            f"share of perturbed tickets changing category: fails when CI > {max_changed:g}",
            invariance.summary() if invariance else NO_BEHAVIOUR,
            failed=changed is not None and changed.clearly_above(max_changed),
        ),
        _share_result(
            "behaviour_directional",
            direction.mode,
            violations,
            f"share of evidence edits moving P(category) the wrong way by more than "
            f"{direction.tolerance:g}: fails when CI > {direction.max_violations:g}",
            directional.summary() if directional else NO_BEHAVIOUR,
            failed=violations is not None and violations.clearly_above(direction.max_violations),
        ),
        _share_result(
            "behaviour_minimum_functionality",
            g.behaviour_minimum_functionality.mode,
            misclassified,
            f"share of canonical tickets misclassified <= {max_failed:g}",
            functionality.summary() if functionality else NO_BEHAVIOUR,
            failed=misclassified is not None and (misclassified.observed or 0.0) > max_failed,
        ),
    ]


def shadow_agreement_share(shadow: ShadowEvidence, confidence: float) -> Share:
    """Disagreements among the shadowed tickets, with their Wilson interval."""
    return Share(failed=shadow.disagreed, total=shadow.rows, confidence=confidence)


def shadow_accuracy_drops(shadow: ShadowEvidence, config: GateConfig) -> PairedDrops | None:
    """The paired champion-minus-candidate drops on labelled shadowed tickets, or None."""
    if not shadow.labelled:
        return None
    return paired_drops(
        truth=shadow.labelled_truth,
        champion=shadow.labelled_champion,
        candidate=shadow.labelled_challenger,
        resamples=config.bootstrap.resamples,
        seed=config.bootstrap.seed,
        confidence=config.bootstrap.confidence,
    )


def shadow_results(shadow: ShadowEvidence, config: GateConfig) -> list[GateResult]:
    """``shadow_agreement`` and ``shadow_accuracy_drop``; each is skipped (passed None, never
    blocking) below its ``min_rows``: too few live tickets say nothing either way."""
    agreement, drop = config.gates.shadow_agreement, config.gates.shadow_accuracy_drop
    champions = ", ".join(f"v{v}: {n}" for v, n in sorted(shadow.champions.items())) or "none"
    since = f"since {shadow.since:%Y-%m-%d}"
    results = []

    limit = f"agreement with the champion: fails when CI < {agreement.min:g}"
    if agreement.mode == GateMode.DISABLED:
        results.append(GateResult("shadow_agreement", "disabled", None, None, limit, "disabled"))
    elif shadow.rows < agreement.min_rows:
        note = f"skipped: {shadow.rows} shadow rows < min {agreement.min_rows} ({since})"
        results.append(
            GateResult("shadow_agreement", agreement.mode.value, None, None, limit, note)
        )
    else:
        share = shadow_agreement_share(shadow, config.bootstrap.confidence)
        low, high = share.interval or (0.0, 1.0)
        results.append(
            GateResult(
                "shadow_agreement",
                agreement.mode.value,
                not share.clearly_above(1.0 - agreement.min),
                shadow.agreement,
                limit,
                f"{shadow.agreed} of {shadow.rows} shadowed tickets agreed ({since}; "
                f"champions {champions})",
                interval=(1.0 - high, 1.0 - low),
                level=share.confidence,
            )
        )

    drop_limit = f"fails when > {drop.max:g} and CI excludes 0"
    if drop.mode == GateMode.DISABLED:
        results.append(
            GateResult("shadow_accuracy_drop", "disabled", None, None, drop_limit, "disabled")
        )
        return results
    drops = shadow_accuracy_drops(shadow, config) if shadow.labelled >= drop.min_rows else None
    if drops is None:
        note = (
            f"skipped: {shadow.labelled} labelled shadow rows < min {drop.min_rows} "
            f"(of {shadow.rows} shadowed, {since})"
        )
        results.append(
            GateResult("shadow_accuracy_drop", drop.mode.value, None, None, drop_limit, note)
        )
        return results
    champion_accuracy, candidate_accuracy = (
        shadow.accuracy("champion"),
        shadow.accuracy("challenger"),
    )
    note = (
        f"on {shadow.labelled} labelled shadowed tickets: champion accuracy "
        f"{champion_accuracy:.4f}, candidate {candidate_accuracy:.4f} ({since})"
    )
    results.append(
        _drop_result(
            "shadow_accuracy_drop", MaxDropGate(mode=drop.mode, max=drop.max), drops.accuracy, note
        )
    )
    return results
