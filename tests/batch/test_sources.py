"""Inputs and the output folder of ``boltit score``: chunking, ids, digests, refusals.

Real files in tmp_path and the project's real SQLite database; no model is needed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from boltit.batch.outcome import Decision, decided
from boltit.batch.parts import Manifest, OutputFolder, output_schema
from boltit.batch.sources import (
    ROW_COLUMN,
    file_source,
    input_digest,
    query_source,
    read_chunks,
)
from boltit.core.db import Database
from boltit.core.errors import BadInputError
from boltit.serving.decision import auto_apply_decision
from tests.batch.conftest import labelled_tickets
from tests.monitoring.tickets import store_tickets, ticket_row


def _chunk_sizes(source: object, rows: int, **kwargs: object) -> list[int]:
    return [len(c) for c in read_chunks(source, chunk_rows=rows, **kwargs)]  # type: ignore[arg-type]


def test_every_kind_of_file_is_cut_into_the_same_exact_chunks(tmp_path: Path) -> None:
    frame = labelled_tickets(1050, seed=3)
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet", row_group_size=170)  # row groups cross chunks
    parts = tmp_path / "parts"
    parts.mkdir()
    for n, start in enumerate((0, 400, 700)):  # uneven files, named out of size order
        frame.iloc[start : start + [400, 300, 350][n]].to_parquet(parts / f"p{n}.parquet")

    for path in (tmp_path / "t.csv", tmp_path / "t.parquet", parts):
        source = file_source(path, text_column="text", id_column="id")
        chunks = list(read_chunks(source, chunk_rows=250))
        assert [len(c) for c in chunks] == [250, 250, 250, 250, 50], path
        joined = pd.concat(chunks, ignore_index=True)
        assert joined["id"].tolist() == frame["id"].tolist(), path
        assert joined["text"].tolist() == frame["text"].tolist(), path


def test_rows_are_numbered_when_the_input_has_no_id(tmp_path: Path) -> None:
    labelled_tickets(30, seed=4).drop(columns=["id"]).to_parquet(tmp_path / "t.parquet")
    source = file_source(tmp_path / "t.parquet", text_column="text", id_column="id")
    assert source.id_column is None and source.output_id_column == ROW_COLUMN
    chunks = list(read_chunks(source, chunk_rows=12))
    assert [c[ROW_COLUMN].tolist() for c in chunks] == [
        list(range(0, 12)),
        list(range(12, 24)),
        list(range(24, 30)),
    ]


def test_bad_inputs_are_refused_with_what_is_wrong(tmp_path: Path) -> None:
    labelled_tickets(5, seed=1).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(BadInputError, match=r"no column 'body'.*'text'"):
        file_source(tmp_path / "t.csv", text_column="body", id_column="id")
    with pytest.raises(BadInputError, match="no column 'label'"):
        file_source(tmp_path / "t.csv", text_column="text", id_column="id", label_column="label")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really parquet")
    with pytest.raises(BadInputError, match="unreadable Parquet file"):
        file_source(tmp_path / "broken.parquet", text_column="text", id_column="id")
    (tmp_path / "t.xlsx").write_bytes(b"x")
    with pytest.raises(BadInputError, match=r"unsupported input '\.xlsx'"):
        file_source(tmp_path / "t.xlsx", text_column="text", id_column="id")
    with pytest.raises(BadInputError, match="no such file"):
        file_source(tmp_path / "missing.csv", text_column="text", id_column="id")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match=r"no \.parquet files"):
        file_source(tmp_path / "empty", text_column="text", id_column="id")


def test_a_query_reads_the_store_and_cannot_write_it(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'boltit.db'}")
    try:
        rows = [
            ticket_row(
                text=f"vpn down {n}",
                category="Access",
                confidence=0.9,
                version="1",
                created_at=pd.Timestamp("2026-11-01", tz="UTC") + pd.Timedelta(minutes=n),
            )
            for n in range(7)
        ]
        store_tickets(database, rows)
        source = query_source(
            database,
            "SELECT id, text FROM tickets ORDER BY created_at",
            text_column="text",
            id_column="id",
        )
        chunks = list(read_chunks(source, chunk_rows=3, database=database))
        assert [len(c) for c in chunks] == [3, 3, 1]
        assert pd.concat(chunks)["id"].tolist() == [r["id"] for r in rows]
        with pytest.raises(BadInputError, match="no column 'body'"):
            query_source(
                database, "SELECT id, text FROM tickets", text_column="body", id_column="id"
            )
        with pytest.raises(BadInputError, match="--query failed"):
            query_source(database, "SELECT nope FROM nowhere", text_column="text", id_column="id")
        # Read-only: a write inside the query is refused and changes nothing.
        with pytest.raises(BadInputError, match=r"--query failed.*readonly|--query must be"):
            query_source(
                database,
                "DELETE FROM tickets RETURNING id, text",
                text_column="text",
                id_column="id",
            )
        again = query_source(
            database, "SELECT id, text FROM tickets", text_column="text", id_column="id"
        )
        assert sum(_chunk_sizes(again, 100, database=database)) == 7
    finally:
        database.dispose()


def test_the_digest_follows_the_bytes_and_the_query(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    labelled_tickets(20, seed=1).to_csv(path, index=False)
    source = file_source(path, text_column="text", id_column="id")
    first = input_digest(source)
    assert input_digest(source) == first
    labelled_tickets(20, seed=2).to_csv(path, index=False)
    assert input_digest(source) != first


def _manifest(**changes: object) -> Manifest:
    values: dict[str, object] = {
        "input_digest": "abc",
        "input": "t.csv",
        "text_column": "text",
        "id_column": "id",
        "chunk_rows": 10,
        "model_name": "ticket-classifier",
        "model_version": "1",
    }
    return Manifest(**(values | changes))  # type: ignore[arg-type]


def test_a_folder_resumes_only_the_same_run(tmp_path: Path) -> None:
    folder = OutputFolder(tmp_path / "out")
    folder.open(_manifest())
    folder.open(_manifest(input="moved/t.csv"))  # the same bytes under another name
    with pytest.raises(BadInputError, match=r"model_version: '1' -> '2'"):
        folder.open(_manifest(model_version="2"))
    with pytest.raises(BadInputError, match=r"input_digest: 'abc' -> 'def'"):
        folder.open(_manifest(input_digest="def"))
    with pytest.raises(BadInputError, match="chunk_rows: 10 -> 20"):
        folder.open(_manifest(chunk_rows=20))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(BadInputError, match=r"not empty and holds no _manifest\.json"):
        OutputFolder(tmp_path / "other").open(_manifest())


def test_a_part_counts_as_done_only_with_its_file_and_marker(tmp_path: Path) -> None:
    folder = OutputFolder(tmp_path / "out")
    folder.open(_manifest())
    predictions = pd.DataFrame(
        {"category": ["Access", "Hardware"], "confidence": [0.9, 0.5], "priority": ["P1", None]}
    )
    decision = Decision(threshold=0.75, enabled=True, model_version="1")
    rows = decided(pd.Series(["a", "b"], name="id"), predictions, decision)
    assert rows["auto_applied"].tolist() == [True, False]
    assert rows["reason"].tolist() == [
        auto_apply_decision(confidence=c, threshold=0.75, enabled=True)[1] for c in (0.9, 0.5)
    ]
    summary = folder.write_part(0, rows, output_schema("id", numbered=False))
    assert summary.rows == 2 and summary.auto_applied == 1
    assert folder.done_parts() == {0}
    folder.part_file(1).write_bytes(b"half written")  # no marker: redone on resume
    assert folder.done_parts() == {0}
    assert not folder.finish(2)
    assert folder.finish(1) and (folder.path / "_SUCCESS").exists()
    # pandas reads the folder as one table: markers and the manifest start with "_".
    assert pd.read_parquet(folder.part_file(0))["id"].tolist() == ["a", "b"]
    off = decided(pd.Series(["a"], name="id"), predictions.iloc[:1], Decision(0.75, False, "1"))
    assert off["auto_applied"].tolist() == [False]


def test_a_query_on_postgresql_is_read_only_too(postgres_url: str) -> None:
    database = Database(postgres_url)
    try:
        rows = [
            ticket_row(
                text=f"printer jam {n}",
                category="Hardware",
                confidence=0.6,
                version="1",
                created_at=pd.Timestamp("2026-11-01", tz="UTC") + pd.Timedelta(minutes=n),
            )
            for n in range(5)
        ]
        store_tickets(database, rows)
        source = query_source(
            database, "SELECT id, text FROM tickets", text_column="text", id_column="id"
        )
        assert sum(_chunk_sizes(source, 2, database=database)) == 5
        with pytest.raises(BadInputError, match=r"--query failed.*read-only"):
            query_source(
                database,
                "DELETE FROM tickets RETURNING id, text",
                text_column="text",
                id_column="id",
            )
        with database.session() as session:
            assert session.execute(text("SELECT count(*) FROM tickets")).scalar() == 5
    finally:
        database.dispose()
