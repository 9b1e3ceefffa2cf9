"""``boltit score --compare A B``: two versions re-scored on the same labelled rows.

The figures are the gates' own: accuracy with the Wilson interval of ``Share`` (as the
monthly report's), agreement with the same interval (as the shadow report's), per-category
accuracy from ``category_scores``, and the paired bootstrap of the accuracy drop from
``boltit.registry.paired`` with the gate config's resamples, seed and confidence. On Spark
only the counts per (truth, A's answer, B's answer) come back to the driver.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from boltit.batch.score import EXPERIMENT, Engine, batch_experiment
from boltit.batch.sources import TicketSource, query_source, read_chunks
from boltit.batch.versions import ScoringVersion, resolve_version
from boltit.core import audit
from boltit.core.errors import BadInputError
from boltit.core.evaluation import category_scores
from boltit.registry.behaviour.share import Share
from boltit.registry.gate_config import load_gate_config
from boltit.registry.paired import Drop, paired_drops

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from boltit.core.db import Database
    from boltit.core.settings import Settings

AUDIT_ACTION = "batch_compare"
# The bootstrap's cost grows with rows x resamples; beyond this many rows it runs on a
# seeded sample of them (the figures above it stay exact on every row).
BOOTSTRAP_MAX_ROWS = 200_000
# Only a label from an authenticated client is ground truth (as in the monitor).
STORE_LABELS = (
    "SELECT id, text, feedback_category AS category FROM tickets "
    "WHERE feedback_category IS NOT NULL AND feedback_client IS NOT NULL "
    "ORDER BY created_at, id"
)


@dataclass(frozen=True)
class CompareRequest:
    """Two versions (or aliases) and the labelled rows to score them on."""

    first: str
    second: str
    source: TicketSource | None  # None: the store's labelled tickets
    label_column: str = "category"
    engine: Engine = "local"
    spark_master: str | None = None
    chunk_rows: int = 50_000
    actor: str = "unknown"


@dataclass(frozen=True)
class VersionScores:
    """One version's figures on the labelled rows."""

    label: str
    version: str
    accuracy: float
    interval: tuple[float, float] | None
    macro_f1: float
    per_category: dict[str, float]


@dataclass(frozen=True)
class Comparison:
    """Both versions on the same rows, their agreement and the paired accuracy drop."""

    source: str
    rows: int
    first: VersionScores
    second: VersionScores
    agreement: float
    agreement_interval: tuple[float, float] | None
    confidence: float
    accuracy_drop: Drop
    bootstrap_rows: int
    category_rows: dict[str, int]
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows": self.rows,
            "versions": [asdict(self.first), asdict(self.second)],
            "agreement": self.agreement,
            "agreement_interval": self.agreement_interval,
            "interval_confidence": self.confidence,
            "accuracy_drop": asdict(self.accuracy_drop),
            "accuracy_drop_means": f"{self.first.label} minus {self.second.label}",
            "bootstrap_rows": self.bootstrap_rows,
            "category_rows": self.category_rows,
            "mlflow_run_id": self.run_id,
        }


def compare_versions(
    request: CompareRequest, *, settings: Settings, client: MlflowClient, database: Database
) -> Comparison:
    """Score both versions on the labelled rows and compare them.

    Raises:
        BadInputError: no labelled rows, unreadable input, a version that cannot load.
        NotFoundError: no such version or alias.
    """
    first = resolve_version(client, name=settings.model_name, ref=request.first)
    second = resolve_version(client, name=settings.model_name, ref=request.second)
    source = request.source or query_source(
        database, STORE_LABELS, text_column="text", id_column="id", label_column="category"
    )
    label_column = request.label_column if request.source is not None else "category"
    started = time.perf_counter()
    if request.engine == "spark":
        truth, said_first, said_second = _answers_spark(
            request, source, label_column, first, second, database
        )
    else:
        truth, said_first, said_second = _answers_local(
            request, source, label_column, first, second, database
        )
    if not len(truth):
        raise BadInputError(f"{source.label}: no rows with a label in {label_column!r}")
    config = load_gate_config(settings.gates_config).bootstrap
    figures = _figures(
        source.label, truth, said_first, said_second, first, second, config.confidence
    )
    picked = _bootstrap_rows(len(truth), seed=config.seed)
    drop = paired_drops(
        truth=truth[picked],
        champion=said_first[picked],
        candidate=said_second[picked],
        resamples=config.resamples,
        seed=config.seed,
        confidence=config.confidence,
    ).accuracy
    unlogged = Comparison(**figures, accuracy_drop=drop, bootstrap_rows=len(picked))
    run_id = _log(client, settings, request, unlogged, time.perf_counter() - started)
    comparison = replace(unlogged, run_id=run_id)
    with database.session() as session:
        audit.record(
            session,
            action=AUDIT_ACTION,
            actor=request.actor,
            model_name=settings.model_name,
            from_version=first.version,
            to_version=second.version,
            reason=f"compared v{first.version} and v{second.version} on {source.label}",
            details={
                "rows": comparison.rows,
                "accuracy": [comparison.first.accuracy, comparison.second.accuracy],
                "agreement": comparison.agreement,
                "engine": request.engine,
                "mlflow_run_id": run_id,
            },
        )
    return comparison


