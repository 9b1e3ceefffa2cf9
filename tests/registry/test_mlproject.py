"""The MLproject's registry entry points: validate, promote and rollback through ``mlflow run``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from boltit.core.settings import Settings
from boltit.core.vocabulary import PREVIOUS, PRODUCTION
from boltit.registry.lookup import aliases
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


@pytest.mark.slow
def test_mlflow_run_validates_promotes_and_rolls_back(
    registry_settings: Settings, trained_client: MlflowClient, trained_versions: TrainedVersions
) -> None:
    good, bad = trained_versions.good, trained_versions.bad
    name = registry_settings.model_name

    passed = _mlflow_run(registry_settings, "validate", version=good, actor="alice")
    assert passed.returncode == 0, passed.stderr[-3000:]
    promoted = _mlflow_run(registry_settings, "promote", version=good, actor="alice")
    assert promoted.returncode == 0, promoted.stderr[-3000:]
    assert aliases(trained_client, name=name) == {PRODUCTION: good}

    failed = _mlflow_run(registry_settings, "validate", version=bad, actor="bob")
    assert failed.returncode != 0 and f"v{bad} failed its gates" in failed.stderr
    refused = _mlflow_run(registry_settings, "promote", version=bad, actor="bob")
    assert refused.returncode != 0 and "has not passed its gates" in refused.stderr
    assert aliases(trained_client, name=name) == {PRODUCTION: good}

    forced = _mlflow_run(
        registry_settings, "promote", version=bad, force="true", reason="drill", actor="bob"
    )
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert aliases(trained_client, name=name) == {PRODUCTION: bad, PREVIOUS: good}

    rolled_back = _mlflow_run(registry_settings, "rollback", reason="regression", actor="carol")
    assert rolled_back.returncode == 0, rolled_back.stderr[-3000:]
    assert aliases(trained_client, name=name) == {PRODUCTION: good}
