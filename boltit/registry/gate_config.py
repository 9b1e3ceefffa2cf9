"""Gates as data: the packaged ``gates.yaml`` merged with an optional override file."""

from __future__ import annotations

from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from boltit.core.errors import BadInputError


class GateMode(StrEnum):
    """``enabled`` refuses on failure, ``dry_run`` only reports, ``disabled`` skips."""

    ENABLED = "enabled"
    DRY_RUN = "dry_run"
    DISABLED = "disabled"


class _Gate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: GateMode = GateMode.ENABLED


class MinAccuracyGate(_Gate):
    threshold: float = Field(0.90, ge=0.0, le=1.0)


class MaxDropGate(_Gate):
    """A drop against the champion fails when it exceeds ``max`` *and* is significant."""

    max: float = Field(ge=0.0, le=1.0)


class BeatsBaselineGate(_Gate):
    """The candidate's accuracy against the plain TF-IDF + LinearSVC baseline's on the same
    rows: fails when it is lower by more than ``max`` *and* significantly (paired bootstrap)."""

    max: float = Field(default=0.0, ge=0.0, le=1.0)


class MinClassRowsGate(_Gate):
    """Every category the candidate learned had at least ``rows`` training rows (0: off).

    The same N as ``train --min-class-rows N``, which folds rarer categories into a
    fallback category; this gate refuses a version that kept them (e.g. trained with
    ``--allow-failing-data``), naming them."""

    rows: int = Field(default=2, ge=0)


class MaxEceGate(_Gate):
    max: float = Field(0.10, ge=0.0, le=1.0)


class AutoApplyPrecisionGate(_Gate):
    min: float = Field(0.90, ge=0.0, le=1.0)
    threshold: float | None = Field(None, ge=0.0, le=1.0)


class LatencyGate(_Gate):
    """p95 within the service's single-predict budget (a setting); above ``floor_ms`` also
    within ``max_ratio`` of the champion's p95 (timed in the same process, interleaved)."""

    max_ratio: float = Field(1.5, gt=0.0)
    floor_ms: float = Field(10.0, ge=0.0)


class SizeGate(_Gate):
    """Artifact bytes within ``max_bytes``; above ``floor_bytes`` also within ``max_ratio``
    of the champion's. The vocabulary grows with the training rows, so a ratio alone would
    refuse every retrain on more data."""

    max_ratio: float = Field(1.5, gt=0.0)
    floor_bytes: int = Field(100 * 1024 * 1024, ge=0)
    max_bytes: int = Field(500 * 1024 * 1024, gt=0)


class InvarianceGate(_Gate):
    """Share of perturbed evaluation tickets whose predicted category changed: fails when
    its whole interval lies above ``max_changed`` (``boltit.registry.behaviour``)."""

    max_changed: float = Field(default=0.05, ge=0.0, le=1.0)


class DirectionalGate(_Gate):
    """Share of evidence edits that moved a category's probability the wrong way by more
    than ``tolerance``: fails when its whole interval lies above ``max_violations``."""

    max_violations: float = Field(default=0.05, ge=0.0, le=1.0)
    tolerance: float = Field(default=0.01, ge=0.0, le=1.0)


class MinimumFunctionalityGate(_Gate):
    """Share of canonical tickets of known categories misclassified: fails above ``max_failed``."""

    max_failed: float = Field(default=0.10, ge=0.0, le=1.0)


class ShadowAgreementGate(_Gate):
    """Share of live tickets on which the candidate (scored in shadow) agreed with the
    champion: fails when its whole Wilson interval lies below ``min``. Skipped, neither
    passed nor failed, below ``min_rows`` shadowed tickets."""

    min: float = Field(default=0.80, ge=0.0, le=1.0)
    min_rows: int = Field(default=200, ge=1)


class ShadowAccuracyDropGate(_Gate):
    """Champion-minus-candidate accuracy on shadowed tickets that later got a label, paired
    like the drop gates. Skipped below ``min_rows`` labelled shadowed tickets."""

    max: float = Field(default=0.02, ge=0.0, le=1.0)
    min_rows: int = Field(default=100, ge=1)


class ShadowConfig(BaseModel):
    """Which shadow answers the ``shadow_*`` gates read: the last ``days`` days."""

    model_config = ConfigDict(extra="forbid")
    days: int = Field(default=14, ge=1, le=3650)


class BehaviourConfig(BaseModel):
    """What the behavioural gates run on (their limits are on the gates)."""

    model_config = ConfigDict(extra="forbid")
    rows: int = Field(default=60, ge=1, le=10_000)
    seed: int = Field(default=0, ge=0)
    confidence: float = Field(default=0.95, ge=0.5, lt=1.0)
    evidence_words: int = Field(default=10, ge=1, le=100)
    words_added: int = Field(default=3, ge=1, le=100)
    cases: Path | None = None


