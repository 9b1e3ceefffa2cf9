"""``mlflow run . -e train --env-manager local`` registers a version."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from boltit.training.generator import generate_tickets
from tests.training.conftest import run_to_success

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_mlflow_run_train_registers_a_version(tmp_path: Path) -> None:
    data = tmp_path / "export.csv"
    tickets = generate_tickets(1200, seed=6).drop(columns=["priority"])
    tickets.rename(columns={"text": "Body", "category": "Queue"}).to_csv(data, index=False)
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": tracking,
        "BOLTIT_STATE_DIR": str(tmp_path / "state"),
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    env.pop("MLFLOW_REGISTRY_URI", None)
    command = [str(Path(bin_dir) / "mlflow"), "run", str(PROJECT), "-e", "train"]
    command += ["-P", f"data={data}", "-P", "text_column=Body", "-P", "label_column=Queue"]
    command += ["--env-manager", "local"]
    completed = run_to_success(command, env=env, cwd=tmp_path, timeout=400)
    assert "registered: ticket-classifier version 1" in completed.stdout
    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    version = client.get_model_version("ticket-classifier", "1")
    assert version.tags["source"] == "mlproject"
    assert version.run_id is not None
    run = client.get_run(version.run_id)
    assert run.data.params["text_column"] == "Body"  # the project run is the training run
    assert run.data.metrics["accuracy"] > 0.7
