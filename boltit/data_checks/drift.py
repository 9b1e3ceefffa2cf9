"""Distribution shift between a baseline and a current set of tickets.

Four signals, each judged against warning/critical thresholds from config: category mix
(PSI, with a chi-square test), text length (KS), vocabulary (share of tokens the model's
vectorizer never saw) and, when predictions are available, confidence (KS).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from boltit.core.errors import BadInputError
from boltit.core.model_contract import (
    ModelNotLoadableError,
    NotATicketClassifierError,
    load_classifier,
)

SIGNALS = ("category_mix", "text_length", "vocabulary", "confidence")
_DEFAULT_TOKENS = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token pattern
_PSI_FLOOR = 1e-4  # a category absent on one side would make PSI infinite
_TOP = 10


class Verdict(StrEnum):
    """How worrying a signal is; ``skipped`` when there was not enough data to judge."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    SKIPPED = "skipped"


_SEVERITY = {Verdict.SKIPPED: 0, Verdict.OK: 0, Verdict.WARNING: 1, Verdict.CRITICAL: 2}


@dataclass(frozen=True)
class Thresholds:
    """Warning and critical levels of one signal's statistic."""

    warning: float
    critical: float


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds for every signal plus the test level and the minimum sample."""

    signals: dict[str, Thresholds]
    p_value: float = 0.001
    min_rows: int = 100

    def thresholds(self, signal: str) -> Thresholds:
        return self.signals[signal]


@dataclass(frozen=True)
class SignalResult:
    """One signal's statistic and verdict.

    Attributes:
        signal: ``category_mix``, ``text_length``, ``vocabulary`` or ``confidence``.
        statistic: What ``value`` measures (``psi``, ``ks``, ``unseen_token_share``).
        value: The statistic, None when skipped.
        p_value: The test's p-value, when the signal has a test.
        verdict: ok, warning, critical or skipped.
        thresholds: The levels it was judged against.
        summary: One sentence for a terminal or an incident timeline.
        details: Figures behind the verdict (per-category shares, top unseen tokens...).
    """

    signal: str
    statistic: str
    value: float | None
    p_value: float | None
    verdict: Verdict
    thresholds: Thresholds
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "statistic": self.statistic,
            "value": self.value,
            "p_value": self.p_value,
            "verdict": self.verdict.value,
            "warning": self.thresholds.warning,
            "critical": self.thresholds.critical,
            "summary": self.summary,
            "details": self.details,
        }


@dataclass(frozen=True)
class DriftReport:
    """Every signal's verdict for one baseline/current comparison."""

    signals: list[SignalResult]
    baseline_label: str
    current_label: str
    baseline_rows: int
    current_rows: int
    vocabulary_source: str
    html_path: Path | None = None
    # Kept for the HTML plots; not part of the JSON form.
    plot_data: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def verdict(self) -> Verdict:
        """The worst verdict over all signals (ok when every signal was skipped)."""
        worst = max(self.signals, key=lambda s: _SEVERITY[s.verdict], default=None)
        if worst is None or _SEVERITY[worst.verdict] == 0:
            return Verdict.OK
        return worst.verdict

    @property
    def critical(self) -> bool:
        """True when any signal crossed its critical threshold."""
        return any(s.verdict is Verdict.CRITICAL for s in self.signals)

    @property
    def flagged(self) -> list[SignalResult]:
        """Signals at warning or critical."""
        return [s for s in self.signals if s.verdict in (Verdict.WARNING, Verdict.CRITICAL)]

    def signal(self, name: str) -> SignalResult:
        """The result of one signal by name."""
        for result in self.signals:
            if result.signal == name:
                return result
        raise KeyError(name)

    def hints(self) -> list[str]:
        """Root-cause sentences for the flagged signals, worst first."""
        ordered = sorted(self.flagged, key=lambda s: -_SEVERITY[s.verdict])
        return [f"{s.verdict.value}: {s.summary}" for s in ordered]

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "critical": self.critical,
            "baseline": {"label": self.baseline_label, "rows": self.baseline_rows},
            "current": {"label": self.current_label, "rows": self.current_rows},
            "vocabulary_source": self.vocabulary_source,
            "signals": [s.to_dict() for s in self.signals],
            "html_report": str(self.html_path) if self.html_path else None,
        }


