"""Services a test starts die with the test process, even when pytest is killed -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from boltit.core.polling import wait_until

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
# A stand-in for pytest: starts a long child as the service fixtures do, then waits.
PARENT = """
import os, subprocess, sys, time
from tests.children import killed_with
child = subprocess.Popen(
    ["sleep", "300"], start_new_session=True, preexec_fn=killed_with(os.getpid())
)
print(child.pid, flush=True)
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_a_child_in_its_own_session_dies_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    child = 0
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _alive(child)
        os.kill(parent.pid, signal.SIGKILL)  # no finaliser of the parent runs
        parent.wait(timeout=10)
        assert wait_until(lambda: not _alive(child), timeout=10, interval=0.05) is not None
    finally:
        parent.kill()
        if child and _alive(child):
            os.kill(child, signal.SIGKILL)
