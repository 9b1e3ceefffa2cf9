"""``validate`` runs the behavioural gates on a registered candidate and records them.

A real MLflow store holds the good trained version and, registered beside it from the
same classifier artifacts, a model-from-code that is just as accurate but keyed on ticket
ids (``behaviour_broken_model_code.py``): ``boltit validate`` refuses it naming the
invariance gate.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from boltit.core.db import Database
from boltit.core.settings import Settings
from boltit.registry.validate import validate
from tests.model_code import register_model_code

CODE = Path(__file__).with_name("behaviour_broken_model_code.py")


def _register_id_keyed(client: MlflowClient, *, name: str, good: str, folder: Path) -> str:
    """The good version's classifier behind the id-keyed wrapper, as a new version."""
    local = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{good}", dst_path=str(folder)
        )
    )
    return register_model_code(CODE, model_dir=local, name=name)


def test_validate_records_the_behavioural_gates_of_a_healthy_version(
    registry_settings: Settings,
    trained_client: MlflowClient,
    registry_db: Database,
    trained_versions,
) -> None:
    name, good = registry_settings.model_name, trained_versions.good
    result = validate(
        client=trained_client,
        database=registry_db,
        name=name,
        version=good,
        actor="alice",
        settings=registry_settings,
    )
    assert result.passed, [r.describe() for r in result.failures]
    tags = trained_client.get_model_version(name, good).tags
    for gate in (
        "behaviour_invariance",
        "behaviour_directional",
        "behaviour_minimum_functionality",
    ):
        assert tags[f"gate.{gate}"].startswith("passed (observed "), tags[f"gate.{gate}"]
        assert "[95% CI " in tags[f"gate.{gate}"]
    assert "- ok: behaviour_invariance: observed 0 [95% CI 0, " in (
        trained_client.get_model_version(name, good).description or ""
    )
    # The report keeps the counts behind each verdict.
    assert result.report_artifact is not None
    run_id, _, path = result.report_artifact.removeprefix("runs:/").partition("/")
    report = json.loads(Path(trained_client.download_artifacts(run_id, path)).read_text())
    behaviour = report["behaviour"]
    assert behaviour["invariance"]["changed"]["total"] == 360
    assert behaviour["functionality"]["failed"]["total"] == 32
    assert behaviour["directional"]["added"]["total"] == 60


def test_boltit_validate_refuses_a_version_keyed_on_ticket_ids_naming_invariance(
    registry_settings: Settings,
    trained_client: MlflowClient,
    trained_versions,
    tmp_path: Path,
    boltit,
) -> None:
    name = registry_settings.model_name
    broken = _register_id_keyed(
        trained_client, name=name, good=trained_versions.good, folder=tmp_path / "good"
    )
    code, out, err = boltit("validate", broken)
    assert code == 1, out + err
    assert "failed its gates: behaviour_invariance: observed 0.1667 [95% CI" in " ".join(
        (out + err).split()
    )
    tags = trained_client.get_model_version(name, broken).tags
    assert tags["gate.behaviour_invariance"].startswith("failed (observed 0.1667")
    # As accurate as the good version: the invariance gate alone refuses it.
    assert tags["gate.min_accuracy"].startswith("passed")
    failed = [k for k, v in tags.items() if k.startswith("gate.") and v.startswith("failed")]
    assert failed == ["gate.behaviour_invariance"]
