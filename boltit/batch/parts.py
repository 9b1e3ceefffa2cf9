"""The output folder of a scoring run: a manifest, one Parquet part per input chunk, markers.

A part is written under a temporary name and renamed into place, then its marker
(``_part-00007.done``, with the part's row and category counts) is written: a part without a
marker is redone, a part with one is never written again. The manifest pins what the parts
were scored from (input digest, model version, chunking), so resuming into the folder with a
different input or version is refused instead of mixing two runs' answers. ``_SUCCESS`` is
written once every part is done.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boltit.core.errors import BadInputError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

MANIFEST = "_manifest.json"
SUCCESS = "_SUCCESS"
OUTPUT_COLUMNS = ("category", "priority", "confidence", "model_version", "auto_applied", "reason")


@dataclass(frozen=True)
class Manifest:
    """What every part of a folder was scored from; equal manifests may share a folder."""

    input_digest: str
    input: str
    text_column: str
    id_column: str
    chunk_rows: int
    model_name: str
    model_version: str

    def differences(self, other: Manifest) -> list[str]:
        """``field: was -> now`` for every field that differs (``input`` is only a label)."""
        mine, theirs = asdict(self), asdict(other)
        return [
            f"{name}: {mine[name]!r} -> {theirs[name]!r}"
            for name in mine
            if name != "input" and mine[name] != theirs[name]
        ]


@dataclass(frozen=True)
class PartSummary:
    """A finished part's counts, read from its marker."""

    part: int
    rows: int
    categories: dict[str, int]
    auto_applied: int


def output_schema(id_column: str, *, numbered: bool) -> pa.Schema:
    """The Parquet schema of every part: the same on both engines."""
    import pyarrow as pa

    return pa.schema(
        [
            (id_column, pa.int64() if numbered else pa.string()),
            ("category", pa.string()),
            ("priority", pa.string()),
            ("confidence", pa.float64()),
            ("model_version", pa.string()),
            ("auto_applied", pa.bool_()),
            ("reason", pa.string()),
        ]
    )


class OutputFolder:
    """The parts of one scoring run in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def part_file(self, part: int) -> Path:
        return self.path / f"part-{part:05d}.parquet"

    def marker(self, part: int) -> Path:
        # "_" first: Spark, pyarrow and pandas skip it when they read the folder.
        return self.path / f"_part-{part:05d}.done"

    def open(self, manifest: Manifest) -> None:
        """Create the folder with ``manifest``, or check that a started one has the same.

        Raises:
            BadInputError: the folder holds other files, or parts of another input,
                version or chunking.
        """
        if self.path.exists() and not self.path.is_dir():
            raise BadInputError(f"--output {self.path} is a file, not a folder")
        stored = self.path / MANIFEST
        if stored.exists():
            try:
                previous = Manifest(**json.loads(stored.read_text(encoding="utf-8")))
            except (ValueError, TypeError) as exc:
                raise BadInputError(f"{stored}: not a boltit score manifest ({exc})") from exc
            changed = previous.differences(manifest)
            if changed:
                raise BadInputError(
                    f"{self.path} holds parts of another scoring run ({'; '.join(changed)}); "
                    "resume with the same input, version and --chunk-rows, or use a new --output"
                )
            return
        if self.path.exists() and any(self.path.iterdir()):
            raise BadInputError(
                f"--output {self.path} is not empty and holds no {MANIFEST}; use a new folder"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        _write_atomically(stored, json.dumps(asdict(manifest), indent=2).encode())

    def done_parts(self) -> set[int]:
        """Parts whose marker exists (their file is complete)."""
        done = set()
        for marker in self.path.glob("_part-*.done"):
            number = marker.stem.removeprefix("_part-")
            if number.isdigit() and self.part_file(int(number)).exists():
                done.add(int(number))
        return done

    def write_part(self, part: int, frame: pd.DataFrame, schema: pa.Schema) -> PartSummary:
        """Write one part's rows under a temporary name, rename it, then mark it done."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        target = self.part_file(part)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        pq.write_table(table, temporary)
        os.replace(temporary, target)
        return self.mark_done(part, frame)

    def mark_done(self, part: int, frame: pd.DataFrame) -> PartSummary:
        """The marker of a part whose file is in place, with the part's counts."""
        summary = PartSummary(
            part=part,
            rows=len(frame),
            categories=dict(Counter(frame["category"].astype(str))),
            auto_applied=int(frame["auto_applied"].sum()),
        )
        _write_atomically(self.marker(part), json.dumps(asdict(summary)).encode())
        return summary

    def summaries(self) -> list[PartSummary]:
        """Every finished part's counts, in part order."""
        found = []
        for part in sorted(self.done_parts()):
            found.append(PartSummary(**json.loads(self.marker(part).read_text(encoding="utf-8"))))
        return found

    def finish(self, parts: int) -> bool:
        """Write ``_SUCCESS`` when parts 0..parts-1 are all done; True when it was written."""
        if not set(range(parts)) <= self.done_parts():
            return False
        _write_atomically(self.path / SUCCESS, json.dumps({"parts": parts}).encode())
        return True

    def remove_strays(self) -> None:
        """Temporary files a killed run left behind."""
        for stray in self.path.glob(".part-*.tmp"):
            stray.unlink(missing_ok=True)


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def counts_of(summaries: list[PartSummary]) -> dict[str, Any]:
    """Rows, auto-applied rows and rows per category over ``summaries``."""
    categories: Counter[str] = Counter()
    for summary in summaries:
        categories.update(summary.categories)
    return {
        "rows": sum(s.rows for s in summaries),
        "auto_applied": sum(s.auto_applied for s in summaries),
        "categories": dict(sorted(categories.items())),
    }
