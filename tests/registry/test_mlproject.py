"""The MLproject's registry entry points: validate, promote and rollback through ``mlflow run``.

One entry point runs through ``mlflow run`` itself (a process that imports MLflow, then one
for the command). The others are the command ``mlflow run`` would run, rendered by MLflow's
own project loader from the MLproject's parameters and run in this process: for these entry
points ``mlflow run`` adds only that rendering and two process start-ups (a minute or more on
a loaded 2-core machine), and they do not read the project's run.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.projects._project_spec import load_project

from boltit.core.settings import Settings
from boltit.core.vocabulary import PREVIOUS, PRODUCTION
from boltit.registry.lookup import aliases
from tests.console_script import Boltit
from tests.registry.conftest import TrainedVersions

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _mlflow_run(settings: Settings, entry: str, **parameters: str) -> subprocess.CompletedProcess:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "BOLTIT_"))},
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": settings.tracking_uri,
        "BOLTIT_STATE_DIR": str(settings.state_dir),
        "BOLTIT_GATES_CONFIG": str(settings.gates_config),
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    command = [str(BIN / "mlflow"), "run", str(PROJECT), "-e", entry, "--env-manager", "local"]
    for key, value in parameters.items():
        command += ["-P", f"{key}={value}"]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        cwd=settings.state_dir,
        timeout=400,
        check=False,
    )


def _entry_point(boltit: Boltit, entry: str, **parameters: str) -> tuple[int, str, str]:
    """The entry point's command as ``mlflow run`` renders it, run in this process."""
    project = load_project(str(PROJECT))
    command = project.get_entry_point(entry).compute_command(parameters, storage_dir=None)
    program, *args = shlex.split(command)
    assert program == "boltit", command
    return boltit(*args)


@pytest.mark.slow
def test_mlflow_run_validates_promotes_and_rolls_back(
    registry_settings: Settings,
    trained_client: MlflowClient,
    trained_versions: TrainedVersions,
    boltit: Boltit,
) -> None:
    good, bad = trained_versions.good, trained_versions.bad
    name = registry_settings.model_name

    passed = _mlflow_run(registry_settings, "validate", version=good, actor="alice")
    assert passed.returncode == 0, passed.stderr[-3000:]
    code, _, err = _entry_point(boltit, "promote", version=good, actor="alice")
    assert code == 0, err[-3000:]
    assert aliases(trained_client, name=name) == {PRODUCTION: good}

    code, _, err = _entry_point(boltit, "validate", version=bad, actor="bob")
    assert code != 0 and f"v{bad} failed its gates" in err
    code, _, err = _entry_point(boltit, "promote", version=bad, actor="bob")
    assert code != 0 and "has not passed its gates" in err
    assert aliases(trained_client, name=name) == {PRODUCTION: good}

    code, _, err = _entry_point(
        boltit, "promote", version=bad, force="true", reason="drill", actor="bob"
    )
    assert code == 0, err[-3000:]
    assert aliases(trained_client, name=name) == {PRODUCTION: bad, PREVIOUS: good}

    code, _, err = _entry_point(boltit, "rollback", reason="regression", actor="carol")
    assert code == 0, err[-3000:]
    assert aliases(trained_client, name=name) == {PRODUCTION: good}
