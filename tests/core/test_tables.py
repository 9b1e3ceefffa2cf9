"""``boltit.core.tables``: one reader for ticket files, and its dtype policy."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from boltit.core.errors import BadInputError
from boltit.core.tables import READABLE_SUFFIXES, read_table
from boltit.data_checks.frames import read_prediction_file, read_ticket_file
from boltit.training.data import load_file

# Category codes that type inference would turn into numbers (001 -> 1, or 1.0 beside a blank).
ROWS = pd.DataFrame(
    {
        "text": ["printer jammed", "vpn locked out", "new laptop please", "disk full"],
        "category": ["001", "002", None, "010"],
        "confidence": [0.9, 0.5, 0.7, 0.25],
    }
)


def write(frame: pd.DataFrame, path: Path) -> Path:
    suffix = path.suffix
    if suffix in (".csv", ".tsv"):
        frame.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")
    elif suffix in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=suffix == ".jsonl")
    return path


@pytest.mark.parametrize("suffix", READABLE_SUFFIXES)
def test_named_columns_are_text_as_written_and_the_rest_typed(tmp_path: Path, suffix: str) -> None:
    frame = read_table(write(ROWS, tmp_path / f"t{suffix}"), text_columns=("text", "category"))

    assert frame["category"].tolist()[:2] == ["001", "002"]
    assert pd.isna(frame["category"].iloc[2])
    assert frame["category"].iloc[3] == "010"
    assert frame["text"].tolist() == ROWS["text"].tolist()
    assert pd.api.types.is_float_dtype(frame["confidence"])


def test_without_text_columns_types_are_inferred(tmp_path: Path) -> None:
    frame = read_table(write(ROWS, tmp_path / "t.jsonl"))

    assert pd.api.types.is_numeric_dtype(frame["category"])  # what the text policy prevents


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "missing.csv: no such file"),
        ("t.xlsx", b"a,b\n1,2\n", "unsupported file type '.xlsx'; use one of .csv, .tsv,"),
        ("noext", b"a,b\n1,2\n", "unsupported file type '(no suffix)'"),
        ("t.tsv", b"", "the dataset is empty (0 bytes)"),
        ("t.csv", b"\n", "the dataset is empty (no header or rows)"),
        ("t.jsonl", b'{"text": "a"}\n\x00\x01', "unreadable bytes (binary data, not JSON Lines"),
        ("t.tsv", b"text\tcategory\n\xff\xfe broken\tA\n", "not UTF-8 text: byte 0xff"),
        ("t.parquet", b"PAR1 not really parquet", "unreadable Parquet file ("),
        ("t.json", b'{"text": ["a", "b"', "unreadable JSON file ("),
    ],
)
def test_bad_files_are_one_clear_line(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)

    with pytest.raises(BadInputError) as refused:
        read_table(path, text_columns=("text",))

    assert message in str(refused.value)
    assert str(refused.value).startswith(str(path))
    assert "\n" not in str(refused.value)


def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "tickets.csv"
    folder.mkdir()
    with pytest.raises(BadInputError, match="not a file"):
        read_table(folder)


@pytest.mark.parametrize("suffix", [".tsv", ".json", ".jsonl"])
def test_training_and_data_checks_read_a_file_alike(tmp_path: Path, suffix: str) -> None:
    tickets = pd.DataFrame(
        {
            "Body": ["printer jammed", "vpn locked out", "new laptop", "disk full"],
            "Queue": ["007", "008", "007", "008"],
        }
    )
    path = write(tickets, tmp_path / f"export{suffix}")

    trained_on = load_file(path, text_column="Body", label_column="Queue").frame
    checked = read_ticket_file(path, text_column="Body", label_column="Queue")

    assert trained_on["category"].tolist() == ["007", "008", "007", "008"]
    assert checked["category"].tolist() == trained_on["category"].tolist()
    assert checked["text"].tolist() == trained_on["text"].tolist()


def test_a_prediction_log_keeps_versions_as_written(tmp_path: Path) -> None:
    log = pd.DataFrame(
        {
            "model_version": ["3", None, "12"],
            "category": ["Hardware", "Access", "Hardware"],
            "confidence": [0.9, 0.4, 0.8],
            "latency_ms": [1.5, 2.0, 1.1],
        }
    )
    frame = read_prediction_file(write(log, tmp_path / "log.csv"))

    assert frame["model_version"].tolist()[::2] == ["3", "12"]  # not 3.0 beside a blank
    assert pd.api.types.is_float_dtype(frame["latency_ms"])
