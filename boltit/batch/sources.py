"""What ``boltit score`` reads: a CSV file, a Parquet file, a folder of Parquet parts, a query.

Every source is read in order and cut into chunks of exactly ``chunk_rows`` rows (the last
one shorter): chunk ``k`` holds rows ``k * chunk_rows`` up to the next, on either engine, so
a part of the output always means the same input rows, and a run resumed on another engine
or after a crash skips exactly the parts already written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from boltit.core.errors import BadInputError

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy import Connection

    from boltit.core.db import Database

ROW_COLUMN = "row"
"""The id column of the output when the input has no id column: the row's number, from 0."""

Kind = Literal["csv", "parquet", "parquet-dir", "query"]
_DIGEST_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class TicketSource:
    """One input of a scoring run and how its rows are named.

    ``files`` are read in this order (a folder's ``*.parquet`` files, sorted by name);
    ``id_column`` is None when the input has no such column (rows are then numbered).
    """

    kind: Kind
    files: tuple[Path, ...]
    query: str | None
    text_column: str
    id_column: str | None
    label: str

    @property
    def output_id_column(self) -> str:
        return self.id_column or ROW_COLUMN


def file_source(
    path: Path, *, text_column: str, id_column: str, label_column: str | None = None
) -> TicketSource:
    """A CSV file, a Parquet file or a folder of Parquet files, its columns checked.

    Raises:
        BadInputError: missing or unreadable, an unsupported kind, or no ``text_column``
            (or ``label_column``) in it.
    """
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path}: no such file or folder")
    if path.is_dir():
        files = tuple(sorted(p for p in path.iterdir() if p.suffix.lower() in (".parquet", ".pq")))
        if not files:
            raise BadInputError(f"{path}: a folder with no .parquet files")
        kind: Kind = "parquet-dir"
    elif path.suffix.lower() == ".csv":
        kind, files = "csv", (path,)
    elif path.suffix.lower() in (".parquet", ".pq"):
        kind, files = "parquet", (path,)
    else:
        raise BadInputError(
            f"{path}: unsupported input {path.suffix or '(no suffix)'!r}; "
            "use a .csv file, a .parquet file, a folder of .parquet files or --query"
        )
    columns = _columns(kind, files)
    _require(columns, [text_column, *([label_column] if label_column else [])], str(path))
    return TicketSource(
        kind=kind,
        files=files,
        query=None,
        text_column=text_column,
        id_column=id_column if id_column in columns else None,
        label=str(path),
    )


def query_source(
    database: Database,
    query: str,
    *,
    text_column: str,
    id_column: str,
    label_column: str | None = None,
) -> TicketSource:
    """A read-only SELECT on the project database; its columns are checked on zero rows."""
    if not query.strip():
        raise BadInputError("--query is empty")
    with read_only(database) as connection:
        columns = _query_columns(connection, query)
    _require(columns, [text_column, *([label_column] if label_column else [])], "the query")
    return TicketSource(
        kind="query",
        files=(),
        query=query.strip(),
        text_column=text_column,
        id_column=id_column if id_column in columns else None,
        label="query on the project database",
    )


def _require(columns: list[str], wanted: list[str], where: str) -> None:
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise BadInputError(
            f"{where} has no column {', '.join(repr(c) for c in missing)}; "
            f"its columns: {', '.join(map(repr, columns))}"
        )


def _columns(kind: Kind, files: tuple[Path, ...]) -> list[str]:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if kind == "csv":
            if files[0].stat().st_size == 0:
                raise BadInputError(f"{files[0]}: the file is empty (0 bytes)")
            return [str(c) for c in pd.read_csv(files[0], nrows=0).columns]
        names: list[str] | None = None
        for file in files:
            found = list(pq.read_schema(file).names)
            if names is not None and found != names:
                raise BadInputError(
                    f"{file}: its columns {found} differ from the folder's first part's {names}"
                )
            names = found
        return names or []
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{files[0]}: unreadable bytes (not UTF-8 text)") from exc
    except pd.errors.EmptyDataError as exc:
        raise BadInputError(f"{files[0]}: the file is empty (no header)") from exc
    except (pa.ArrowException, pd.errors.ParserError, ValueError, OSError) as exc:
        what = "CSV" if kind == "csv" else "Parquet"
        raise BadInputError(f"{files[0]}: unreadable {what} file ({_first_line(exc)})") from exc


