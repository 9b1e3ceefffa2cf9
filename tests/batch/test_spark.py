"""The Spark engine on ``local[2]`` (one session for the module): the same rows give the same
answers as the local engine, a part removed from a finished run is the only one redone, and
``--compare`` on Spark gives the local engine's figures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow import MlflowClient

from boltit.batch.compare import CompareRequest, compare_versions
from boltit.batch.score import ScoreRequest, score
from boltit.batch.sources import file_source
from boltit.batch.spark_engine import java_missing, spark_session
from boltit.core.db import Database
from boltit.core.settings import Settings
from tests.batch.conftest import BAD, GOOD, labelled_tickets

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROWS, CHUNK = 3000, 1000


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One ``local[2]`` session for the module (a JVM start costs seconds)."""
    missing = java_missing()
    if missing:
        pytest.skip(f"Spark needs Java: {missing}")
    session = spark_session("local[2]")
    yield session
    session.stop()


def _score(
    engine: str,
    source_path: Path,
    out: Path,
    *,
    settings: Settings,
    client: MlflowClient,
    database: Database,
) -> Any:
    return score(
        ScoreRequest(
            source=file_source(source_path, text_column="text", id_column="id"),
            output=out,
            model="Production",
            engine=engine,  # type: ignore[arg-type]
            chunk_rows=CHUNK,
            spark_master="local[2]",
        ),
        settings=settings,
        client=client,
        database=database,
    )


def test_spark_gives_the_local_engines_answers_and_redoes_only_missing_parts(
    spark: Any,
    scoring_client: MlflowClient,
    database: Database,
    settings: Settings,
    tmp_path: Path,
) -> None:
    source = tmp_path / "tickets.csv"
    tickets = labelled_tickets(ROWS, seed=23)
    tickets.loc[7, "text"] = 'quoted "vpn" text,\nover two lines'  # CSV quoting both ways
    tickets.to_csv(source, index=False)
    common = {"settings": settings, "client": scoring_client, "database": database}
    local = _score("local", source, tmp_path / "local", **common)
    on_spark = _score("spark", source, tmp_path / "spark", **common)
    assert (local.rows, on_spark.rows) == (ROWS, ROWS)
    assert on_spark.complete and on_spark.categories == local.categories

    a = pd.read_parquet(tmp_path / "local").sort_values("id").reset_index(drop=True)
    b = pd.read_parquet(tmp_path / "spark").sort_values("id").reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    assert a["id"].tolist() == b["id"].tolist() and b["id"].is_unique
    assert a["category"].tolist() == b["category"].tolist()
    assert a["priority"].tolist() == b["priority"].tolist()
    assert (a["confidence"] - b["confidence"]).abs().max() <= 1e-9
    assert a["auto_applied"].tolist() == b["auto_applied"].tolist()
    assert a["reason"].tolist() == b["reason"].tolist()
    # Part k holds the same input rows on both engines.
    for part in range(ROWS // CHUNK):
        name = f"part-{part:05d}.parquet"
        assert sorted(pd.read_parquet(tmp_path / "local" / name)["id"]) == sorted(
            pd.read_parquet(tmp_path / "spark" / name)["id"]
        )

    # Resume on Spark: only the part whose marker is gone is scored again.
    out = tmp_path / "spark"
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    (out / "_part-00001.done").unlink()
    (out / "_SUCCESS").unlink()
    again = _score("spark", source, out, **common)
    assert (again.parts_scored, again.rows_scored, again.rows) == (1, CHUNK, ROWS)
    now = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert {k: v for k, v in now.items() if k != "part-00001.parquet"} == {
        k: v for k, v in kept.items() if k != "part-00001.parquet"
    }
    assert pd.read_parquet(out)["id"].is_unique


def test_compare_on_spark_matches_the_local_engine(
    spark: Any,
    scoring_client: MlflowClient,
    database: Database,
    settings: Settings,
    tmp_path: Path,
) -> None:
    source = tmp_path / "labelled.parquet"
    labelled_tickets(1500, seed=29).to_parquet(source)

    def compare(engine: str) -> Any:
        return compare_versions(
            CompareRequest(
                first=GOOD,
                second=BAD,
                source=file_source(
                    source, text_column="text", id_column="id", label_column="category"
                ),
                engine=engine,  # type: ignore[arg-type]
                spark_master="local[2]",
            ),
            settings=settings,
            client=scoring_client,
            database=database,
        )

    local, on_spark = compare("local"), compare("spark")
    assert on_spark.rows == local.rows == 1500
    assert on_spark.first.accuracy == local.first.accuracy > on_spark.second.accuracy
    assert on_spark.second.per_category == local.second.per_category
    assert on_spark.agreement == local.agreement
    assert on_spark.accuracy_drop.observed == pytest.approx(local.accuracy_drop.observed)
    assert on_spark.accuracy_drop.low > 0
