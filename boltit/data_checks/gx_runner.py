"""Running named checks as Great Expectations suites in an ephemeral context.

Each suite is built in code for every run, so it is versioned with the project rather
than with a GX folder. Results can also be rendered as GX Data Docs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )
    from great_expectations.expectations import Expectation

DOCS_SITE = "boltit"
_PARTIAL_SHOWN = 3


@dataclass(frozen=True)
class ExpectationOutcome:
    """One check's verdict.

    Attributes:
        name: The check's name in this project's words (``min_rows_per_class``...).
        success: Whether the data met it.
        observed: What was seen, readable in a terminal table.
        expectation: The GX expectation type behind it.
        value: The main observed figure (a share, a count, a ratio), when there is one.
        categories: The categories that failed a per-category check (too few rows, too
            small beside the biggest, not allowed), so the message can name them.
    """

    name: str
    success: bool
    observed: str
    expectation: str = ""
    value: float | None = None
    categories: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The check's name, with the categories that failed it: ``min_rows_per_class
        (Printers)``."""
        return f"{self.name} ({', '.join(self.categories)})" if self.categories else self.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "success": self.success,
            "observed": self.observed,
            "expectation": self.expectation,
            "value": self.value,
            "categories": list(self.categories),
        }


@dataclass(frozen=True)
class Check:
    """A named GX expectation with a sentence saying what it protects."""

    name: str
    description: str
    expectation: Expectation
    # Columns whose values identify an unexpected row in the observed text.
    identify_by: tuple[str, ...] = ()
    # Restates GX's observed figure in the check's own terms (unique share -> duplicate rate).
    restate: Callable[[float], tuple[str, float]] | None = None


@dataclass(frozen=True)
class Batch:
    """A frame and the checks that run on it, as one GX suite."""

    suite: str
    frame: pd.DataFrame
    checks: Sequence[Check]
    unit: str = "rows"  # what one row of ``frame`` is, in observed texts


def run_batches(
    batches: Sequence[Batch], *, data_docs_dir: Path | None = None
) -> tuple[list[ExpectationOutcome], Path | None]:
    """Validate every batch; optionally build Data Docs. Returns outcomes in check order."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX sets this module's logger to INFO itself, and it narrates every ephemeral context.
    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.ERROR)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if data_docs_dir is not None:
        # Results persist beside the docs, so every run keeps its page; with the
        # in-memory store each build would delete the pages of earlier runs.
        context.add_store(
            "boltit_results",
            {
                "class_name": "ValidationResultsStore",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str((data_docs_dir / ".results").resolve()),
                },
            },
        )
        context.validation_results_store_name = "boltit_results"
    source = context.data_sources.add_pandas("boltit")
    outcomes: list[ExpectationOutcome] = []
    for batch in batches:
        suite = context.suites.add(gx.ExpectationSuite(name=batch.suite))
        for check in batch.checks:
            check.expectation.description = check.description
            check.expectation.meta = {"check": check.name}
            suite.add_expectation(check.expectation)
        asset = source.add_dataframe_asset(batch.suite)
        definition = asset.add_batch_definition_whole_dataframe(batch.suite)
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(name=batch.suite, data=definition, suite=suite)
        )
        identify_by = sorted({c for check in batch.checks for c in check.identify_by})
        result_format: dict[str, Any] = {"result_format": "SUMMARY"}
        if identify_by:
            result_format["unexpected_index_column_names"] = identify_by
        result = validation.run(
            batch_parameters={"dataframe": batch.frame}, result_format=result_format
        )
        outcomes.extend(_outcomes(batch, result))
    docs_index = _build_docs(context, data_docs_dir) if data_docs_dir is not None else None
    return outcomes, docs_index


def _build_docs(context: Any, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in list(context.list_data_docs_sites()):
        context.delete_data_docs_site(name)
    context.add_data_docs_site(
        DOCS_SITE,
        {
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(directory.resolve()),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    context.build_data_docs(site_names=[DOCS_SITE])
    return directory.resolve() / "index.html"


def _outcomes(batch: Batch, result: ExpectationSuiteValidationResult) -> list[ExpectationOutcome]:
    by_name = {
        (r.expectation_config.meta or {}).get("check"): r
        for r in result.results
        if r.expectation_config is not None
    }
    outcomes = []
    for check in batch.checks:
        found = by_name.get(check.name)
        if found is None:
            outcomes.append(ExpectationOutcome(check.name, False, "not evaluated"))
            continue
        observed, value = _describe(found, check.identify_by, batch.unit)
        if check.restate is not None and value is not None and not observed.startswith("could"):
            observed, value = check.restate(value)
        outcomes.append(
            ExpectationOutcome(
                name=check.name,
                success=bool(found.success),
                observed=observed,
                expectation=check.expectation.expectation_type,
                value=value,
            )
        )
    return outcomes


def _describe(
    result: ExpectationValidationResult, identify_by: tuple[str, ...], unit: str
) -> tuple[str, float | None]:
    info = result.exception_info or {}
    if info.get("raised_exception"):
        message = str(info.get("exception_message") or "error").splitlines()[0]
        return f"could not evaluate: {message}", None
    details = result.result or {}
    if "unexpected_count" in details and "observed_value" not in details:
        count = int(details.get("unexpected_count") or 0)
        percent = float(details.get("unexpected_percent") or 0.0)
        total = int(details.get("element_count") or 0)
        text = f"{count:,} of {total:,} {unit} unexpected ({percent:.2f}%)"
        examples = _examples(details, identify_by)
        if count and examples:
            text += f", e.g. {examples}"
        return text, percent / 100.0
    observed = details.get("observed_value")
    mismatched = (details.get("details") or {}).get("mismatched") or {}
    if mismatched.get("missing"):
        return "missing: " + ", ".join(str(c) for c in mismatched["missing"]), None
    if isinstance(observed, list):
        return "all present", None
    if observed is not None and hasattr(observed, "item"):
        observed = observed.item()  # numpy scalars print as np.float64(...)
    if isinstance(observed, float):
        return (f"{observed:.4g}" if math.isfinite(observed) else str(observed)), observed
    if isinstance(observed, int) and not isinstance(observed, bool):
        return f"{observed:,}", float(observed)
    return str(observed), None


def _examples(details: dict[str, Any], identify_by: tuple[str, ...]) -> str:
    indexed = details.get("partial_unexpected_index_list") or []
    if identify_by and indexed:
        seen: list[str] = []
        for row in indexed:
            label = ", ".join(_show(row.get(c)) for c in identify_by if c in row)
            if label and label not in seen:
                seen.append(label)
            if len(seen) == _PARTIAL_SHOWN:
                break
        return "; ".join(_clip(s) for s in seen)
    values = details.get("partial_unexpected_list") or []
    unique: list[str] = []
    for value in values:
        text = _clip(repr(value))
        if text not in unique:
            unique.append(text)
        if len(unique) == _PARTIAL_SHOWN:
            break
    return ", ".join(unique)


def _show(value: Any) -> str:
    # Blank texts are the defect being reported; quotes make them visible.
    if isinstance(value, str) and not value.strip():
        return repr(value)
    return str(value)


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
