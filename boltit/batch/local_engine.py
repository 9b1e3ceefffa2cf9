"""The local engine: pandas, one chunk in memory at a time, one part written per chunk.

The classifier is taken out of the pyfunc (``classifier_of``) and called on whole chunks:
``predict_frame`` is the function the pyfunc's own ``predict`` calls, without the per-call
frame conversion, so the answers are the Spark engine's (which goes through the pyfunc).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from boltit.batch.outcome import Decision, decided
from boltit.batch.parts import OutputFolder, output_schema
from boltit.batch.sources import TicketSource, read_chunks
from boltit.core.errors import BadInputError
from boltit.core.model_contract import ModelContractError, TicketClassifierLike, load_classifier

if TYPE_CHECKING:
    from boltit.batch.versions import ScoringVersion
    from boltit.core.db import Database

Advance = Callable[[int], None]


def load_for_scoring(version: ScoringVersion) -> TicketClassifierLike:
    """The version's classifier; BadInputError naming the version when it cannot load."""
    try:
        return load_classifier(version.uri)
    except ModelContractError as exc:
        raise BadInputError(f"{version.label} of {version.name!r} cannot score: {exc}") from exc


def texts_of(chunk_texts: object) -> list[str]:
    """Ticket texts with a missing one scored as empty, as the Spark engine does."""
    import pandas as pd

    series = pd.Series(chunk_texts)
    return series.where(series.notna(), "").astype(str).tolist()


def score_local(
    *,
    source: TicketSource,
    folder: OutputFolder,
    version: ScoringVersion,
    decision: Decision,
    chunk_rows: int,
    database: Database | None,
    advance: Advance,
) -> tuple[int, int]:
    """Score every chunk whose part is not done yet; (parts in the input, parts scored now)."""
    classifier = load_for_scoring(version)
    done = folder.done_parts()
    id_column = source.output_id_column
    schema = output_schema(id_column, numbered=source.id_column is None)
    parts = scored = 0
    for part, chunk in enumerate(read_chunks(source, chunk_rows=chunk_rows, database=database)):
        parts += 1
        if part not in done:
            predictions = classifier.predict_frame(texts_of(chunk[source.text_column]))
            folder.write_part(part, decided(chunk[id_column], predictions, decision), schema)
            scored += 1
        advance(len(chunk))
    return parts, scored
