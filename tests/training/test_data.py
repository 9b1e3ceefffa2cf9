"""Training data sources: files with column mapping, the generator, the ticket store."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from boltit.core.db import Database
from boltit.core.errors import BadInputError
from boltit.core.schema import Ticket
from boltit.core.tickets import add_feedback
from boltit.training.data import combine, from_generator, from_store, load_file
from boltit.training.generator import generate_tickets
from tests.monitoring.tickets import ticket_row


def _export(tmp_path: Path, suffix: str = ".csv") -> Path:
    frame = generate_tickets(200, seed=9).rename(
        columns={"text": "Body", "category": "Queue", "priority": "Urgency"}
    )
    path = tmp_path / f"export{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_column_mapping_gives_the_standard_frame(tmp_path: Path, suffix: str) -> None:
    dataset = load_file(
        _export(tmp_path, suffix),
        text_column="Body",
        label_column="Queue",
        priority_column="Urgency",
    )
    assert list(dataset.frame.columns) == ["text", "category", "priority", "created_at"]
    assert str(dataset.frame["created_at"].dtype).startswith("datetime64")
    assert dataset.rows == 200
    assert dataset.has_priority
    assert dataset.name == "export"


def test_priority_is_optional(tmp_path: Path) -> None:
    dataset = load_file(_export(tmp_path), text_column="Body", label_column="Queue")
    assert "priority" not in dataset.frame.columns
    assert not dataset.has_priority


def test_blank_rows_are_dropped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("text,category\nprinter jammed,Hardware\n,Access\nreset vpn,\nvpn,Access\n")
    dataset = load_file(path)
    assert dataset.rows == 2
    assert dataset.dropped_rows == 2


def test_digest_follows_content_not_timestamps() -> None:
    a = from_generator(300, seed=1)
    b = from_generator(300, seed=1)
    c = from_generator(300, seed=2)
    assert a.digest == b.digest != c.digest
    assert len(a.digest) == 64


@pytest.mark.parametrize(
    ("content", "name", "kwargs", "message"),
    [
        (None, "missing.csv", {}, "missing.csv: no such file"),
        (b"text,category\nhi there,A\n", "t.csv", {"text_column": "Body"}, "unknown column 'Body'"),
        (b"", "t.csv", {}, "the dataset is empty"),
        (b"text,category\n", "t.csv", {}, "the dataset is empty"),
        (b"text,category\nhello one,A\nhello two,A\n", "t.csv", {}, "single class ('A')"),
        (b"text,category\n\xff\xfebroken,A\nfine,B\n", "t.csv", {}, "unreadable bytes"),
        (b"\x00\x01\x02binary", "t.csv", {}, "unreadable bytes"),
        (b"PAR1 not really parquet", "t.parquet", {}, "unreadable Parquet"),
        (b"a,b\n1,2\n", "t.xlsx", {}, "unsupported file type"),
    ],
)
def test_bad_input_is_one_clear_error(
    tmp_path: Path, content: bytes | None, name: str, kwargs: dict[str, str], message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BadInputError, match=message.replace("(", r"\(").replace(")", r"\)")) as exc:
        load_file(path, **kwargs)
    assert "\n" not in str(exc.value)


def test_unknown_columns_list_the_available_ones(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("Document,Topic_group\nhi there,A\nbye now,B\n")
    with pytest.raises(BadInputError) as exc:
        load_file(path)
    assert "'text', 'category'" in str(exc.value)
    assert "available columns: 'Document', 'Topic_group'" in str(exc.value)


def _ticket(session, index: int, *, created_at: datetime, feedback: str | None) -> None:  # type: ignore[no-untyped-def]
    row = ticket_row(
        text=f"my laptop {index} does not start",
        category="Hardware",
        confidence=0.9,
        version="1",
        created_at=created_at,
    )
    session.add(Ticket(**{**row, "id": f"t{index}", "priority": "P3"}))
    session.flush()
    if feedback:
        add_feedback(session, f"t{index}", category=feedback, priority="P2")


def test_store_gives_recent_labelled_tickets(database: Database) -> None:
    now = datetime.now(UTC)
    with database.session() as session:
        _ticket(session, 1, created_at=now - timedelta(days=2), feedback="Storage")
        _ticket(session, 2, created_at=now - timedelta(days=3), feedback=None)
        _ticket(session, 3, created_at=now - timedelta(days=200), feedback="Hardware")
    recent = from_store(database, days=90)
    assert recent is not None
    assert recent.frame[["text", "category", "priority"]].values.tolist() == [
        ["my laptop 1 does not start", "Storage", "P2"]
    ]
    assert from_store(database, days=1) is None

    combined = combine(from_generator(100, seed=1), recent)
    assert combined.rows == 101
    assert combined.frame.iloc[-1]["category"] == "Storage"
    assert combined.source.endswith("store:last_90_days")


@pytest.mark.real_data
def test_real_data_loads_with_flags_alone(real_data_path: Path) -> None:
    dataset = load_file(real_data_path, text_column="Document", label_column="Topic_group")
    assert dataset.rows == 47_837
    assert dataset.frame["category"].nunique() == 8
    assert not dataset.has_priority
    assert isinstance(dataset.frame, pd.DataFrame)
