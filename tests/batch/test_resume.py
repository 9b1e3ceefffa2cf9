"""A real ``boltit score`` killed with SIGKILL half way, then run again: every input row is
written exactly once and the parts the first run finished are kept, not scored again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from boltit.core.settings import Settings
from tests.batch.conftest import labelled_tickets
from tests.children import killed_with
from tests.console_script import Boltit

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROWS, CHUNK = 24_000, 200


def _done(out: Path) -> dict[str, tuple[int, int]]:
    """Finished part -> (inode, mtime) of its file."""
    found = {}
    for marker in out.glob("_part-*.done"):
        part = out / (marker.stem.removeprefix("_") + ".parquet")
        found[part.name] = (part.stat().st_ino, part.stat().st_mtime_ns)
    return found


def test_a_killed_run_resumes_and_writes_each_row_once(
    boltit: Boltit, scoring_client: MlflowClient, settings: Settings, tmp_path: Path
) -> None:
    source = tmp_path / "backlog.parquet"
    labelled_tickets(ROWS, seed=17).to_parquet(source)
    out = tmp_path / "scored"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "BOLTIT_"))}
    env |= {"BOLTIT_STATE_DIR": str(settings.state_dir), "COLUMNS": "200"}
    child = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "boltit"),
            "score",
            str(source),
            "--output",
            str(out),
            "--chunk-rows",
            str(CHUNK),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=killed_with(os.getpid()),
    )
    try:
        deadline = time.monotonic() + 240
        while not out.exists() or len(_done(out)) < 5:
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            assert time.monotonic() < deadline, "no part was finished in 240 s"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    first_run = _done(out)
    parts = ROWS // CHUNK
    assert 5 <= len(first_run) < parts, "the run must be stopped half way"
    assert not (out / "_SUCCESS").exists()

    code, stdout, stderr = boltit(
        "score", str(source), "--output", str(out), "--chunk-rows", str(CHUNK)
    )
    assert code == 0, stderr
    kept = len(first_run)
    assert f"({parts - kept} of {parts} parts; {kept} done before, kept)" in " ".join(
        stdout.split()
    )
    after = _done(out)
    assert len(after) == parts and (out / "_SUCCESS").exists()
    # The first run's parts are the same files, untouched.
    assert {name: after[name] for name in first_run} == first_run
    scored = pd.read_parquet(out)
    assert len(scored) == ROWS
    assert scored["id"].is_unique
    assert set(scored["id"]) == {f"t{n}" for n in range(ROWS)}
    assert not list(out.glob(".*.tmp"))
