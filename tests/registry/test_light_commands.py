"""Emergency commands are light (issue 12): no data-science stack, no model load for a
version that already served."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from boltit.core import audit
from boltit.core.db import Database
from boltit.core.light import HEAVY_STACKS
from boltit.core.settings import Settings
from boltit.core.vocabulary import PRODUCTION, TAG_VALIDATION_STATUS, VALIDATION_PASSED
from boltit.registry.history import registry_history
from boltit.registry.loadable import LOADED, SKIPPED_AS_SERVED
from boltit.registry.lookup import aliases
from boltit.registry.promote import promote
from boltit.registry.rollback import rollback
from tests.registry.conftest import TrainedVersions, serve_in_turn

# Runs one `boltit` command line in a fresh interpreter and reports, as the last line of
# stderr, which heavy stacks the process imported by the time it ended.
_HARNESS = """
import atexit, json, sys
heavy = {heavy!r}
atexit.register(lambda: print(json.dumps(sorted(h for h in heavy if h in sys.modules)),
                              file=sys.stderr))
from boltit.app.cli import main
sys.argv = ["boltit", *sys.argv[1:]]
main()
"""
# `monitor status` must import neither pandas, sklearn nor Great Expectations (issue 12);
# scipy's tests (binomial, Kolmogorov-Smirnov) are its own arithmetic, so scipy may load.
MONITOR_STATUS_REFUSED = tuple(h for h in HEAVY_STACKS if h != "scipy")
MONITOR_STATUS_MODULES = (
    "boltit.monitoring.status",
    "boltit.monitoring.snapshot",
    "boltit.monitoring.feedback_sources",
)
EMERGENCY_MODULES = (
    "boltit.registry.cli",
    "boltit.registry.rollback",
    "boltit.registry.promote",
    "boltit.registry.history",
    "boltit.core.flags",
    "boltit.app.flags_cli",
    "boltit.monitoring.cli",
    "boltit.monitoring.incidents",
)


def _boltit(
    *args: str, env: dict[str, str] | None = None, watched: tuple[str, ...] = HEAVY_STACKS
) -> tuple[int, str, list[str]]:
    """(exit code, stdout, which of ``watched`` it imported) of `boltit ARGS` in its own process.

    The error line ``main`` prints for a refused argument is appended to stdout.
    """
    done = subprocess.run(
        [sys.executable, "-c", _HARNESS.format(heavy=watched), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    *errors, imported = done.stderr.strip().splitlines()
    return done.returncode, done.stdout + "\n".join(errors), json.loads(imported)


@pytest.mark.e2e
def test_emergency_modules_import_no_heavy_stack() -> None:
    code = (
        "import sys, json\n"
        "from boltit.core.light import import_mlflow_light\n"
        "import_mlflow_light()\n"
        f"for m in {EMERGENCY_MODULES!r}: __import__(m)\n"
        f"print(json.dumps(sorted(h for h in {HEAVY_STACKS!r} if h in sys.modules)))\n"
        "print('mlflow' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    heavy, mlflow_loaded = done.stdout.strip().splitlines()
    assert json.loads(heavy) == []
    assert mlflow_loaded == "True"  # the alias-moving client itself is there


@pytest.mark.e2e
def test_monitor_status_modules_import_no_pandas() -> None:
    code = (
        "import sys, json\n"
        "from boltit.core.light import import_mlflow_light\n"
        "import_mlflow_light()\n"
        f"for m in {MONITOR_STATUS_MODULES!r}: __import__(m)\n"
        f"print(json.dumps(sorted(h for h in {MONITOR_STATUS_REFUSED!r} if h in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize(
    "command",
    [
        ["rollback", "--help"],
        ["promote", "--help"],
        ["flags", "set", "--help"],
        ["history", "--help"],
        ["incident", "list", "--help"],
        ["monitor", "status", "--help"],
    ],
    ids=lambda c: " ".join(c),
)
@pytest.mark.e2e
def test_emergency_command_lines_import_no_heavy_stack(command: list[str]) -> None:
    code, out, heavy = _boltit(*command)
    assert code == 0 and "Usage" in out
    assert heavy == []


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        (
            ["drift", "--baseline", "nonsense", "--current", "2026-11-01..2026-11-30"],
            "window 'nonsense': expected",
        ),
        (
            ["drift", "--baseline", "2026-10-31..2026-10-01", "--current-data", "x.csv"],
            "END must come after START",
        ),
        (["drift", "--current", "2026-11-01..2026-11-30"], "give one baseline"),
        (
            ["drift", "--baseline-data", "missing.csv", "--current", "2026-11-01..2026-11-30"],
            "--baseline-data missing.csv: no such file",
        ),
        (["rollback", "--to", "abc"], "model version must be a number, got 'abc'"),
        (["promote", "v3"], "model version must be a number, got 'v3'"),
        (["validate", "2", "--min-accuracy", "high"], "--min-accuracy must be a number"),
        (["flags", "set", "auto-apply", "maybe"], "'maybe' is not one of"),
        (["rollback", "--to-version", "2"], "No such option: --to-version"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
@pytest.mark.e2e
def test_a_bad_argument_is_refused_before_anything_heavy_loads(
    command: list[str], problem: str, tmp_path: Path
) -> None:
    env = {**os.environ, "BOLTIT_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "250"}

    code, out, imported = _boltit(*command, env=env, watched=(*HEAVY_STACKS, "mlflow"))

    assert code == 2, out
    assert problem in out
    assert imported == []


def test_a_version_that_served_is_not_loaded_again(
    target: dict[str, Any], trained_versions: TrainedVersions, broken: str
) -> None:
    """A served version whose artifacts are now unreadable still moves: nothing loads it."""
    client, database, name = target["client"], target["database"], target["name"]
    good, swapped = trained_versions.good, broken
    client.set_model_version_tag(name, swapped, TAG_VALIDATION_STATUS, VALIDATION_PASSED)
    with database.session() as session:  # a replica loaded it once (serving's record)
        audit.record(
            session, action="model_swap", actor="serving", model_name=name, to_version=swapped
        )

    serve_in_turn(target, good)
    promote(**target, version=swapped, actor="alice")
    assert aliases(client, name=name)[PRODUCTION] == swapped
    rollback(**target, actor="bob")
    rollback(**target, actor="bob", to_version=swapped, reason="again")

    moves = [e for e in registry_history(database, model_name=name) if e.actor != "serving"]
    assert [(e.action, e.to_version, (e.details or {})["load_check"]) for e in moves] == [
        ("promote", good, LOADED),
        ("promote", swapped, SKIPPED_AS_SERVED),
        ("rollback", good, SKIPPED_AS_SERVED),
        ("rollback", swapped, SKIPPED_AS_SERVED),
    ]


@pytest.mark.slow
@pytest.mark.e2e
def test_emergency_commands_run_without_heavy_stacks(
    registry_settings: Settings,
    trained_client: MlflowClient,
    trained_versions: TrainedVersions,
    registry_db: Database,
) -> None:
    """The real command lines, each in its own process, as an on-call engineer runs them."""
    env = {
        **os.environ,
        "BOLTIT_STATE_DIR": str(registry_settings.state_dir),
        "BOLTIT_GATES_CONFIG": str(registry_settings.gates_config),
        "COLUMNS": "250",
    }
    good, bad = trained_versions.good, trained_versions.bad
    # Never served: checked by loading it, in a child process with the full stack.
    code, out, heavy = _boltit("promote", good, "--force", "--reason", "setup", env=env)
    assert (code, heavy) == (0, []), out
    code, out, heavy = _boltit("promote", bad, "--force", "--reason", "drill", env=env)
    assert (code, heavy) == (0, []), out
    for command in (
        ["rollback"],
        ["promote", bad, "--force", "--reason", "drill again"],
        ["flags", "set", "auto-apply", "off", "--reason", "drill"],
        ["history"],
        ["incident", "list"],
    ):
        code, out, heavy = _boltit(*command, env=env)
        assert (code, heavy) == (0, []), (command, out)
    code, out, heavy = _boltit("monitor", "status", env=env, watched=MONITOR_STATUS_REFUSED)
    assert (code, heavy) == (0, []), out
    assert "overall:" in out
    name = registry_settings.model_name
    assert aliases(trained_client, name=name)[PRODUCTION] == bad
    moves = [e for e in registry_history(registry_db, model_name=name)]
    assert [(e.action, (e.details or {})["load_check"]) for e in moves] == [
        ("promote", LOADED),
        ("promote", LOADED),
        ("rollback", SKIPPED_AS_SERVED),
        ("promote", SKIPPED_AS_SERVED),
    ]
