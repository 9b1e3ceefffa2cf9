"""The commands as a user runs them, and bad input: one clear line, non-zero, nothing moved."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from boltit.core.db import Database
from boltit.core.ports import free_port
from boltit.core.settings import Settings
from boltit.core.vocabulary import PREVIOUS, PRODUCTION
from boltit.registry.history import registry_history
from boltit.registry.lookup import aliases
from tests.registry.conftest import TrainedVersions


def test_validate_promote_rollback_history_commands(
    boltit,
    trained_client: MlflowClient,
    registry_settings: Settings,
    trained_versions: TrainedVersions,
) -> None:
    good, bad = trained_versions.good, trained_versions.bad
    name = registry_settings.model_name

    code, out, _ = boltit("validate", good, "--actor", "alice")
    assert code == 0, out
    assert f"v{good} passed its gates" in out
    assert "min_accuracy" in out

    code, out, _ = boltit("promote", good, "--actor", "alice")
    assert code == 0 and f"Production v- -> v{good}" in out

    code, out, err = boltit("validate", bad, "--actor", "bob")
    assert code == 1
    assert f"v{bad} failed its gates" in err and "min_accuracy: observed 0." in err
    assert len(err.strip().splitlines()) == 1

    code, _, err = boltit("promote", bad, "--actor", "bob")
    assert code == 1 and "has not passed its gates" in err
    assert aliases(trained_client, name=name) == {PRODUCTION: good}

    code, out, _ = boltit("promote", bad, "--force", "--reason", "drill", "--actor", "bob")
    assert code == 0 and "(forced)" in out
    assert aliases(trained_client, name=name) == {PRODUCTION: bad, PREVIOUS: good}

    code, out, _ = boltit("rollback", "--reason", "regression", "--actor", "carol")
    assert code == 0 and f"Production v{bad} -> v{good}" in out
    assert aliases(trained_client, name=name) == {PRODUCTION: good}

    code, out, _ = boltit("history", "--limit", "10")
    assert code == 0
    for word in (
        "validate",
        "promote forced",
        "refused",
        "rollback",
        "carol",
        "regression",
        "drill",
    ):
        assert word in out
    code, out, _ = boltit("history", "--model", "another-model")
    assert code == 0 and "no history yet" in out


def test_bad_input_is_one_line_and_moves_nothing(
    boltit,
    trained_client: MlflowClient,
    registry_settings: Settings,
    trained_versions: TrainedVersions,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name, good = registry_settings.model_name, trained_versions.good
    assert boltit("promote", good, "--force", "--reason", "setup")[0] == 0
    before = aliases(trained_client, name=name)

    # A version whose model artifacts are gone: registered, but it cannot load.
    run_id = trained_client.get_model_version(name, good).run_id
    empty = tmp_path / "deleted-model"
    empty.mkdir()
    broken = str(trained_client.create_model_version(name, empty.as_uri(), run_id).version)

    cases = [
        (("promote", "99"), 2, "has no version 99"),
        (("promote", "abc"), 2, "must be a number"),
        (("promote", good, "--model", "no-such-model"), 2, "no registered model named"),
        (("rollback", "--to", "42"), 2, "has no version 42"),
        (("promote", broken, "--force", "--reason", "try"), 2, "cannot be loaded"),
        (("validate", broken), 2, "cannot be loaded"),
        (("validate", good, "--data", str(tmp_path / "missing.csv")), 2, "does not exist"),
        (("validate", good, "--min-accuracy", "1.5"), 2, "--min-accuracy must be between"),
        (("promote", good, "--force"), 2, "--force needs a --reason"),
    ]
    for args, exit_code, message in cases:
        code, _, err = boltit(*args)
        assert (code, message in err) == (exit_code, True), (args, err)
        assert len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err
    assert aliases(trained_client, name=name) == before

    bad_csv = tmp_path / "tickets.csv"
    bad_csv.write_text("body,label\nmy laptop screen is broken,HR Support\n")
    code, _, err = boltit("validate", good, "--data", str(bad_csv))
    assert code == 2 and "lacks column(s) text, category" in err
    code, _, err = boltit(
        "validate",
        good,
        "--data",
        str(bad_csv),
        "--text-column",
        "body",
        "--label-column",
        "label",
        "--min-accuracy",
        "0.99",
    )
    assert code == 1 and "min_accuracy" in err  # one ticket, with an impossible minimum

    # Unreachable registry: fail fast, one line, nothing recorded.
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    # mlflow.set_registry_uri exports MLFLOW_REGISTRY_URI in-process; a fresh shell has none.
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    for args in (("promote", good), ("rollback",), ("validate", good), ("registry", "sync")):
        code, _, err = boltit(*args)
        assert code == 2 and "is unreachable (connection refused)" in err, (args, err, _)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert aliases(trained_client, name=name) == before
    database = Database(registry_settings.database_url)
    try:
        events = registry_history(database, model_name=name)
    finally:
        database.dispose()
    # The setup promotion, the refused promotion and validation of the unloadable version
    # (audited, issue 13) and the one validation that ran; refusals of bad input leave nothing.
    outcomes = [(e.action, e.to_version, (e.details or {}).get("outcome")) for e in events]
    assert outcomes == [
        ("promote", good, "promoted"),
        ("promote", broken, "refused"),
        ("validate", broken, "refused"),
        ("validate", good, None),
    ]