@contextmanager
def read_only(database: Database) -> Iterator[Connection]:
    """A connection whose transaction refuses writes, on SQLite and PostgreSQL."""
    from sqlalchemy import text

    with database.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.exec_driver_sql("PRAGMA query_only = ON")
            connection.commit()
        else:
            connection.execute(text("SET TRANSACTION READ ONLY"))
        try:
            yield connection
        finally:
            connection.rollback()
            if sqlite:  # the pooled connection goes back writable
                connection.exec_driver_sql("PRAGMA query_only = OFF")
                connection.commit()


def _query_columns(connection: Connection, query: str) -> list[str]:
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        result = connection.execute(text(query))
        if not result.returns_rows:
            raise BadInputError("--query must be a SELECT that returns rows")
        columns = [str(c) for c in result.keys()]  # noqa: SIM118 (a Result, not a dict)
        result.close()
        return columns
    except SQLAlchemyError as exc:
        raise BadInputError(f"--query failed: {_first_line(getattr(exc, 'orig', exc))}") from exc


def input_digest(source: TicketSource) -> str:
    """sha256 of the input's bytes (each file in order) or of the query's text.

    A query's rows are not hashed: the same query on a store that changed since is
    taken as the same input (docs/batch-scoring.md says so).
    """
    digest = hashlib.sha256()
    if source.query is not None:
        digest.update(b"query\0" + " ".join(source.query.split()).encode())
        return digest.hexdigest()
    for file in source.files:
        digest.update(file.name.encode() + b"\0")
        with file.open("rb") as handle:
            while block := handle.read(_DIGEST_BLOCK):
                digest.update(block)
    return digest.hexdigest()


def read_chunks(
    source: TicketSource,
    *,
    chunk_rows: int,
    database: Database | None = None,
    extra_columns: tuple[str, ...] = (),
) -> Iterator[pd.DataFrame]:
    """The input's id (or row number), text and ``extra_columns``, ``chunk_rows`` at a time.

    Memory stays bounded by about two chunks whatever the input's size.
    """
    import pandas as pd

    wanted = [source.text_column, *extra_columns]
    if source.id_column:
        wanted.insert(0, source.id_column)
    first_row = 0
    for frame in _exact_chunks(_raw_frames(source, wanted, chunk_rows, database), chunk_rows):
        frame = frame.reset_index(drop=True)
        if source.id_column is None:
            frame.insert(0, ROW_COLUMN, pd.RangeIndex(first_row, first_row + len(frame)))
        else:
            frame[source.id_column] = frame[source.id_column].astype(str)
        first_row += len(frame)
        yield frame


def _raw_frames(
    source: TicketSource, columns: list[str], chunk_rows: int, database: Database | None
) -> Iterator[pd.DataFrame]:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    text_like = {c: str for c in columns}
    try:
        if source.kind == "csv":
            yield from pd.read_csv(
                source.files[0], usecols=columns, dtype=text_like, chunksize=chunk_rows
            )
        elif source.kind == "query":
            if database is None:
                raise ValueError("a query source needs the database")
            from sqlalchemy import text

            with read_only(database) as connection:
                yield from pd.read_sql(
                    text(source.query or ""),
                    connection,
                    chunksize=chunk_rows,
                )
        else:
            for file in source.files:
                for batch in pq.ParquetFile(file).iter_batches(
                    batch_size=chunk_rows, columns=columns
                ):
                    yield batch.to_pandas()
    except (pa.ArrowException, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise BadInputError(f"{source.label}: unreadable input ({_first_line(exc)})") from exc


def _exact_chunks(frames: Iterator[pd.DataFrame], rows: int) -> Iterator[pd.DataFrame]:
    """Re-cut frames of any sizes into frames of exactly ``rows`` rows (the last shorter)."""
    import pandas as pd

    pending: list[pd.DataFrame] = []
    held = 0
    for frame in frames:
        pending.append(frame)
        held += len(frame)
        while held >= rows:
            joined = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
            yield joined.iloc[:rows]
            rest = joined.iloc[rows:]
            pending, held = ([rest], len(rest)) if len(rest) else ([], 0)
    if held:
        yield pd.concat(pending, ignore_index=True)


def _first_line(exc: object) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
