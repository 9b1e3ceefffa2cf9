"""Export recent predictions to CSV (the runbook's ``COPY ... TO STDOUT CSV HEADER``)."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import select

from boltit.core.db import Database
from boltit.core.errors import BadInputError
from boltit.core.schema import Ticket, utcnow
from boltit.monitoring import snapshot

EXPORT_COLUMNS = [column.name for column in Ticket.__table__.columns]


def export_predictions(
    database: Database, *, days: float, out: Path, now: datetime | None = None
) -> int:
    """Write every ticket of the last ``days`` days to ``out``; returns the row count.

    The file appears complete or not at all: rows go to a temporary file in the same folder
    that is renamed over ``out`` at the end.

    Raises:
        BadInputError: ``days`` is not positive, or ``out`` cannot be written.
    """
    if days <= 0:
        raise BadInputError(f"--days must be positive, got {days:g}")
    out = Path(out)
    if out.is_dir():
        raise BadInputError(f"--out {out} is a folder; give a file name such as tickets.csv")
    if not out.parent.is_dir():
        raise BadInputError(f"--out folder {out.parent} does not exist")
    since = snapshot.window_start(now or utcnow(), days)
    with database.session() as session:
        rows = session.execute(
            select(Ticket.__table__).where(Ticket.created_at >= since).order_by(Ticket.created_at)
        ).all()
    frame = pd.DataFrame([tuple(row) for row in rows], columns=EXPORT_COLUMNS)
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            frame.to_csv(stream, index=False)
        os.replace(temporary, out)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise BadInputError(f"cannot write {out}: {exc}") from exc
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return len(frame)