def load_drift_config(path: Path | None = None) -> DriftConfig:
    """The packaged thresholds, overridden key by key by the YAML file at ``path``.

    Raises:
        BadInputError: The file is missing, not YAML, or holds an invalid threshold.
    """
    text = resources.files("boltit.data_checks").joinpath("drift_defaults.yaml").read_text("utf-8")
    merged: dict[str, Any] = yaml.safe_load(text)
    if path is not None:
        try:
            override = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise BadInputError(f"drift config {path}: cannot read ({exc})") from exc
        if not isinstance(override, dict):
            raise BadInputError(f"drift config {path}: expected a mapping at the top level")
        for key, value in override.items():
            if key == "signals" and isinstance(value, dict):
                for name, levels in value.items():
                    if name not in SIGNALS:
                        raise BadInputError(
                            f"drift config {path}: unknown signal {name!r}; "
                            f"known: {', '.join(SIGNALS)}"
                        )
                    merged["signals"][name] = {**merged["signals"][name], **(levels or {})}
            else:
                merged[key] = value
    return _parse_config(merged, source=str(path or "packaged defaults"))


def _parse_config(raw: dict[str, Any], *, source: str) -> DriftConfig:
    signals: dict[str, Thresholds] = {}
    for name in SIGNALS:
        levels = raw["signals"][name]
        try:
            warning, critical = float(levels["warning"]), float(levels["critical"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInputError(
                f"drift config {source}: {name} needs numeric warning and critical"
            ) from exc
        if not 0 <= warning <= critical:
            raise BadInputError(
                f"drift config {source}: {name} needs 0 <= warning <= critical "
                f"(got {warning} and {critical})"
            )
        signals[name] = Thresholds(warning, critical)
    try:
        p_value, min_rows = float(raw["p_value"]), int(raw["min_rows"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError(f"drift config {source}: p_value and min_rows must be numbers") from exc
    if not 0 < p_value < 1 or min_rows < 2:
        raise BadInputError(f"drift config {source}: need 0 < p_value < 1 and min_rows >= 2")
    return DriftConfig(signals=signals, p_value=p_value, min_rows=min_rows)


@dataclass(frozen=True)
class Vocabulary:
    """The words a model knows and how it splits a text into words."""

    words: frozenset[str]
    tokenize: Callable[[str], list[str]]
    source: str


def vocabulary_from(known: Any, *, source: str | None = None) -> Vocabulary:
    """A :class:`Vocabulary` from a word collection, a fitted vectorizer or a classifier.

    A classifier is anything with ``features.transformer_list`` (the training package's
    ``TicketClassifier``); its word-level vectorizer is used. Only single words count:
    n-gram entries are split off, since an unseen token is an unseen word.
    """
    vectorizer = _word_vectorizer(known)
    if vectorizer is not None:
        words = frozenset(w for w in vectorizer.vocabulary_ if " " not in w)
        preprocess = vectorizer.build_preprocessor()
        split = vectorizer.build_tokenizer()
        return Vocabulary(words, lambda text: split(preprocess(text)), source or "model vectorizer")
    if isinstance(known, Collection) and not isinstance(known, str):
        words = frozenset(str(w).lower() for w in known)
        return Vocabulary(words, _default_tokens, source or "given vocabulary")
    raise BadInputError(
        f"cannot take a vocabulary from {type(known).__name__}: "
        "give a set of words, a fitted vectorizer or a ticket classifier"
    )


def vocabulary_from_model(model_uri: str) -> Vocabulary:
    """The vocabulary of a registered model version (``models:/name/3``, ``models:/name@a``).

    Raises:
        BadInputError: The model cannot be loaded or has no word vectorizer.
    """
    try:
        classifier = load_classifier(model_uri)
    except ModelNotLoadableError as exc:
        raise BadInputError(
            f"cannot load {model_uri} for its vocabulary: {exc.__cause__ or exc}"
        ) from exc
    except NotATicketClassifierError as exc:
        raise BadInputError(f"{model_uri} is not a ticket classifier ({exc})") from exc
    return vocabulary_from(classifier, source=f"vectorizer of {model_uri}")


def _word_vectorizer(known: Any) -> Any | None:
    if hasattr(known, "vocabulary_") and hasattr(known, "build_tokenizer"):
        return known if getattr(known, "analyzer", "word") == "word" else None
    features = getattr(known, "features", None)
    for _, part in getattr(features, "transformer_list", []):
        if hasattr(part, "vocabulary_") and getattr(part, "analyzer", None) == "word":
            return part
    return None


def _default_tokens(text: str) -> list[str]:
    return _DEFAULT_TOKENS.findall(text.lower())


def detect_drift(
    baseline: pd.DataFrame,
    current: pd.DataFrame,
    *,
    config: DriftConfig | None = None,
    vocabulary: Vocabulary | Any | None = None,
    baseline_label: str = "baseline",
    current_label: str = "current",
    seed: int = 0,
) -> DriftReport:
    """Compare two ticket frames (``text``, ``category``, optional ``confidence``).

    Args:
        baseline: What the model was trained or validated on, or an earlier window.
        current: Recent tickets.
        config: Thresholds; the packaged defaults when None.
        vocabulary: The model's vocabulary (see :func:`vocabulary_from`). When None it is
            built from half of the baseline and the other half measures the baseline's
            own rate of unseen words, so both sides are compared on equal terms.
        baseline_label: How the report names the baseline.
        current_label: How the report names the current data.
        seed: Seed of the baseline split used when no vocabulary is given.

    Raises:
        BadInputError: A frame lacks ``text`` or ``category``.
    """
    config = config or load_drift_config()
    for label, frame in ((baseline_label, baseline), (current_label, current)):
        missing = [c for c in ("text", "category") if c not in frame.columns]
        if missing:
            raise BadInputError(f"{label} data has no {' or '.join(missing)} column")
    plots: dict[str, Any] = {}
    signals = [
        _category_mix(baseline, current, config, plots),
        _text_length(baseline, current, config, plots),
    ]
    vocab_signal, source = _vocabulary(baseline, current, config, vocabulary, seed, plots)
    signals.append(vocab_signal)
    signals.append(_confidence(baseline, current, config, plots))
    return DriftReport(
        signals=signals,
        baseline_label=baseline_label,
        current_label=current_label,
        baseline_rows=len(baseline),
        current_rows=len(current),
        vocabulary_source=source,
        plot_data=plots,
    )


def _judge(value: float, thresholds: Thresholds, p_value: float | None, alpha: float) -> Verdict:
    if p_value is not None and p_value >= alpha:
        return Verdict.OK  # not distinguishable from sampling noise
    if value >= thresholds.critical:
        return Verdict.CRITICAL
    if value >= thresholds.warning:
        return Verdict.WARNING
    return Verdict.OK


def _skipped(signal: str, statistic: str, config: DriftConfig, why: str) -> SignalResult:
    return SignalResult(
        signal, statistic, None, None, Verdict.SKIPPED, config.thresholds(signal), why
    )


def _too_small(signal: str, statistic: str, config: DriftConfig, sizes: Iterable[int]):
    smallest = min(sizes)
    if smallest < config.min_rows:
        return _skipped(
            signal,
            statistic,
            config,
            f"{signal.replace('_', ' ')} not judged: {smallest} rows, fewer than {config.min_rows}",
        )
    return None


def _category_mix(
    baseline: pd.DataFrame, current: pd.DataFrame, config: DriftConfig, plots: dict[str, Any]
) -> SignalResult:
    before = baseline["category"].dropna().astype("str").value_counts()
    after = current["category"].dropna().astype("str").value_counts()
    skipped = _too_small("category_mix", "psi", config, (int(before.sum()), int(after.sum())))
    if skipped:
        return skipped
    categories = sorted(set(before.index) | set(after.index))
    counts = np.array(
        [[before.get(c, 0) for c in categories], [after.get(c, 0) for c in categories]],
        dtype=float,
    )
    shares = counts / counts.sum(axis=1, keepdims=True)
    floored = np.clip(shares, _PSI_FLOOR, None)
    psi = float(np.sum((floored[1] - floored[0]) * np.log(floored[1] / floored[0])))
    p_value = float(stats.chi2_contingency(counts).pvalue) if len(categories) > 1 else 1.0
    verdict = _judge(psi, config.thresholds("category_mix"), p_value, config.p_value)
    moves = sorted(
        zip(categories, shares[0], shares[1], strict=True),
        key=lambda row: -abs(row[2] - row[1]),
    )
    new = [c for c in categories if before.get(c, 0) == 0]
    top = ", ".join(f"{c} {b:.1%}→{a:.1%}" for c, b, a in moves[:3])
    summary = f"category mix PSI {psi:.3f} (chi-square p={p_value:.2g}); biggest moves: {top}"
    if new:
        summary += f"; new categories: {', '.join(new)}"
    plots["category_mix"] = {"categories": categories, "shares": shares.tolist()}
    return SignalResult(
        "category_mix",
        "psi",
        psi,
        p_value,
        verdict,
        config.thresholds("category_mix"),
        summary,
        {
            "shares": {c: {"baseline": float(b), "current": float(a)} for c, b, a in moves},
            "new_categories": new,
        },
    )


def _lengths(frame: pd.DataFrame) -> np.ndarray:
    texts = frame["text"].dropna().astype("str")
    return texts.str.len().to_numpy(dtype=float)


def _text_length(
    baseline: pd.DataFrame, current: pd.DataFrame, config: DriftConfig, plots: dict[str, Any]
) -> SignalResult:
    before, after = _lengths(baseline), _lengths(current)
    return _ks_signal(
        "text_length",
        "text length",
        before,
        after,
        config,
        plots,
        centre="median",
        unit=" characters",
    )


def _ks_signal(
    signal: str,
    label: str,
    before: np.ndarray,
    after: np.ndarray,
    config: DriftConfig,
    plots: dict[str, Any],
    *,
    centre: Literal["median", "mean"],
    unit: str = "",
) -> SignalResult:
    """A two-sample KS test of one numeric signal, summarised by its median or mean."""
    skipped = _too_small(signal, "ks", config, (len(before), len(after)))
    if skipped:
        return skipped
    test = stats.ks_2samp(before, after)
    distance, p_value = float(test.statistic), float(test.pvalue)
    verdict = _judge(distance, config.thresholds(signal), p_value, config.p_value)
    average = np.median if centre == "median" else np.mean
    then, now = float(average(before)), float(average(after))
    digits = 0 if centre == "median" else 3  # lengths are whole characters; confidences are not
    plots[signal] = {"baseline": before, "current": after}
    return SignalResult(
        signal,
        "ks",
        distance,
        p_value,
        verdict,
        config.thresholds(signal),
        f"{label} KS {distance:.3f} (p={p_value:.2g}); {centre} {then:.{digits}f} → "
        f"{now:.{digits}f}{unit}",
        {f"{centre}_baseline": then, f"{centre}_current": now},
    )


def _vocabulary(
    baseline: pd.DataFrame,
    current: pd.DataFrame,
    config: DriftConfig,
    known: Vocabulary | Any | None,
    seed: int,
    plots: dict[str, Any],
) -> tuple[SignalResult, str]:
    before = baseline["text"].dropna().astype("str")
    after = current["text"].dropna().astype("str")
    skipped = _too_small("vocabulary", "unseen_token_share", config, (len(before), len(after)))
    if skipped:
        return skipped, "none"
    if known is None:
        # The vocabulary comes from one half of the baseline; the other half shows how
        # many unseen words ordinary tickets bring at that vocabulary size.
        order = np.random.default_rng(seed).permutation(len(before))
        half = len(before) // 2
        fit, held_out = before.iloc[order[:half]], before.iloc[order[half:]]
        words: set[str] = set()
        for text in fit:
            words.update(_default_tokens(text))
        vocabulary = Vocabulary(frozenset(words), _default_tokens, "half of the baseline")
        reference = held_out
    else:
        vocabulary = known if isinstance(known, Vocabulary) else vocabulary_from(known)
        reference = before
    base_share, _, base_fractions = _unseen(reference, vocabulary)
    share, unseen, fractions = _unseen(after, vocabulary)
    excess = max(0.0, share - base_share)
    # Unseen words cluster in tickets, so significance is tested per ticket: are current
    # tickets' unseen fractions larger than the baseline's?
    p_value = 1.0
    if len(base_fractions) and len(fractions) and excess > 0:
        p_value = float(stats.mannwhitneyu(fractions, base_fractions, alternative="greater").pvalue)
    verdict = _judge(excess, config.thresholds("vocabulary"), p_value, config.p_value)
    top = unseen.most_common(_TOP)
    plots["vocabulary"] = {"top_unseen": top, "shares": (base_share, share)}
    examples = ", ".join(word for word, _ in top[:5]) or "none"
    return (
        SignalResult(
            "vocabulary",
            "unseen_token_share",
            excess,
            p_value,
            verdict,
            config.thresholds("vocabulary"),
            f"{share:.1%} of current tokens unseen by the {vocabulary.source} vs "
            f"{base_share:.1%} in the baseline (+{excess:.1%}, p={p_value:.2g}); "
            f"most frequent: {examples}",
            {
                "unseen_share_current": share,
                "unseen_share_baseline": base_share,
                "top_unseen_tokens": dict(top),
                "vocabulary_size": len(vocabulary.words),
            },
        ),
        vocabulary.source,
    )


def _unseen(texts: pd.Series, vocabulary: Vocabulary) -> tuple[float, Counter[str], np.ndarray]:
    """Pooled unseen-token share, unseen token counts, and each ticket's unseen fraction."""
    total = 0
    unseen: Counter[str] = Counter()
    fractions: list[float] = []
    words = vocabulary.words
    for text in texts:
        tokens = vocabulary.tokenize(text)
        if not tokens:
            continue
        missing = [t for t in tokens if t not in words]
        total += len(tokens)
        unseen.update(missing)
        fractions.append(len(missing) / len(tokens))
    share = sum(unseen.values()) / total if total else 0.0
    return share, unseen, np.asarray(fractions)


def _confidence(
    baseline: pd.DataFrame, current: pd.DataFrame, config: DriftConfig, plots: dict[str, Any]
) -> SignalResult:
    if "confidence" not in baseline.columns or "confidence" not in current.columns:
        return _skipped(
            "confidence", "ks", config, "confidence not judged: no predictions on both sides"
        )
    before = pd.to_numeric(baseline["confidence"], errors="coerce").dropna().to_numpy(float)
    after = pd.to_numeric(current["confidence"], errors="coerce").dropna().to_numpy(float)
    return _ks_signal("confidence", "confidence", before, after, config, plots, centre="mean")
