"""The verdict of one look at a rollout step: advance, hold or abort, and why.

Pure: it reads a :class:`StepEvidence` (what the canary and Production did in the same time
window) and a :class:`RolloutPolicy`, and nothing else, so every rule is unit-tested on
constructed evidence.

Signal, not noise:
- errors and accuracy are two-sample one-sided tests (Fisher's exact test: small counts,
  shares near 0 or 1), latency a one-sided test of the share of canary answers slower than
  Production's p95 (Wilson, ``boltit.registry.behaviour.share.Share``: under "no change"
  that share is 5 %);
- the loop looks at a step several times, and three signals are tested at each look, so
  each test runs at ``(1 - confidence) / (3 * looks)`` (Bonferroni): the chance that noise
  aborts a step stays under ``1 - confidence``;
- a step advances only with ``min_rows`` canary tickets behind it and its interval served;
- a latency regression also needs the runbook's absolute budget broken (p95 > 3 s);
- an accuracy drop also needs to exceed ``max_accuracy_drop``, the gates' tolerance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from scipy.stats import fisher_exact

from boltit.registry.behaviour.share import Share

# Signals tested at each look: errors, accuracy, latency.
_SIGNALS = 3
# Under "no change", this share of canary answers is slower than Production's p95.
_TAIL = 0.05


class Action(StrEnum):
    advance = "advance"
    hold = "hold"
    abort = "abort"


@dataclass(frozen=True)
class RolloutPolicy:
    """What a step must show to advance, and how sure an abort must be.

    ``max_error_rate`` and ``latency_budget_ms`` are the runbook's alarms (error rate 5 %,
    p95 3 s); ``looks`` is how often the loop judges a step within its interval.
    """

    interval_seconds: float
    min_rows: int = 50
    min_labelled: int = 30
    confidence: float = 0.95
    looks: int = 5
    max_error_rate: float = 0.05
    latency_budget_ms: float = 3000.0
    max_accuracy_drop: float = 0.02

    @property
    def alpha(self) -> float:
        """Each test's level: the family of signals and looks shares ``1 - confidence``."""
        return (1.0 - self.confidence) / (_SIGNALS * max(1, self.looks))


@dataclass(frozen=True)
class StepEvidence:
    """What the canary and Production did in one window of one step.

    Canary rows count every ticket routed to the challenger; ``canary_errors`` of them were
    answered by Production because the challenger raised (``served_by="canary-fallback"``).
    ``production_errors`` are Production's failed requests (``prediction_error``).
    """

    step_index: int
    percent: float
    elapsed_seconds: float
    canary_rows: int
    canary_errors: int
    production_rows: int
    production_errors: int
    canary_p95_ms: float | None = None
    production_p95_ms: float | None = None
    canary_slower: int = 0
    """Canary answers slower than Production's p95 in the window."""
    canary_labelled: int = 0
    canary_correct: int = 0
    production_labelled: int = 0
    production_correct: int = 0
    canary_mean_confidence: float | None = None
    production_mean_confidence: float | None = None

    @property
    def canary_answered(self) -> int:
        return self.canary_rows - self.canary_errors

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    """The action, the one-line reason, and the test behind an abort (signal and p-value)."""

    action: Action
    reason: str
    signal: str | None = None
    p_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "reason": self.reason,
            "signal": self.signal,
            "p_value": self.p_value,
        }


def _greater(bad_a: int, total_a: int, bad_b: int, total_b: int) -> float:
    """One-sided p-value that side a's share of bad outcomes exceeds side b's."""
    table = [[bad_a, total_a - bad_a], [bad_b, total_b - bad_b]]
    return float(fisher_exact(table, alternative="greater")[1])


def _share(bad: int, total: int) -> str:
    return f"{bad}/{total} ({bad / total:.1%})" if total else "0/0"


