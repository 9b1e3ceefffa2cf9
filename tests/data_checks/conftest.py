"""Fixtures of the data-checks tests: generated tickets, a stocked ticket store, the CLI."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from boltit.core.context import AppContext
from boltit.core.db import Database
from boltit.core.errors import BoltitError
from boltit.core.schema import Ticket
from boltit.core.settings import Settings
from boltit.data_checks import cli as data_checks_cli
from boltit.training.generator import generate_tickets


@pytest.fixture(scope="session")
def good_tickets() -> pd.DataFrame:
    """Clean generated tickets that pass ``training_data`` with the defaults."""
    return generate_tickets(1600, seed=11)


@dataclass
class CliResult:
    exit_code: int
    output: str
    error: str


@pytest.fixture
def run_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """Invoke this package's commands the way the root CLI does, on the test's settings."""
    monkeypatch.setenv("COLUMNS", "220")

    def invoke(*args: str) -> CliResult:
        app = typer.Typer(pretty_exceptions_enable=False)

        @app.callback()
        def root(ctx: typer.Context) -> None:
            ctx.obj = AppContext(settings=settings)

        data_checks_cli.register(app)
        result = CliRunner().invoke(app, list(args))
        if isinstance(result.exception, BoltitError):
            # What boltit.app.cli.main does: one line and the error's exit code.
            return CliResult(result.exception.exit_code, result.output, str(result.exception))
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return CliResult(result.exit_code, result.output, "")

    return invoke


def store_tickets(
    database: Database,
    frame: pd.DataFrame,
    *,
    model_version: str = "1",
    start: datetime,
    spacing: timedelta = timedelta(minutes=5),
    prefix: str = "t",
    feedback: bool = False,
) -> None:
    """Put ``frame``'s rows (text, category, confidence, optional latency_ms) in the store."""
    with database.session() as session:
        for i, row in enumerate(frame.itertuples(index=False)):
            session.add(
                Ticket(
                    id=f"{prefix}{i:06d}",
                    text=row.text,
                    category=row.category,
                    priority=None,
                    confidence=float(row.confidence),  # type: ignore[arg-type]
                    model_name="ticket-classifier",
                    model_version=model_version,
                    latency_ms=float(getattr(row, "latency_ms", 12.0)),
                    auto_applied=False,
                    reason="test",
                    created_at=start + i * spacing,
                    feedback_category=row.category if feedback else None,
                )
            )


def failing(report_outcomes: Sequence[object]) -> list[str]:
    return [o.name for o in report_outcomes if not o.success]  # type: ignore[attr-defined]
