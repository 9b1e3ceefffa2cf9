"""Minimum functionality: canonical tickets the model must classify right.

The cases are data (``boltit/registry/behaviour_cases.yaml``, or a file named in the gate
config), keyed by category name. A model trained on another dataset knows other
categories, so a case whose category the model does not know is skipped and counted as
skipped: it neither passes nor fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from boltit.core.errors import BadInputError
from boltit.registry.behaviour.directional import PROBABILITY_PREFIX
from boltit.registry.behaviour.share import Share

PACKAGED_CASES = "behaviour_cases.yaml"


@dataclass(frozen=True)
class FunctionalityCase:
    category: str
    text: str


def _cases_text(path: Path | None) -> tuple[str, str]:
    if path is None:
        packaged = resources.files("boltit.registry").joinpath(PACKAGED_CASES)
        return packaged.read_text(encoding="utf-8"), f"boltit/registry/{PACKAGED_CASES}"
    try:
        return Path(path).read_text(encoding="utf-8"), str(path)
    except OSError as exc:
        raise BadInputError(f"behaviour cases {path} cannot be read: {exc}") from exc


def load_cases(path: Path | None = None) -> list[FunctionalityCase]:
    """The cases at ``path``, or the packaged ones: ``cases: {category: [ticket, ...]}``."""
    text, source = _cases_text(path)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BadInputError(f"behaviour cases {source} are not valid YAML: {exc}") from exc
    cases = document.get("cases") if isinstance(document, dict) else None
    if not isinstance(cases, dict) or not all(
        isinstance(tickets, list) and all(isinstance(t, str) and t.strip() for t in tickets)
        for tickets in cases.values()
    ):
        raise BadInputError(
            f"behaviour cases {source} must hold 'cases:' mapping each category name to a "
            "list of ticket texts"
        )
    return [
        FunctionalityCase(str(category), ticket)
        for category, tickets in cases.items()
        for ticket in tickets
    ]


def known_categories(classifier: Any) -> list[str]:
    """The categories the model can predict: its ``categories``, else its probability columns."""
    categories = getattr(classifier, "categories", None)
    if categories:
        return [str(c) for c in categories]
    frame = classifier.predict_frame(["probe"], probabilities=True)
    return [
        str(c).removeprefix(PROBABILITY_PREFIX)
        for c in frame.columns
        if str(c).startswith(PROBABILITY_PREFIX)
    ]


@dataclass(frozen=True)
class FunctionalityOutcome:
    """Known-category cases misclassified, and the cases skipped as unknown to the model."""

    failed: Share
    skipped: int
    unknown_categories: list[str]
    failures: list[dict[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        """Counts, the first failures, and the skipped cases apart (never counted as passed)."""
        text = f"{self.failed.failed}/{self.failed.total} canonical tickets misclassified"
        if not self.failed.total:
            text = "skipped: no case of a category the model knows"
        if self.failures:
            shown = "; ".join(
                f"{f['expected']} -> {f['predicted']}: {f['text'][:60]!r}"
                for f in self.failures[:3]
            )
            text += f" ({shown})"
        if self.skipped:
            text += (
                f"; {self.skipped} skipped (categories the model does not know: "
                f"{', '.join(self.unknown_categories)})"
            )
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "failed": self.failed.to_dict(),
            "skipped": self.skipped,
            "unknown_categories": list(self.unknown_categories),
            "failures": list(self.failures),
        }


def _folded(category: str) -> str:
    return category.casefold().strip()


def check_functionality(
    classifier: Any, cases: Sequence[FunctionalityCase], *, confidence: float
) -> FunctionalityOutcome:
    """Classify every case whose category the model knows (names matched ignoring case)."""
    by_folded = {_folded(c): c for c in known_categories(classifier)}
    known = [
        (case, by_folded[_folded(case.category)])
        for case in cases
        if _folded(case.category) in by_folded
    ]
    unknown = sorted({c.category for c in cases if _folded(c.category) not in by_folded})
    failures: list[dict[str, str]] = []
    if known:
        predicted = classifier.predict_frame([case.text for case, _ in known])["category"]
        for (case, expected), got in zip(known, predicted.astype(str), strict=True):
            if got != expected:
                failures.append({"text": case.text, "expected": expected, "predicted": got})
    return FunctionalityOutcome(
        failed=Share(len(failures), len(known), confidence),
        skipped=len(cases) - len(known),
        unknown_categories=unknown,
        failures=failures,
    )
