"""`make system-deps`: what `make test` installs for the browser and Spark tests, and when not.

These run the Makefile's real recipe with a `PATH` that leaves out `apt-get` (or as a user who
is not root), so they install nothing: what they check is that a machine which cannot install
says why and lets the run go on, and that `make test` asks for the step while `make demo`
does not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")

pytestmark = pytest.mark.skipif(MAKE is None, reason="GNU make is not installed")


def make(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    assert MAKE is not None
    return subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(REPOSITORY), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def only(tmp_path: Path, *programs: str) -> str:
    """A PATH folder holding only ``programs`` (linked to the real ones)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for program in programs:
        real = shutil.which(program)
        assert real is not None, program
        (folder / program).symlink_to(real)
    return str(folder)


def test_nothing_to_do_when_chromium_and_java_are_there(tmp_path: Path) -> None:
    # Stand-ins that exist: no install is attempted and nothing is printed.
    done = make("system-deps", "CHROMIUM=sh", "JAVA=true")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_a_machine_that_cannot_install_says_why_and_goes_on(tmp_path: Path) -> None:
    # No apt-get on PATH (and, for a user who is not root, no sudo either).
    path = only(tmp_path, "sh", "id")
    done = make("system-deps", "CHROMIUM=no-such-chromium", "JAVA=no-such-java", path=path)
    assert done.returncode == 0, done.stderr
    assert "so not installing: chromium openjdk-17-jre-headless" in done.stdout
    assert "the tests that need it skip" in done.stdout


def test_make_test_asks_for_the_system_step_and_make_demo_does_not() -> None:
    test = make("-n", "test", "CHROMIUM=no-such-chromium")
    demo = make("-n", "demo")
    assert test.returncode == 0 and demo.returncode == 0, test.stderr + demo.stderr
    assert "openjdk-17-jre-headless" in test.stdout
    assert "openjdk-17-jre-headless" not in demo.stdout
