"""``boltit check-data`` and ``boltit train --data`` accept and refuse the same files."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from mlflow import MlflowClient

from boltit.core.settings import Settings
from boltit.training.generator import generate_tickets
from tests.console_script import Boltit, point_cli_at, run_boltit

COLUMNS = ["--text-column", "Body", "--label-column", "Queue"]


@pytest.fixture
def boltit(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Boltit:
    """``boltit ARGS`` in this process on this test's stores: (exit code, out, err)."""
    point_cli_at(settings, monkeypatch)
    return partial(run_boltit, monkeypatch, capsys)


@pytest.mark.parametrize("suffix", [".tsv", ".jsonl"])
def test_a_file_check_data_accepts_trains(
    suffix: str, settings: Settings, boltit: Boltit, mlflow_client: MlflowClient, tmp_path: Path
) -> None:
    tickets = generate_tickets(1600, seed=11).rename(columns={"text": "Body", "category": "Queue"})
    path = tmp_path / f"export{suffix}"
    if suffix == ".tsv":
        tickets.to_csv(path, sep="\t", index=False)
    else:
        tickets.to_json(path, orient="records", lines=True, date_format="iso")

    code, out, err = boltit("check-data", str(path), *COLUMNS)
    assert code == 0, out + err
    assert "FAIL" not in out

    code, out, err = boltit("train", "--data", str(path), *COLUMNS, "--no-register")
    assert code == 0, err
    assert f"data: {len(tickets):,} tickets" in out
    assert str(path.resolve()) in out  # the dataset's source is the file, not the generator
    (run,) = mlflow_client.search_runs(
        [mlflow_client.get_experiment_by_name(settings.experiment_name).experiment_id]
    )
    assert run.info.status == "FINISHED"


def test_an_unknown_kind_is_refused_by_both_alike(boltit: Boltit, tmp_path: Path) -> None:
    path = tmp_path / "export.xlsx"
    path.write_bytes(b"Body,Queue\nprinter jammed,Hardware\nvpn locked,Access\n")

    refusals = [
        boltit("check-data", str(path), *COLUMNS),
        boltit("train", "--data", str(path), *COLUMNS),
    ]

    expected = (
        f"error: {path}: unsupported file type '.xlsx'; "
        "use one of .csv, .tsv, .parquet, .pq, .json, .jsonl"
    )
    for code, _, err in refusals:
        assert code == 2
        assert err.strip().splitlines() == [expected]
