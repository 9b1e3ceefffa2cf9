"""``make demo`` runs ``boltit demo``: the whole lifecycle must go through, end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

BOLTIT = Path(sys.executable).parent / "boltit"


@pytest.mark.slow
def test_demo_runs_the_whole_lifecycle(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "BOLTIT_", "AUTO_"))}
    env |= {"BOLTIT_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "200"}
    done = subprocess.run(
        [str(BOLTIT), "demo", "--rows", "3000", "--feedback", "300"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "Traceback" not in out + done.stderr
    for step in (
        "$ boltit check-data",
        "$ boltit promote 1",
        "service now serves v1",
        "rolled back to v1 (verified)",
        "smoke test after the rollback passed",
        "auto_apply_enabled = off",
        "Post-Incident Review",
        "$ boltit smoke --url http://127.0.0.1:",
        "PASSED",
        "$ boltit report monthly --month",
        "demo finished",
    ):
        assert step in out, f"missing {step!r} in demo output"
    assert "--token '***'" in out  # the demo's client token is not printed
    reports = list((tmp_path / "state" / "reports").glob("*.html"))
    assert len(reports) == 1 and f"monthly report: {reports[0]}" in out
    page = reports[0].read_text(encoding="utf-8")
    assert (
        page.count('src="data:image/png;base64,') == 4
    )  # accuracy, categories, confidence, auto-apply