def _figures(
    label: str,
    truth: np.ndarray,
    said_first: np.ndarray,
    said_second: np.ndarray,
    first: ScoringVersion,
    second: ScoringVersion,
    confidence: float,
) -> dict[str, Any]:
    rows = len(truth)
    agreed = int((said_first == said_second).sum())
    disagreement = Share(rows - agreed, rows, confidence).interval

    def scores(version: ScoringVersion, said: np.ndarray) -> VersionScores:
        wrong = int((said != truth).sum())
        interval = Share(wrong, rows, confidence).interval
        per = category_scores(truth, said)
        present = set(truth.tolist())
        return VersionScores(
            label=version.label,
            version=version.version,
            accuracy=1.0 - wrong / rows,
            interval=None if interval is None else (1.0 - interval[1], 1.0 - interval[0]),
            macro_f1=per.macro_f1,
            per_category={k: v for k, v in per.recall_by_category().items() if k in present},
        )

    return {
        "source": label,
        "rows": rows,
        "first": scores(first, said_first),
        "second": scores(second, said_second),
        "agreement": agreed / rows,
        "agreement_interval": None
        if disagreement is None
        else (1.0 - disagreement[1], 1.0 - disagreement[0]),
        "confidence": confidence,
        "category_rows": dict(sorted(Counter(truth.tolist()).items())),
    }


def _bootstrap_rows(rows: int, *, seed: int) -> np.ndarray:
    if rows <= BOOTSTRAP_MAX_ROWS:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, BOOTSTRAP_MAX_ROWS, replace=False))


def _answers_local(
    request: CompareRequest,
    source: TicketSource,
    label_column: str,
    first: ScoringVersion,
    second: ScoringVersion,
    database: Database,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from boltit.batch.local_engine import load_for_scoring, texts_of

    models = [load_for_scoring(first), load_for_scoring(second)]
    truth: list[np.ndarray] = []
    answers: list[list[np.ndarray]] = [[], []]
    for chunk in read_chunks(
        source,
        chunk_rows=request.chunk_rows,
        database=database,
        extra_columns=(label_column,),
    ):
        labelled = chunk[chunk[label_column].notna()]
        if labelled.empty:
            continue
        texts = texts_of(labelled[source.text_column])
        truth.append(labelled[label_column].astype(str).to_numpy(dtype=object))
        for model, said in zip(models, answers, strict=True):
            said.append(model.predict_frame(texts)["category"].astype(str).to_numpy(dtype=object))
    if not truth:
        empty = np.array([], dtype=object)
        return empty, empty, empty
    return (
        np.concatenate(truth),
        np.concatenate(answers[0]),
        np.concatenate(answers[1]),
    )


def _answers_spark(
    request: CompareRequest,
    source: TicketSource,
    label_column: str,
    first: ScoringVersion,
    second: ScoringVersion,
    database: Database,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from pyspark.sql import functions as F

    from boltit.batch.spark_engine import (
        DEFAULT_MASTER,
        indexed_input,
        prediction_udf,
        spark_session,
    )

    spark = spark_session(request.spark_master or DEFAULT_MASTER)
    predict_first, predict_second = prediction_udf(spark, first), prediction_udf(spark, second)
    indexed = indexed_input(
        spark,
        source,
        chunk_rows=request.chunk_rows,
        database=database,
        extra_columns=(label_column,),
    )
    try:
        text = F.struct(F.col(source.text_column).alias("text"))
        counts = (
            indexed.filter(F.col(label_column).isNotNull())
            .select(
                F.col(label_column).alias("truth"),
                predict_first(text).getField("category").alias("first"),
                predict_second(text).getField("category").alias("second"),
            )
            .groupBy("truth", "first", "second")
            .count()
            .collect()
        )
    finally:
        indexed.unpersist()
    # Rows rebuilt from their counts: the figures need only (truth, A, B) per row.
    times = np.array([int(r["count"]) for r in counts], dtype=np.int64)
    columns = [
        np.array([str(r[c]) for r in counts], dtype=object) for c in ("truth", "first", "second")
    ]
    truth, said_first, said_second = (np.repeat(c, times) for c in columns)
    return truth, said_first, said_second


def _log(
    client: MlflowClient,
    settings: Settings,
    request: CompareRequest,
    comparison: Comparison,
    seconds: float,
) -> str:
    from mlflow.entities import Metric, Param, RunStatus

    run = client.create_run(
        batch_experiment(client, settings),
        run_name=f"compare-v{comparison.first.version}-v{comparison.second.version}",
        tags={"boltit.kind": "batch_compare", "boltit.actor": request.actor},
    )
    run_id = str(run.info.run_id)
    now = int(time.time() * 1000)
    params = {
        "first_version": comparison.first.version,
        "second_version": comparison.second.version,
        "source": comparison.source[:500],
        "engine": request.engine,
        "experiment": EXPERIMENT,
    }
    metrics = {
        "rows": comparison.rows,
        "accuracy_first": comparison.first.accuracy,
        "accuracy_second": comparison.second.accuracy,
        "agreement": comparison.agreement,
        "accuracy_drop": comparison.accuracy_drop.observed,
        "seconds": seconds,
    }
    client.log_batch(
        run_id,
        params=[Param(k, v) for k, v in params.items()],
        metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
    )
    client.log_dict(run_id, comparison.to_dict(), "batch/compare.json")
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
    return run_id