def _error_regression(evidence: StepEvidence, policy: RolloutPolicy) -> Verdict | None:
    n, errors = evidence.canary_rows, evidence.canary_errors
    if n == 0 or errors == 0:
        return None
    level = 1.0 - policy.alpha
    sure = f"{100 * level:.3g}% sure"
    production_total = evidence.production_rows + evidence.production_errors
    if production_total:
        p = _greater(errors, n, evidence.production_errors, production_total)
        if p < policy.alpha:
            return Verdict(
                Action.abort,
                f"error rate regressed: canary {_share(errors, n)} vs Production "
                f"{_share(evidence.production_errors, production_total)}, one-sided Fisher "
                f"p = {p:.3g} < {policy.alpha:.3g} ({sure})",
                "error_rate",
                p,
            )
    share = Share(errors, n, level)
    if share.clearly_above(policy.max_error_rate):
        low = share.interval[0] if share.interval else 0.0
        return Verdict(
            Action.abort,
            f"error rate {_share(errors, n)} is above the runbook's {policy.max_error_rate:.0%}: "
            f"its {100 * level:.3g}% Wilson interval starts at {low:.1%}",
            "error_rate",
            None,
        )
    return None


def _accuracy_regression(evidence: StepEvidence, policy: RolloutPolicy) -> Verdict | None:
    canary_n, production_n = evidence.canary_labelled, evidence.production_labelled
    if canary_n < policy.min_labelled or production_n < policy.min_labelled:
        return None
    canary_wrong = canary_n - evidence.canary_correct
    production_wrong = production_n - evidence.production_correct
    drop = evidence.production_correct / production_n - evidence.canary_correct / canary_n
    if drop <= policy.max_accuracy_drop:
        return None
    p = _greater(canary_wrong, canary_n, production_wrong, production_n)
    if p >= policy.alpha:
        return None
    return Verdict(
        Action.abort,
        f"accuracy regressed: canary {evidence.canary_correct}/{canary_n} right vs Production "
        f"{evidence.production_correct}/{production_n} on labelled tickets, a drop of "
        f"{drop:.3f} > {policy.max_accuracy_drop:g}, one-sided Fisher p = {p:.3g} < "
        f"{policy.alpha:.3g} ({100 * (1 - policy.alpha):.3g}% sure)",
        "accuracy",
        p,
    )


def _latency_regression(evidence: StepEvidence, policy: RolloutPolicy) -> Verdict | None:
    canary_p95, production_p95 = evidence.canary_p95_ms, evidence.production_p95_ms
    answered = evidence.canary_answered
    if canary_p95 is None or production_p95 is None or answered == 0:
        return None
    if canary_p95 <= policy.latency_budget_ms:
        return None  # slower but within the runbook's budget is not a regression
    level = 1.0 - policy.alpha
    share = Share(evidence.canary_slower, answered, level)
    if not share.clearly_above(_TAIL):
        return None
    low = share.interval[0] if share.interval else 0.0
    return Verdict(
        Action.abort,
        f"latency regressed: canary p95 {canary_p95:.0f} ms > budget "
        f"{policy.latency_budget_ms:.0f} ms, and {_share(evidence.canary_slower, answered)} of "
        f"its answers were slower than Production's p95 {production_p95:.0f} ms "
        f"({100 * level:.3g}% Wilson interval from {low:.1%}, above the {_TAIL:.0%} of no change)",
        "latency",
        None,
    )


def decide(evidence: StepEvidence, policy: RolloutPolicy) -> Verdict:
    """Abort on a significant regression; advance once the step served its interval with
    ``min_rows`` canary tickets; hold otherwise."""
    for check in (_error_regression, _accuracy_regression, _latency_regression):
        verdict = check(evidence, policy)
        if verdict is not None:
            return verdict
    waiting: list[str] = []
    if evidence.canary_rows < policy.min_rows:
        waiting.append(f"{evidence.canary_rows}/{policy.min_rows} canary tickets")
    if evidence.elapsed_seconds < policy.interval_seconds:
        waiting.append(
            f"{evidence.elapsed_seconds:.0f}/{policy.interval_seconds:.0f} s of the interval"
        )
    if waiting:
        return Verdict(Action.hold, "no regression so far; waiting for " + " and ".join(waiting))
    labelled = (
        f", accuracy {evidence.canary_correct}/{evidence.canary_labelled} labelled"
        if evidence.canary_labelled
        else ""
    )
    return Verdict(
        Action.advance,
        f"no significant regression over {evidence.canary_rows} canary tickets: errors "
        f"{_share(evidence.canary_errors, evidence.canary_rows)}{labelled}",
    )