class Gates(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_accuracy: MinAccuracyGate
    accuracy_drop: MaxDropGate
    macro_f1_drop: MaxDropGate
    category_recall_drop: MaxDropGate
    max_ece: MaxEceGate
    auto_apply_precision: AutoApplyPrecisionGate
    latency_p95: LatencyGate
    model_size: SizeGate
    beats_baseline: BeatsBaselineGate = Field(default_factory=BeatsBaselineGate)
    min_class_rows: MinClassRowsGate = Field(default_factory=MinClassRowsGate)
    # Defaults, so a report recorded before these gates existed still reads back.
    behaviour_invariance: InvarianceGate = Field(default_factory=InvarianceGate)
    behaviour_directional: DirectionalGate = Field(default_factory=DirectionalGate)
    behaviour_minimum_functionality: MinimumFunctionalityGate = Field(
        default_factory=MinimumFunctionalityGate
    )
    shadow_agreement: ShadowAgreementGate = Field(default_factory=ShadowAgreementGate)
    shadow_accuracy_drop: ShadowAccuracyDropGate = Field(default_factory=ShadowAccuracyDropGate)


class BootstrapConfig(BaseModel):
    """The paired bootstrap behind the drop gates."""

    model_config = ConfigDict(extra="forbid")
    resamples: int = Field(default=2000, ge=100, le=100_000)
    seed: int = Field(default=0, ge=0)
    confidence: float = Field(default=0.95, ge=0.5, lt=1.0)


SyncAction = Literal["accept", "revert"]


class SyncPolicy(BaseModel):
    """What sync does with an outside Production change.

    ``on_guarded`` applies first, to a version a rollback would refuse
    (``boltit.registry.rollback_guard``): ``revert`` without judging it, or ``judge`` (the gates
    decide as for any version; the guards are still recorded).
    """

    model_config = ConfigDict(extra="forbid")
    on_gate_pass: SyncAction = "accept"
    on_gate_fail: SyncAction = "revert"
    on_guarded: Literal["revert", "judge"] = "revert"


ApprovalPolicy = Literal["required", "not_required"]
"""``required``: promote also needs ``boltit approve`` by someone other than the trainer."""


class GateConfig(BaseModel):
    """Every gate's mode and limits, the sync policy and the approval policy."""

    model_config = ConfigDict(extra="forbid")
    gates: Gates
    latency_samples: int = Field(50, ge=1, le=10_000)
    bootstrap: BootstrapConfig = BootstrapConfig()
    behaviour: BehaviourConfig = BehaviourConfig()
    shadow: ShadowConfig = ShadowConfig()
    sync: SyncPolicy = SyncPolicy()
    # Who may promote, not how a version is judged: left out of dumps, so verdict digests
    # (boltit.registry.verdicts.config_digest) and recorded reports do not change with it.
    approval: ApprovalPolicy = Field(default="not_required", exclude=True)

    def with_min_accuracy(self, value: float | None) -> GateConfig:
        """A copy with ``--min-accuracy`` applied."""
        if value is None:
            return self
        if not 0.0 <= value <= 1.0:
            raise BadInputError(f"--min-accuracy must be between 0 and 1, got {value}")
        gates = self.gates.model_copy(
            update={"min_accuracy": self.gates.min_accuracy.model_copy(update={"threshold": value})}
        )
        return self.model_copy(update={"gates": gates})


def default_config_text() -> str:
    """The packaged defaults, comments included."""
    return resources.files("boltit.registry").joinpath("gates.yaml").read_text(encoding="utf-8")


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_gate_config(override: dict[str, Any] | None = None) -> GateConfig:
    """Defaults merged with ``override`` (a mapping shaped like ``gates.yaml``)."""
    data = yaml.safe_load(default_config_text())
    if override:
        data = _merge(data, override)
    try:
        return GateConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise BadInputError(f"invalid gate config: {problems}") from exc


def load_gate_config(path: Path | None) -> GateConfig:
    """The packaged defaults, merged with the YAML file at ``path`` when given."""
    if path is None:
        return parse_gate_config()
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BadInputError(f"gate config {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise BadInputError(f"gate config {path} is not valid YAML: {exc}") from exc
    if loaded is not None and not isinstance(loaded, dict):
        raise BadInputError(f"gate config {path} must be a mapping like gates.yaml")
    return parse_gate_config(loaded)
