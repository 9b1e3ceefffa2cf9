"""The Spark engine: ``mlflow.pyfunc.spark_udf`` on ``local[*]`` or a cluster.

Rows are numbered in input order (files in name order, each file in its own order) without
leaving the JVM: ``monotonically_increasing_id`` holds the partition in its upper bits and
the position in the lower ones, and one count per partition turns that into a row number.
Part ``k`` is then rows ``k * chunk_rows`` up to the next, exactly the local engine's part.

Pending parts are scored a group at a time (two per core), one Spark job each: a range
repartition gives every part of the group one task, which writes it to a staging folder;
the driver then renames each part into place and writes its marker. A run killed mid-job
loses only that group's work. On a cluster, ``--output`` must be a folder every executor
and the driver share.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boltit.batch.outcome import Decision, decide_batches
from boltit.batch.parts import OutputFolder
from boltit.batch.sources import ROW_COLUMN, TicketSource, read_chunks
from boltit.core.errors import BadInputError

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import Column, DataFrame, SparkSession

    from boltit.batch.versions import ScoringVersion
    from boltit.core.db import Database

PREDICTION_TYPE = "category string, confidence double, priority string"
"""The pyfunc's output columns as one struct (``TicketClassifierModel.predict``)."""
DEFAULT_MASTER = "local[*]"
_POSITION_BITS = 33  # monotonically_increasing_id: partition << 33 | position in partition


def java_missing() -> str | None:
    """Why Spark cannot start here, or None when a Java runtime is found."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return None
    if shutil.which("java"):
        return None
    return "no Java runtime (java not on PATH, JAVA_HOME unset): install OpenJDK 17"


def spark_session(master: str) -> SparkSession:
    """A session on ``master``; on ``local[...]`` everything binds to 127.0.0.1."""
    missing = java_missing()
    if missing:
        raise BadInputError(f"--engine spark: {missing}")
    # Executors run the model in this interpreter (this venv), not a system Python.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(master)
        .appName("boltit-score")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.shuffle.partitions", "8")
        # The CLI draws its own progress bar; Spark's would interleave with it.
        .config("spark.ui.showConsoleProgress", "false")
    )
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config(
            "spark.driver.host", "127.0.0.1"
        )
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def prediction_udf(spark: SparkSession, version: ScoringVersion) -> Callable[..., Column]:
    """The version's pyfunc as a Spark UDF returning the prediction struct."""
    import mlflow.pyfunc

    try:
        return mlflow.pyfunc.spark_udf(  # type: ignore[no-any-return]
            spark, version.uri, result_type=PREDICTION_TYPE, env_manager="local"
        )
    except Exception as exc:  # MLflow raises many types for a model it cannot fetch
        detail = (str(getattr(exc, "message", exc)).strip().splitlines() or ["?"])[0]
        raise BadInputError(f"{version.label} of {version.name!r} cannot score: {detail}") from exc


