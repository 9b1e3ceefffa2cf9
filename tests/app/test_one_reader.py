"""``boltit check-data`` and ``boltit train --data`` accept and refuse the same files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from boltit.app.cli import main
from boltit.core.settings import Settings
from boltit.training.generator import generate_tickets

COLUMNS = ["--text-column", "Body", "--label-column", "Queue"]


def boltit(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """Run ``boltit <args>`` in this process as the console script does."""
    monkeypatch.setattr(sys, "argv", ["boltit", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("BOLTIT_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    monkeypatch.setenv("COLUMNS", "220")
    return settings


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".tsv", ".jsonl"])
def test_a_file_check_data_accepts_trains(
    suffix: str,
    cli_env: Settings,
    mlflow_client: MlflowClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tickets = generate_tickets(1600, seed=11).rename(columns={"text": "Body", "category": "Queue"})
    path = tmp_path / f"export{suffix}"
    if suffix == ".tsv":
        tickets.to_csv(path, sep="\t", index=False)
    else:
        tickets.to_json(path, orient="records", lines=True, date_format="iso")

    code, out, err = boltit(["check-data", str(path), *COLUMNS], monkeypatch, capsys)
    assert code == 0, out + err
    assert "FAIL" not in out

    code, out, err = boltit(
        ["train", "--data", str(path), *COLUMNS, "--no-register"], monkeypatch, capsys
    )
    assert code == 0, err
    assert f"data: {len(tickets):,} tickets" in out
    assert str(path.resolve()) in out  # the dataset's source is the file, not the generator
    (run,) = mlflow_client.search_runs(
        [mlflow_client.get_experiment_by_name(cli_env.experiment_name).experiment_id]
    )
    assert run.info.status == "FINISHED"


def test_an_unknown_kind_is_refused_by_both_alike(
    cli_env: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "export.xlsx"
    path.write_bytes(b"Body,Queue\nprinter jammed,Hardware\nvpn locked,Access\n")

    refusals = [
        boltit(["check-data", str(path), *COLUMNS], monkeypatch, capsys),
        boltit(["train", "--data", str(path), *COLUMNS], monkeypatch, capsys),
    ]

    expected = (
        f"error: {path}: unsupported file type '.xlsx'; "
        "use one of .csv, .tsv, .parquet, .pq, .json, .jsonl"
    )
    for code, _, err in refusals:
        assert code == 2
        assert err.strip().splitlines() == [expected]
