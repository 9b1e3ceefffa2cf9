"""Training data sources, each giving one validated frame.

Sources: a ticket file (CSV, TSV, Parquet, JSON, JSON Lines) with column mapping, the
built-in generator, and the labelled tickets of the ticket store. Every frame has columns
``text`` and ``category``, plus ``priority`` and ``created_at`` when the source has them.
Every bad input is a ``BadInputError`` whose message is one line naming the problem.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from boltit.core.db import Database
from boltit.core.errors import BadInputError
from boltit.core.tables import read_table
from boltit.core.tickets import labelled_tickets
from boltit.training.generator import generate_tickets

TEXT = "text"
CATEGORY = "category"
PRIORITY = "priority"
CREATED_AT = "created_at"


@dataclass
class TicketDataset:
    """A validated training frame and where it came from.

    Attributes:
        frame: Columns ``text``, ``category``, optional ``priority``, ``created_at``.
        source: Where it came from (a path, ``generator:...`` or ``store:...``).
        name: Short name for MLflow's dataset lineage.
        dropped_rows: Rows skipped because their text or label was blank.
    """

    frame: pd.DataFrame
    source: str
    name: str
    dropped_rows: int = 0
    _digest: str | None = field(default=None, repr=False)

    @property
    def has_priority(self) -> bool:
        """Whether the frame has priority labels to train a priority head on."""
        return PRIORITY in self.frame.columns and bool(self.frame[PRIORITY].notna().any())

    @property
    def digest(self) -> str:
        """SHA-256 of the training content (text, category, priority), in row order."""
        if self._digest is None:
            self._digest = content_digest(self.frame)
        return self._digest

    @property
    def rows(self) -> int:
        return len(self.frame)


def content_digest(frame: pd.DataFrame) -> str:
    """Hash of what training reads; ``created_at`` is left out so regenerated data matches."""
    columns = [c for c in (TEXT, CATEGORY, PRIORITY) if c in frame.columns]
    digest = hashlib.sha256(",".join(columns).encode())
    for row in frame[columns].itertuples(index=False, name=None):
        digest.update("\x1f".join("" if v is None else str(v) for v in row).encode())
        digest.update(b"\x1e")
    return digest.hexdigest()


def load_file(
    path: Path | str,
    *,
    text_column: str = TEXT,
    label_column: str = CATEGORY,
    priority_column: str | None = None,
) -> TicketDataset:
    """Read a ticket export (``boltit.core.tables.READABLE_SUFFIXES``) and map its columns.

    Args:
        path: The file.
        text_column: Column holding the ticket text.
        label_column: Column holding the category.
        priority_column: Column holding the priority; when None, a ``priority`` column is
            used if the file has one.

    Raises:
        BadInputError: Missing or unreadable file, unknown columns, no usable rows, or a
            single category.
    """
    path = Path(path)
    text_columns = [text_column, label_column, priority_column or PRIORITY]
    # The model learns from strings; other columns keep their types (created_at as dates).
    raw = read_table(path, text_columns=text_columns)
    mapping = {text_column: TEXT, label_column: CATEGORY}
    if priority_column:
        mapping[priority_column] = PRIORITY
    elif PRIORITY in raw.columns and PRIORITY not in mapping:
        mapping[PRIORITY] = PRIORITY
    unknown = [c for c in mapping if c not in raw.columns]
    if unknown:
        raise BadInputError(
            f"{path}: unknown column{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(c) for c in unknown)}; available columns: "
            f"{', '.join(repr(str(c)) for c in raw.columns)} "
            "(map them with --text-column/--label-column/--priority-column)"
        )
    if text_column == label_column:
        raise BadInputError(f"{path}: text and label cannot both be column {text_column!r}")
    frame = raw[list(mapping)].rename(columns=mapping)
    if CREATED_AT in raw.columns and CREATED_AT not in mapping:
        frame[CREATED_AT] = raw[CREATED_AT]
    return validate_frame(frame, source=str(path.resolve()), name=path.stem)


def from_generator(rows: int = 4000, *, seed: int = 7, with_priority: bool = True) -> TicketDataset:
    """Tickets from the built-in deterministic generator."""
    if rows < 2:
        raise BadInputError(f"--rows must be at least 2 to train on (got {rows})")
    frame = generate_tickets(rows, seed=seed)
    if not with_priority:
        frame = frame.drop(columns=[PRIORITY])
    return validate_frame(frame, source=f"generator:rows={rows},seed={seed}", name="generated")


def from_store(
    database: Database, *, days: int, now: datetime | None = None
) -> TicketDataset | None:
    """Labelled tickets of the last ``days`` days from the ticket store; None when none."""
    if days < 0:
        raise BadInputError(f"--include-recent-days must not be negative (got {days})")
    since = (now or datetime.now(UTC)) - timedelta(days=days)
    with database.session() as session:
        frame = labelled_tickets(session, since=since)
    if frame.empty:
        return None
    if frame[PRIORITY].isna().all():
        frame = frame.drop(columns=[PRIORITY])
    return validate_frame(
        frame, source=f"store:last_{days}_days", name="ticket-store", require_classes=False
    )


def combine(base: TicketDataset, extra: TicketDataset | None) -> TicketDataset:
    """Base data plus store tickets; priority kept only when the base has it.

    ``created_at`` is kept when either side has it: the store's dates decide the run's
    training cut-off even when the base file has none.
    """
    if extra is None:
        return base
    columns = [c for c in base.frame.columns if c in (TEXT, CATEGORY, PRIORITY, CREATED_AT)]
    if CREATED_AT in extra.frame.columns and CREATED_AT not in columns:
        columns.append(CREATED_AT)
    extra_frame = extra.frame.reindex(columns=columns)
    frame = pd.concat([base.frame, extra_frame], ignore_index=True)
    return validate_frame(
        frame, source=f"{base.source} + {extra.source}", name=f"{base.name}+{extra.name}"
    )


def validate_frame(
    frame: pd.DataFrame, *, source: str, name: str, require_classes: bool = True
) -> TicketDataset:
    """Normalise types and refuse frames no classifier can learn from.

    Rows with a blank text or label are dropped and counted; the rest must hold at least
    two categories.
    """
    if frame.empty:
        raise BadInputError(f"{source}: the dataset is empty (no rows)")
    clean = pd.DataFrame(
        {
            TEXT: _strings(frame[TEXT]),
            CATEGORY: _strings(frame[CATEGORY]),
        }
    )
    if PRIORITY in frame.columns:
        clean[PRIORITY] = _strings(frame[PRIORITY])
    if CREATED_AT in frame.columns:
        clean[CREATED_AT] = pd.to_datetime(frame[CREATED_AT], utc=True, errors="coerce")
    usable = clean[TEXT].notna() & clean[CATEGORY].notna()
    dropped = int((~usable).sum())
    clean = clean[usable].reset_index(drop=True)
    if clean.empty:
        raise BadInputError(
            f"{source}: the dataset is empty ({dropped} rows, none with both text and label)"
        )
    classes = clean[CATEGORY].unique()
    if require_classes and len(classes) < 2:
        raise BadInputError(
            f"{source}: the label column has a single class ({classes[0]!r}); "
            "a classifier needs at least two categories"
        )
    return TicketDataset(frame=clean, source=source, name=name, dropped_rows=dropped)


def _strings(column: pd.Series) -> pd.Series:
    """Trimmed strings with blanks as missing (numbers in a label column become text)."""
    values = column.astype("object").where(column.notna(), None)
    text = values.map(lambda v: None if v is None else str(v).strip())
    return text.where(text.fillna("").str.len() > 0, None).astype("object")
