"""Directional: words that are evidence for a category must push towards it.

The evidence comes from the model's own coefficients (the words whose weight for a
category most exceeds their weight for every other one), never from the evaluation rows
the check runs on. Appending a category's evidence to a ticket must not lower the
probability of that category; deleting it must not raise it. A move smaller than the
gate's ``tolerance`` is not counted: the TF-IDF rows are length-normalised, so every
edit nudges every probability a little.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from boltit.registry.behaviour.share import Share

PROBABILITY_PREFIX = "proba_"


def evidence_words(classifier: Any, *, per_category: int) -> dict[str, list[str]] | None:
    """Each category's strongest words by the model's coefficients; None when it has none.

    Reads a ``TicketClassifier``'s word TF-IDF vocabulary (``features``, first block) and
    its category head's linear weights. Only plain alphabetic words of three or more
    letters qualify: they survive any tokenizer, and an n-gram cannot be appended whole.
    """
    features = getattr(classifier, "features", None)
    head = getattr(classifier, "category_head", None)
    estimator = getattr(head, "estimator", None)
    blocks = getattr(features, "transformer_list", None)
    if estimator is None or not blocks:
        return None
    vocabulary: dict[str, int] = getattr(blocks[0][1], "vocabulary_", {})
    classes = [str(c) for c in estimator.classes_]
    coef = np.asarray(estimator.coef_, dtype=float)
    if len(classes) == 2:
        # A binary SVM keeps one row, for the second class.
        coef = np.vstack([-coef[0], coef[0]])
    words = [w for w, i in vocabulary.items() if w.isalpha() and len(w) >= 3]
    if not words or len(classes) < 2:
        return None
    weights = coef[:, [vocabulary[w] for w in words]]
    evidence: dict[str, list[str]] = {}
    for row, category in enumerate(classes):
        others = np.delete(weights, row, axis=0).max(axis=0)
        margin = weights[row] - others
        best = np.argsort(-margin, kind="stable")[:per_category]
        evidence[category] = [words[i] for i in best if margin[i] > 0]
    return {c: w for c, w in evidence.items() if w}


@dataclass(frozen=True)
class DirectionalOutcome:
    """Violations of the expected direction among added-evidence and removed-evidence cases."""

    violations: Share
    added: Share
    removed: Share
    evidence: dict[str, list[str]]
    examples: list[dict[str, Any]]
    skipped: str = ""

    def summary(self) -> str:
        if self.skipped:
            return f"skipped: {self.skipped}"
        return (
            f"{self.violations.failed}/{self.violations.total} cases moved the wrong way "
            f"(adding a category's evidence lowered its probability in {self.added.failed}/"
            f"{self.added.total}; removing it raised it in {self.removed.failed}/"
            f"{self.removed.total}); evidence: the model's own coefficients"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "violations": self.violations.to_dict(),
            "added": self.added.to_dict(),
            "removed": self.removed.to_dict(),
            "evidence": {c: list(w) for c, w in self.evidence.items()},
            "examples": list(self.examples),
            "skipped": self.skipped,
        }


def _skipped(reason: str, confidence: float) -> DirectionalOutcome:
    empty = Share(0, 0, confidence)
    return DirectionalOutcome(empty, empty, empty, {}, [], skipped=reason)


def _without(text: str, words: Sequence[str]) -> str:
    pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, words)) + r")\b", re.IGNORECASE)
    return " ".join(pattern.sub(" ", text).split())


def _probabilities(classifier: Any, texts: list[str]) -> dict[str, np.ndarray] | None:
    frame = classifier.predict_frame(texts, probabilities=True)
    columns = [c for c in frame.columns if str(c).startswith(PROBABILITY_PREFIX)]
    if not columns:
        return None
    return {
        str(c).removeprefix(PROBABILITY_PREFIX): frame[c].to_numpy(dtype=float) for c in columns
    }


def check_directional(
    classifier: Any,
    texts: Sequence[str],
    *,
    evidence_per_category: int,
    words_added: int,
    tolerance: float,
    confidence: float,
    examples: int = 5,
) -> DirectionalOutcome:
    """Add and remove category evidence on ``texts``; count moves against the direction.

    Each ticket gets the first ``words_added`` evidence words of one category it is not
    predicted as (categories taken in turn), and, when it holds evidence words of the
    category it is predicted as, a copy without them. One batch predicts everything.
    """
    originals = [str(t) for t in texts]
    if not originals:
        return _skipped("no evaluation tickets", confidence)
    evidence = evidence_words(classifier, per_category=evidence_per_category)
    if not evidence:
        return _skipped(
            "the model exposes no linear word weights to take evidence from", confidence
        )
    before = _probabilities(classifier, originals)
    if before is None:
        return _skipped("the model gives no per-category probabilities", confidence)
    categories = [c for c in evidence if c in before]
    if len(categories) < 2:
        return _skipped("fewer than two categories have evidence words", confidence)
    predicted = [max(before, key=lambda c: before[c][i]) for i in range(len(originals))]
    # (ticket index, category, direction, edited text); +1 expects a rise, -1 a fall.
    cases: list[tuple[int, str, int, str]] = []
    for i, text in enumerate(originals):
        targets = [c for c in categories if c != predicted[i]]
        target = targets[i % len(targets)]
        cases.append((i, target, +1, f"{text} {' '.join(evidence[target][:words_added])}"))
    for i, text in enumerate(originals):
        own = evidence.get(predicted[i], [])
        present = [w for w in own if re.search(rf"\b{re.escape(w)}\b", text, re.IGNORECASE)]
        if present:
            cases.append((i, predicted[i], -1, _without(text, present)))
    after = _probabilities(classifier, [case[3] for case in cases])
    if after is None:
        return _skipped("the model gives no per-category probabilities", confidence)
    failed = {+1: 0, -1: 0}
    total = {+1: 0, -1: 0}
    kept: list[dict[str, Any]] = []
    for position, (i, category, direction, edited) in enumerate(cases):
        old = float(before[category][i])
        new = float(after[category][position])
        total[direction] += 1
        if direction * (new - old) < -tolerance:
            failed[direction] += 1
            if len(kept) < examples:
                kept.append(
                    {
                        "edit": "added" if direction > 0 else "removed",
                        "category": category,
                        "text": edited,
                        "before": round(old, 4),
                        "after": round(new, 4),
                    }
                )
    return DirectionalOutcome(
        violations=Share(failed[+1] + failed[-1], total[+1] + total[-1], confidence),
        added=Share(failed[+1], total[+1], confidence),
        removed=Share(failed[-1], total[-1], confidence),
        evidence={c: evidence[c] for c in categories},
        examples=kept,
    )
