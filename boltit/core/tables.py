"""Ticket files on disk: one reader, so every command accepts and refuses the same files.

Dtype policy: the columns a caller names as text (the ticket's text, category, priority)
come back as strings exactly as written (``"001"`` stays ``"001"``, never ``1.0``) with
blanks as missing; every other column gets the type its format stores or pandas infers,
so a data check can hold ``confidence`` or ``latency_ms`` to numeric expectations.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import pandas as pd
import pyarrow as pa

from boltit.core.errors import BadInputError

KINDS = {
    ".csv": "CSV",
    ".tsv": "TSV",
    ".parquet": "Parquet",
    ".pq": "Parquet",
    ".json": "JSON",
    ".jsonl": "JSON Lines",
}
"""The suffixes read, and the name each kind has in an error message."""
READABLE_SUFFIXES = tuple(KINDS)

# Enough of a text file to tell binary data from text without reading it all.
_SNIFF_BYTES = 64 * 1024


def read_table(path: Path | str, *, text_columns: Collection[str] = ()) -> pd.DataFrame:
    """Read a CSV, TSV, Parquet, JSON or JSON Lines file; ``text_columns`` as strings.

    Args:
        path: The file; its suffix says how to read it.
        text_columns: Columns to keep as written text (absent ones are ignored).

    Raises:
        BadInputError: A one-line message: the file is missing, empty, binary, not UTF-8,
            malformed, or of a kind not in ``READABLE_SUFFIXES``.
    """
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path}: no such file")
    if not path.is_file():
        raise BadInputError(f"{path}: not a file")
    suffix = path.suffix.lower()
    kind = KINDS.get(suffix)
    if kind is None:
        raise BadInputError(
            f"{path}: unsupported file type {suffix or '(no suffix)'!r}; "
            f"use one of {', '.join(READABLE_SUFFIXES)}"
        )
    if path.stat().st_size == 0:
        raise BadInputError(f"{path}: the dataset is empty (0 bytes)")
    text = {column: str for column in text_columns}
    try:
        if kind == "Parquet":
            return _as_text(pd.read_parquet(path), text_columns)
        _refuse_binary(path, kind)
        if suffix in (".json", ".jsonl"):
            # A dtype for the text columns also stops read_json turning "001" into 1.0.
            frame = pd.read_json(path, lines=suffix == ".jsonl", dtype=text or True)
            return _as_text(frame, text_columns)
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=text or None)
    except UnicodeDecodeError as exc:
        raise BadInputError(
            f"{path}: unreadable bytes (not UTF-8 text: byte 0x{exc.object[exc.start]:02x}); "
            "save the file as UTF-8"
        ) from exc
    except pd.errors.EmptyDataError as exc:
        raise BadInputError(f"{path}: the dataset is empty (no header or rows)") from exc
    except (pa.ArrowException, pd.errors.ParserError, ValueError, OSError) as exc:
        raise BadInputError(f"{path}: unreadable {kind} file ({_first_line(exc)})") from exc


def _refuse_binary(path: Path, kind: str) -> None:
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if b"\x00" in head:
        raise BadInputError(f"{path}: unreadable bytes (binary data, not {kind} text)")


def _as_text(frame: pd.DataFrame, columns: Collection[str]) -> pd.DataFrame:
    """Formats that store types (Parquet, JSON numbers) give the named columns as text."""
    for column in columns:
        if column in frame.columns:
            frame[column] = frame[column].map(str, na_action="ignore")
    return frame


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
