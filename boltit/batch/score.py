"""``boltit score``: one scoring run, from the version asked for to the audit event.

The version is fixed first (an alias may move during a long run), the output folder is
opened or resumed against its manifest, the engine scores the parts not done yet, and the
run is logged to MLflow (experiment ``batch-scoring``) and recorded in the audit history
with the counts of every part, the resumed ones included.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus

from boltit.batch.outcome import Decision
from boltit.batch.parts import Manifest, OutputFolder, counts_of
from boltit.batch.sources import TicketSource, input_digest
from boltit.batch.versions import ScoringVersion, resolve_version
from boltit.core import audit
from boltit.core.db import Database
from boltit.core.errors import RegistryUnavailableError
from boltit.core.flags import read_flag
from boltit.core.settings import Settings
from boltit.core.vocabulary import AUTO_APPLY_FLAG

EXPERIMENT = "batch-scoring"
"""The MLflow experiment every scoring and comparison run is logged to."""
AUDIT_ACTION = "batch_score"
Engine = Literal["local", "spark"]


@dataclass(frozen=True)
class ScoreRequest:
    """What to score, with which version, where to, and on which engine."""

    source: TicketSource
    output: Path
    model: str
    engine: Engine = "local"
    chunk_rows: int = 50_000
    spark_master: str | None = None
    actor: str = "unknown"


@dataclass(frozen=True)
class ScoreResult:
    """What a run did; ``rows`` and ``categories`` count every part, resumed ones too."""

    version: ScoringVersion
    input_digest: str
    parts: int
    parts_scored: int
    rows: int
    rows_scored: int
    seconds: float
    auto_applied: int
    categories: dict[str, int] = field(default_factory=dict)
    complete: bool = False
    run_id: str | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows_scored / self.seconds if self.seconds > 0 else 0.0


def score(
    request: ScoreRequest,
    *,
    settings: Settings,
    client: MlflowClient,
    database: Database,
    advance: Callable[[int], None] = lambda rows: None,
) -> ScoreResult:
    """Score ``request.source`` into ``request.output``, resuming a started folder.

    Raises:
        BadInputError: unreadable input, a folder of another run, a version that cannot load.
        NotFoundError: no such version or alias.
    """
    version = resolve_version(client, name=settings.model_name, ref=request.model)
    digest = input_digest(request.source)
    folder = OutputFolder(request.output)
    folder.open(
        Manifest(
            input_digest=digest,
            input=request.source.label,
            text_column=request.source.text_column,
            id_column=request.source.output_id_column,
            chunk_rows=request.chunk_rows,
            model_name=version.name,
            model_version=version.version,
        )
    )
    folder.remove_strays()
    done_before = folder.done_parts()
    with database.session() as session:
        enabled = read_flag(session, AUTO_APPLY_FLAG, default=settings.auto_apply_enabled)
    decision = Decision(
        threshold=settings.auto_apply_threshold, enabled=enabled, model_version=version.version
    )
    run_id = _start_run(client, settings, request, version, digest)
    started = time.perf_counter()
    try:
        parts, scored = _run_engine(request, folder, version, decision, database, advance)
    except BaseException:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    seconds = time.perf_counter() - started
    summaries = folder.summaries()
    counts = counts_of(summaries)
    result = ScoreResult(
        version=version,
        input_digest=digest,
        parts=parts,
        parts_scored=scored,
        rows=counts["rows"],
        rows_scored=sum(s.rows for s in summaries if s.part not in done_before),
        seconds=seconds,
        auto_applied=counts["auto_applied"],
        categories=counts["categories"],
        complete=folder.finish(parts),
        run_id=run_id,
    )
    _finish_run(client, run_id, request, result)
    with database.session() as session:
        audit.record(
            session,
            action=AUDIT_ACTION,
            actor=request.actor,
            model_name=version.name,
            to_version=version.version,
            reason=f"scored {request.source.label} into {request.output}",
            details={
                "input": request.source.label,
                "input_digest": digest,
                "output": str(request.output),
                "engine": request.engine,
                "asked_as": version.asked_as,
                "rows": result.rows,
                "rows_scored": result.rows_scored,
                "parts": parts,
                "parts_resumed": len(done_before & set(range(parts))),
                "auto_applied": result.auto_applied,
                "mlflow_run_id": run_id,
            },
        )
    return result


def _run_engine(
    request: ScoreRequest,
    folder: OutputFolder,
    version: ScoringVersion,
    decision: Decision,
    database: Database,
    advance: Callable[[int], None],
) -> tuple[int, int]:
    common: dict[str, Any] = {
        "source": request.source,
        "folder": folder,
        "version": version,
        "decision": decision,
        "chunk_rows": request.chunk_rows,
        "database": database,
        "advance": advance,
    }
    if request.engine == "spark":
        from boltit.batch.spark_engine import DEFAULT_MASTER, score_spark, spark_session

        spark = spark_session(request.spark_master or DEFAULT_MASTER)
        return score_spark(spark=spark, **common)
    from boltit.batch.local_engine import score_local

    return score_local(**common)


def batch_experiment(client: MlflowClient, settings: Settings) -> str:
    """The ``batch-scoring`` experiment's id, created beside the project's own if missing."""
    from mlflow.exceptions import MlflowException

    try:
        experiment = client.get_experiment_by_name(EXPERIMENT)
        if experiment is not None:
            return str(experiment.experiment_id)
        return str(client.create_experiment(EXPERIMENT, artifact_location=settings.artifact_root))
    except MlflowException as exc:
        raise RegistryUnavailableError(
            f"cannot use MLflow at {settings.tracking_uri}: {exc.message}"
        ) from exc


def _start_run(
    client: MlflowClient,
    settings: Settings,
    request: ScoreRequest,
    version: ScoringVersion,
    digest: str,
) -> str:
    run = client.create_run(
        batch_experiment(client, settings),
        run_name=f"score-v{version.version}",
        tags={"boltit.kind": "batch_score", "boltit.actor": request.actor},
    )
    params = {
        "input": request.source.label[:500],
        "input_kind": request.source.kind,
        "input_digest": digest,
        "model_name": version.name,
        "model_version": version.version,
        "model_asked_as": version.asked_as,
        "engine": request.engine,
        "spark_master": request.spark_master or "",
        "chunk_rows": str(request.chunk_rows),
        "output": str(request.output)[:500],
    }
    client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in params.items()])
    return str(run.info.run_id)


def _finish_run(
    client: MlflowClient, run_id: str, request: ScoreRequest, result: ScoreResult
) -> None:
    now = int(time.time() * 1000)
    figures: dict[str, float] = {
        "rows": result.rows,
        "rows_scored": result.rows_scored,
        "parts": result.parts,
        "parts_scored": result.parts_scored,
        "seconds": result.seconds,
        "rows_per_second": result.rows_per_second,
        "auto_applied": result.auto_applied,
    }
    figures |= {f"category_rows.{name}": n for name, n in result.categories.items()}
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in figures.items()])
    client.log_dict(
        run_id,
        {
            "version": result.version.version,
            "input_digest": result.input_digest,
            "engine": request.engine,
            "rows": result.rows,
            "auto_applied": result.auto_applied,
            "categories": result.categories,
            "complete": result.complete,
        },
        "batch/summary.json",
    )
    status = RunStatus.FINISHED if result.complete else RunStatus.FAILED
    client.set_terminated(run_id, RunStatus.to_string(status))