def indexed_input(
    spark: SparkSession,
    source: TicketSource,
    *,
    chunk_rows: int,
    database: Database | None,
    extra_columns: tuple[str, ...] = (),
) -> DataFrame:
    """The input as (id, text, extras, row_index, part), cached; ids and text as strings."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    columns = [source.text_column, *extra_columns]
    if source.id_column:
        columns.insert(0, source.id_column)
    if source.kind == "query":
        # The store answers through SQLAlchemy on the driver; read_chunks numbers the rows.
        frame = _query_frame(source, database, chunk_rows, extra_columns)
        raw = spark.createDataFrame(frame).withColumnRenamed(ROW_COLUMN, "row_index")
        if source.id_column is None:
            raw = raw.withColumn(ROW_COLUMN, F.col("row_index"))
        numbered = raw
    else:
        numbered = _numbered(spark, _read_files(spark, source, columns))
        if source.id_column is None:
            numbered = numbered.withColumn(ROW_COLUMN, F.col("row_index"))
    id_column = source.output_id_column
    text = F.coalesce(F.col(source.text_column).cast("string"), F.lit(""))
    id_value = F.col(id_column) if source.id_column is None else F.col(id_column).cast("string")
    selected = numbered.select(
        id_value.alias(id_column),
        text.alias(source.text_column),
        *[F.col(c).cast("string").alias(c) for c in extra_columns],
        F.col("row_index"),
        F.floor(F.col("row_index") / chunk_rows).cast("long").alias("part"),
    )
    return selected.persist(StorageLevel.MEMORY_AND_DISK)


def _query_frame(
    source: TicketSource, database: Database | None, chunk_rows: int, extra: tuple[str, ...]
) -> pd.DataFrame:
    import pandas as pd

    chunks = list(
        read_chunks(source, chunk_rows=chunk_rows, database=database, extra_columns=extra)
    )
    frame = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()
    if source.id_column is not None:
        frame[ROW_COLUMN] = range(len(frame))
    return frame


def _read_files(spark: SparkSession, source: TicketSource, columns: list[str]) -> DataFrame:
    if source.kind == "csv":
        # multiLine with RFC 4180 quotes: the texts pandas reads, newlines inside included.
        reader = spark.read.options(header=True, multiLine=True, escape='"', inferSchema=False)
        return reader.csv(str(source.files[0])).select(*columns)
    frames = [spark.read.parquet(str(f)).select(*columns) for f in source.files]
    # One read per file, unioned in name order: a read of the folder would order by size.
    return reduce(lambda a, b: a.unionByName(b), frames)


def _numbered(spark: SparkSession, frame: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    with_id = frame.withColumn("_mid", F.monotonically_increasing_id()).withColumn(
        "_partition", F.shiftright(F.col("_mid"), _POSITION_BITS)
    )
    counts = sorted(
        (int(r["_partition"]), int(r["count"]))
        for r in with_id.groupBy("_partition").count().collect()
    )
    offsets, first = [], 0
    for partition, rows in counts:
        offsets.append((partition, first))
        first += rows
    offset_frame = spark.createDataFrame(offsets or [(0, 0)], "_partition long, _offset long")
    position = F.col("_mid").bitwiseAND((1 << _POSITION_BITS) - 1)
    return (
        with_id.join(F.broadcast(offset_frame), "_partition")
        .withColumn("row_index", F.col("_offset") + position)
        .drop("_mid", "_partition", "_offset")
    )


def score_spark(
    *,
    spark: SparkSession,
    source: TicketSource,
    folder: OutputFolder,
    version: ScoringVersion,
    decision: Decision,
    chunk_rows: int,
    database: Database | None,
    advance: Callable[[int], None],
) -> tuple[int, int]:
    """Score the pending parts on Spark; (parts in the input, parts scored now)."""
    from pyspark.sql import functions as F

    predict = prediction_udf(spark, version)
    indexed = indexed_input(spark, source, chunk_rows=chunk_rows, database=database)
    try:
        rows_per_part = {
            int(r["part"]): int(r["count"]) for r in indexed.groupBy("part").count().collect()
        }
        parts = len(rows_per_part)
        done = folder.done_parts()
        for part in sorted(done & rows_per_part.keys()):
            advance(rows_per_part[part])
        pending = sorted(set(rows_per_part) - done)
        group_size = max(1, 2 * spark.sparkContext.defaultParallelism)
        id_column = source.output_id_column
        schema = _output_ddl(id_column, numbered=source.id_column is None)
        for start in range(0, len(pending), group_size):
            group = pending[start : start + group_size]
            staging = folder.path / f"_staging-{uuid.uuid4().hex[:8]}"
            selected = (
                indexed.filter(F.col("part").isin(group))
                .repartitionByRange(len(group), "part")
                .sortWithinPartitions("part", "row_index")
            )
            predicted = selected.select(
                F.col(id_column),
                F.col("part"),
                predict(F.struct(F.col(source.text_column).alias("text"))).alias("_p"),
            ).select(id_column, "part", "_p.category", "_p.confidence", "_p.priority")
            decided = predicted.mapInPandas(
                _decider(id_column, decision),
                schema=schema,  # type: ignore[arg-type]
            )
            decided.write.partitionBy("part").parquet(str(staging))
            for part in group:
                _move_part(folder, staging, part)
                advance(rows_per_part[part])
            shutil.rmtree(staging, ignore_errors=True)
        return parts, len(pending)
    finally:
        indexed.unpersist()


def _decider(
    id_column: str, decision: Decision
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def decide(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        return decide_batches(batches, id_column=id_column, decision=decision)

    return decide


def _output_ddl(id_column: str, *, numbered: bool) -> str:
    id_type = "long" if numbered else "string"
    return (
        f"`{id_column}` {id_type}, category string, priority string, confidence double, "
        "model_version string, auto_applied boolean, reason string, part long"
    )


def _move_part(folder: OutputFolder, staging: Path, part: int) -> None:
    """Rename the part's one staged file into place and mark it done."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted((staging / f"part={part}").glob("*.parquet"))
    target = folder.part_file(part)
    if len(files) == 1:
        os.replace(files[0], target)
    else:  # the range repartition keeps a part in one task; join defensively if not
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        pq.write_table(pa.concat_tables([pq.read_table(f) for f in files]), temporary)
        os.replace(temporary, target)
    counted: Any = pq.read_table(target, columns=["category", "auto_applied"]).to_pandas()
    folder.mark_done(part, counted)
