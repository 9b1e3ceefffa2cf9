"""The runbook's single-date form of ``drift --baseline DATE --current DATE``, beside
``START..END``: what each date stands for, said in the output, and refused when malformed
before pandas, scipy or MLflow load."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from boltit.core.db import Database
from boltit.core.errors import BadInputError
from boltit.core.settings import Settings
from boltit.data_checks.windows import parse_window
from tests.data_checks.conftest import store_tickets
from tests.data_checks.test_cli import Cli, _confident


def test_single_dates_start_or_end_a_week() -> None:
    baseline = parse_window("2025-10-01", single="starting")
    assert baseline.start == datetime(2025, 10, 1, tzinfo=UTC)
    assert baseline.end == datetime(2025, 10, 8, tzinfo=UTC)
    assert baseline.label == "2025-10-01..2025-10-07 (7 days starting 2025-10-01)"
    current = parse_window("2026-12-01", single="ending", days=3)
    assert current.start == datetime(2026, 11, 29, tzinfo=UTC)
    assert current.end == datetime(2026, 12, 2, tzinfo=UTC)  # 2026-12-01 itself included
    assert current.label == "2026-11-29..2026-12-01 (3 days ending 2026-12-01)"
    # START..END keeps its meaning and label when single dates are allowed.
    both = parse_window("2026-10-01..2026-10-31", single="ending")
    assert (both.start, both.end, both.label) == (
        datetime(2026, 10, 1, tzinfo=UTC),
        datetime(2026, 11, 1, tzinfo=UTC),
        "2026-10-01..2026-10-31",
    )


@pytest.mark.parametrize(
    ("text", "days", "message"),
    [
        ("2026-13-01", 7, "expected a date"),
        ("2026-12-01T08:00", 7, "expected a date"),
        ("yesterday", 7, "expected a date"),
        ("2026-12-01", 0, "at least 1 day"),
        ("2026-12-01..", 7, "expected START..END or one date"),
    ],
)
def test_bad_single_dates_are_refused(text: str, days: int, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        parse_window(text, single="starting", days=days)


def test_single_dates_need_the_caller_to_allow_them() -> None:
    with pytest.raises(BadInputError, match=r"expected START\.\.END, e\.g\."):
        parse_window("2026-12-01")


def test_drift_runbook_single_dates(run_cli: Cli, database: Database, settings: Settings) -> None:
    from boltit.training.generator import generate_tickets

    tickets = generate_tickets(2400, seed=41)
    # 48 tickets a day: October 1-25 and November 1-25.
    for prefix, start, rows in (
        ("oct", datetime(2026, 10, 1, tzinfo=UTC), tickets.iloc[:1200]),
        ("nov", datetime(2026, 11, 1, tzinfo=UTC), tickets.iloc[1200:]),
    ):
        store_tickets(
            database, _confident(rows, 1), start=start, spacing=timedelta(minutes=30), prefix=prefix
        )

    result = run_cli("drift", "--baseline", "2026-10-01", "--current", "2026-11-25")

    assert result.exit_code in (0, 1), result.error
    assert "baseline window: 2026-10-01..2026-10-07 (7 days starting 2026-10-01)" in result.output
    assert "current window: 2026-11-19..2026-11-25 (7 days ending 2026-11-25)" in result.output
    saved = json.loads(next((settings.state_dir / "drift").glob("drift-*.json")).read_text())
    assert saved["baseline"]["rows"] == saved["current"]["rows"] == 7 * 48
    assert saved["current"]["label"] == "store 2026-11-19..2026-11-25 (7 days ending 2026-11-25)"

    # Mixed forms and another span: the last 2 days before November 3 against October.
    mixed = run_cli(
        "drift",
        "--baseline",
        "2026-10-01..2026-10-31",
        "--current",
        "2026-11-03",
        "--window-days",
        "2",
    )
    assert mixed.exit_code in (0, 1), mixed.error
    newest = max(
        (settings.state_dir / "drift").glob("drift-*.json"), key=lambda p: p.stat().st_mtime
    )
    saved = json.loads(newest.read_text())
    assert saved["baseline"]["rows"] == 1200 and saved["current"]["rows"] == 2 * 48

    bad = run_cli("drift", "--baseline", "2025-10-32", "--current", "2026-11-25")
    assert bad.exit_code == 2 and "expected a date (YYYY-MM-DD)" in bad.error


@pytest.mark.e2e
def test_bad_single_date_is_reported_before_heavy_imports(settings: Settings) -> None:
    """A typo in the runbook's command costs a second, not the pandas/scipy/MLflow imports."""
    code = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from boltit.app.cli import build_app\n"
        "result = CliRunner().invoke(build_app(), "
        "['drift', '--baseline', '2025-10-32', '--current', '2026-12-01'])\n"
        "heavy = sorted({'pandas', 'scipy', 'mlflow'} & set(sys.modules))\n"
        "print(json.dumps([result.exit_code, str(result.exception), heavy]))\n"
    )
    env = {
        "BOLTIT_STATE_DIR": str(settings.state_dir),
        "BOLTIT_DATABASE_URL": settings.database_url,
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    _, error, heavy = json.loads(done.stdout.strip().splitlines()[-1])
    assert "expected a date" in error, done.stderr
    assert heavy == []
