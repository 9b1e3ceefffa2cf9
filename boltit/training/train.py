"""Train, evaluate, log to MLflow and register one version of the ticket classifier."""

from __future__ import annotations

import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.pandas_dataset import from_pandas
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from boltit.core import audit, evaluation_sets
from boltit.core.actors import current_actor
from boltit.core.db import Database
from boltit.core.errors import BadInputError, GateFailedError, RegistryUnavailableError
from boltit.core.evaluation_sets import EvaluationSet
from boltit.core.model_contract import EVAL_SPLIT_ARTIFACT, PREDICTED_CATEGORY_COLUMN
from boltit.core.settings import Settings
from boltit.core.tracking import ensure_experiment
from boltit.training.baseline import BASELINE_COLUMN, Baselines, fit_baselines
from boltit.training.data import CATEGORY, PRIORITY, TEXT, TicketDataset, content_digest
from boltit.training.evaluate import Evaluation, confusion_matrix_png, evaluate, priority_metrics
from boltit.training.holdout import Holdout, plan_holdout
from boltit.training.holdout import split as split  # re-exported: bench/ splits the same way
from boltit.training.model import ModelConfig, TicketClassifier
from boltit.training.rare import DEFAULT_OTHER, Folding, fold_rare_categories
from boltit.training.selection import SearchSpace, Selection, load_search_space

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Logged as a model from code: MLflow executes this file at load time (never imported here,
# since it calls ``set_model`` when run).
MODEL_CODE = Path(__file__).with_name("model_code.py")
DATA_CHECKS_ARTIFACT = "data_checks/training_data.json"
SEARCH_ARTIFACT = "model_selection/candidates.json"
FOLDED_ARTIFACT = "data_checks/folded_categories.json"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainConfig:
    """How a training run splits, fits and measures.

    Attributes:
        model: Classifier hyper-parameters (its ``seed`` also drives the split).
        test_size: Share of rows held out for evaluation (stratified).
        latency_samples: Single-ticket predictions timed for the latency metrics.
        extra_thresholds: Auto-apply thresholds reported besides the configured one.
        search: Candidates cross-validated on the training rows to choose the category
            head (``training/search_space.yaml`` by default); None fits ``model`` as is.
        min_class_rows: Categories with fewer rows are relabelled ``other_label`` before
            the data checks (0: off).
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    search: SearchSpace | None = field(default_factory=load_search_space)
    min_class_rows: int = 0
    other_label: str = DEFAULT_OTHER
    test_size: float = 0.2
    latency_samples: int = 300
    extra_thresholds: tuple[float, ...] = (0.75, 0.9)

    @property
    def seed(self) -> int:
        return self.model.seed


@dataclass
class TrainResult:
    """What a training run produced.

    ``evaluation_*`` describe the model's evaluation set the run measured on (and fixed or
    grew when ``evaluation_added`` > 0); ``excluded_evaluation_rows`` given rows were left
    out of training because the set holds their text.
    """

    run_id: str
    model_version: str | None
    metrics: dict[str, float]
    model_uri: str
    data_hash: str
    rows: int
    data_checks_passed: bool | None = None
    seconds: float = 0.0
    train_rows: int = 0
    excluded_evaluation_rows: int = 0
    evaluation_rows: int = 0
    evaluation_added: int = 0
    evaluation_digest: str = ""
    evaluation_revision: int = 0
    evaluation_fixed: bool = False
    training_cutoff: datetime | None = None
    folded_categories: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainRequest:
    """What to train, under which rules, and on whose behalf.

    Attributes:
        dataset: Validated training data.
        config: Split, model and measurement settings.
        register: Register a new version of ``settings.model_name``.
        source: Who asked (``cli``, ``mlproject``, ``retrain``, ``demo``...); a version tag.
        allow_failing_data: Train even when the data-quality suite fails; the override is
            recorded as tag ``data_checks_overridden=true``.
        actor: Who is recorded in the audit event; the OS user by default.
        evaluation_additions: Rows (``text``, ``category``, optional ``priority``) to add
            to the model's evaluation set before measuring (``retrain``'s new arrivals);
            the grown set is a new revision logged by this run.
    """

    dataset: TicketDataset
    config: TrainConfig = field(default_factory=TrainConfig)
    register: bool = True
    source: str = "cli"
    allow_failing_data: bool = False
    actor: str | None = None
    evaluation_additions: pd.DataFrame | None = None


@dataclass(frozen=True)
class _Fitted:
    """The measured classifier of a run, before it is registered."""

    metrics: dict[str, float]
    model_uri: str


def train(
    request: TrainRequest,
    *,
    settings: Settings,
    client: MlflowClient,
    database: Database | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Check the data, fit, evaluate, log one MLflow run and register a new version.

    The run is measured on the model's evaluation set. The first training of a model fixes
    it (a stratified ``config.test_size`` share of the dataset); later runs fit on every
    given row whose text the set does not hold. Every run records the digests of its
    training rows and its ``training_cutoff``.

    Args:
        request: The data, how to fit it, and the run's provenance.
        settings: Project settings (model name, threshold, experiment).
        client: MLflow client bound to the configured stores.
        database: Project database; a ``train`` audit event is recorded when given.
        progress: Called with a short description of each step.

    Raises:
        GateFailedError: The training data failed its checks and no override was given.
        RegistryUnavailableError: MLflow could not be used.
        BadInputError: Too few rows or categories are left to fit on once the
            evaluation set's rows are excluded.
    """
    step = progress or (lambda _message: None)
    started = time.perf_counter()
    request, folding = _fold_rare_categories(request, step)
    suite = _check_data(request, step)
    data_checks_seconds = time.perf_counter() - started

    began = datetime.now(UTC)
    holdout = _plan(
        client, settings, request.dataset, request.evaluation_additions, request.config, began
    )
    cutoff = evaluation_sets.cutoff_of(holdout.train_frame, started=began)
    try:
        run = _run(
            client,
            request,
            settings=settings,
            holdout=holdout,
            suite=suite,
            folding=folding,
            cutoff=cutoff,
            started=started,
            data_checks_seconds=data_checks_seconds,
            step=step,
        )
    except MlflowException as exc:
        raise RegistryUnavailableError(
            f"MLflow at {settings.tracking_uri} failed: {exc.message}"
        ) from exc

    if database is not None:
        _audit_training(
            database,
            request,
            settings=settings,
            run_id=run.run_id,
            version=run.version,
            holdout=holdout,
            evaluation_set=run.evaluation_set,
            metrics=run.fitted.metrics,
            overridden=_overridden(suite),
        )
    return _result(
        request,
        settings=settings,
        run=run,
        holdout=holdout,
        suite=suite,
        cutoff=cutoff,
        folding=folding,
    )


@dataclass(frozen=True)
class _Run:
    """What the MLflow run of a training left behind."""

    run_id: str
    evaluation_set: EvaluationSet
    fitted: _Fitted
    version: str | None
    seconds: float


def _overridden(suite: Any) -> bool:
    """True when training goes ahead on data that failed its suite."""
    return suite is not None and not suite.success


def _run(
    client: MlflowClient,
    request: TrainRequest,
    *,
    settings: Settings,
    holdout: Holdout,
    suite: Any,
    folding: Folding,
    cutoff: datetime,
    started: float,
    data_checks_seconds: float,
    step: Progress,
) -> _Run:
    """Log inputs, fit and measure, then register, all inside one MLflow run."""
    with mlflow.start_run(experiment_id=ensure_experiment(client, settings)) as run:
        run_id = run.info.run_id
        evaluation_set = _log_inputs(
            request, holdout=holdout, suite=suite, folding=folding, cutoff=cutoff, step=step
        )
        fitted = _fit_and_measure(
            request,
            holdout=holdout,
            settings=settings,
            step=step,
            data_checks_seconds=data_checks_seconds,
        )
        version = _publish(
            client,
            request,
            settings=settings,
            run_id=run_id,
            fitted=fitted,
            holdout=holdout,
            evaluation_set=evaluation_set,
            overridden=_overridden(suite),
            step=step,
        )
        # Timed before the run closes so the run itself carries its total.
        seconds = time.perf_counter() - started
        mlflow.log_metric("train_total_seconds", seconds)
    return _Run(
        run_id=run_id,
        evaluation_set=evaluation_set,
        fitted=fitted,
        version=version,
        seconds=seconds,
    )


def _result(
    request: TrainRequest,
    *,
    settings: Settings,
    run: _Run,
    holdout: Holdout,
    suite: Any,
    cutoff: datetime,
    folding: Folding,
) -> TrainResult:
    version, evaluation_set = run.version, run.evaluation_set
    return TrainResult(
        run_id=run.run_id,
        model_version=version,
        metrics=run.fitted.metrics,
        model_uri=f"models:/{settings.model_name}/{version}" if version else run.fitted.model_uri,
        data_hash=request.dataset.digest,
        rows=request.dataset.rows,
        data_checks_passed=None if suite is None else suite.success,
        seconds=run.seconds,
        train_rows=len(holdout.train_frame),
        excluded_evaluation_rows=holdout.excluded,
        evaluation_rows=evaluation_set.rows,
        evaluation_added=holdout.added,
        evaluation_digest=evaluation_set.digest,
        evaluation_revision=evaluation_set.revision,
        evaluation_fixed=holdout.base is None,
        training_cutoff=cutoff,
        folded_categories=folding.folded,
    )


def _fold_rare_categories(request: TrainRequest, step: Progress) -> tuple[TrainRequest, Folding]:
    """Relabel categories under ``min_class_rows`` before anything looks at the data."""
    config = request.config
    folding = fold_rare_categories(
        request.dataset.frame, min_rows=config.min_class_rows, other=config.other_label
    )
    if not folding.folded:
        return request, folding
    step(folding.describe(config.min_class_rows))
    additions = request.evaluation_additions
    if additions is not None:
        # New arrivals join the evaluation set under the labels the model learns.
        additions = additions.assign(
            **{
                CATEGORY: additions[CATEGORY].where(
                    ~additions[CATEGORY].isin(list(folding.folded)), folding.other
                )
            }
        )
    dataset = replace(request.dataset, frame=folding.frame, _digest=None)
    return replace(request, dataset=dataset, evaluation_additions=additions), folding


def _check_data(request: TrainRequest, step: Progress) -> Any:
    """The training-data suite's verdict; refuses failing data unless overridden."""
    step("checking training data")
    suite = _run_data_checks(request.dataset.frame)
    if suite is not None and not suite.success and not request.allow_failing_data:
        failed = ", ".join(o.label for o in suite.failures)  # names failing categories
        raise GateFailedError(
            f"training data failed its checks ({failed}); nothing was trained or registered "
            "(fix the data, pass --min-class-rows N to fold categories with fewer than N "
            f"rows into {request.config.other_label!r} (--other-label), or --allow-failing-data)"
        )
    return suite


def _log_inputs(
    request: TrainRequest,
    *,
    holdout: Holdout,
    suite: Any,
    folding: Folding,
    cutoff: datetime,
    step: Progress,
) -> EvaluationSet:
    """Tags, params, the evaluation set and the dataset lineage of the active run."""
    dataset, config = request.dataset, request.config
    mlflow.set_tags(
        {
            "source": request.source,
            "data_hash": dataset.digest,
            "git_commit": git_commit(),
            evaluation_sets.TAG_TRAINING_CUTOFF: cutoff.isoformat(),
        }
    )
    if suite is not None and not suite.success:
        mlflow.set_tag("data_checks_overridden", "true")
    step("recording the evaluation set, params and dataset lineage")
    evaluation_set = _record_evaluation_set(holdout)
    _log_params(dataset, holdout, evaluation_set, config)
    _log_datasets(dataset, holdout.train_frame, evaluation_set)
    evaluation_sets.log_training_digests(holdout.train_frame[TEXT])
    if suite is not None:
        mlflow.log_dict(suite.to_dict(), DATA_CHECKS_ARTIFACT)
    mlflow.log_params({"min_class_rows": config.min_class_rows, "other_label": config.other_label})
    if folding.folded:
        mlflow.log_dict(folding.folded, FOLDED_ARTIFACT)
    return evaluation_set


def _fit_and_measure(
    request: TrainRequest,
    *,
    holdout: Holdout,
    settings: Settings,
    step: Progress,
    data_checks_seconds: float,
) -> _Fitted:
    """Fit, measure against the evaluation set and the baselines, and log the model."""
    config = request.config
    train_frame, eval_frame = holdout.train_frame, holdout.evaluation
    step(f"fitting on {len(train_frame):,} tickets")
    fit_started = time.perf_counter()
    classifier = TicketClassifier.fit(
        train_frame[TEXT].tolist(),
        train_frame[CATEGORY].tolist(),
        train_frame[PRIORITY].tolist() if PRIORITY in train_frame.columns else None,
        config=config.model,
        search=config.search,
    )
    fit_seconds = time.perf_counter() - fit_started
    if classifier.selection is not None:
        _log_selection(classifier.selection)

    step(f"evaluating on the {len(eval_frame):,} tickets of the evaluation set")
    evaluation, predictions = _evaluate(classifier, eval_frame, settings, config)
    metrics = dict(evaluation.metrics)
    if classifier.selection is not None:
        # cv_accuracy, cv_macro_f1, category_temperature: with the run's other metrics.
        metrics.update(classifier.selection.as_metrics())
    metrics["fit_seconds"] = fit_seconds
    metrics["data_checks_seconds"] = data_checks_seconds
    metrics["excluded_evaluation_rows"] = float(holdout.excluded)
    step("fitting the baselines on the same rows")
    baselines = fit_baselines(
        train_frame[TEXT].tolist(),
        train_frame[CATEGORY].tolist(),
        eval_frame[TEXT].tolist(),
        eval_frame[CATEGORY].tolist(),
    )
    metrics.update(baselines.metrics(metrics["accuracy"]))
    step("measuring single-ticket latency")
    metrics.update(measure_latency(classifier, eval_frame[TEXT], config.latency_samples))
    mlflow.log_metrics(metrics)
    step("logging evaluation artifacts")
    _log_evaluation_artifacts(evaluation, eval_frame, predictions, train_frame, baselines)

    step("logging the model")
    model_info = _log_model(classifier, eval_frame)
    return _Fitted(metrics=metrics, model_uri=model_info.model_uri)


def _publish(
    client: MlflowClient,
    request: TrainRequest,
    *,
    settings: Settings,
    run_id: str,
    fitted: _Fitted,
    holdout: Holdout,
    evaluation_set: EvaluationSet,
    overridden: bool,
    step: Progress,
) -> str | None:
    """Register the version when asked, and point the model at a new evaluation set."""
    version = None
    if request.register:
        step(f"registering a version of {settings.model_name}")
        version = _register(
            client,
            settings=settings,
            model_uri=fitted.model_uri,
            run_id=run_id,
            dataset=request.dataset,
            source=request.source,
            metrics=fitted.metrics,
            overridden=overridden,
            measured_on=_measured_on(holdout, evaluation_set),
        )
    # A run that registers nothing only grows a set the model already has.
    if holdout.changed and (request.register or holdout.base is not None):
        evaluation_sets.ensure_registered_model(client, settings.model_name)
        evaluation_sets.point_model_at(client, settings.model_name, evaluation_set)
    return version


def _measured_on(holdout: Holdout, evaluation_set: EvaluationSet) -> str:
    return (
        f"Fitted on {len(holdout.train_frame):,} of them ({holdout.excluded:,} excluded: "
        f"the evaluation set holds them); measured on the model's evaluation "
        f"set (revision {evaluation_set.revision}, {evaluation_set.rows:,} rows, "
        f"digest {evaluation_set.digest[:12]})."
    )


def _audit_training(
    database: Database,
    request: TrainRequest,
    *,
    settings: Settings,
    run_id: str,
    version: str | None,
    holdout: Holdout,
    evaluation_set: EvaluationSet,
    metrics: dict[str, float],
    overridden: bool,
) -> None:
    dataset = request.dataset
    with database.session() as session:
        audit.record(
            session,
            action="train",
            actor=current_actor(request.actor),
            model_name=settings.model_name if version else None,
            to_version=version,
            reason=f"trained from {dataset.source}",
            forced=overridden,
            details={
                "run_id": run_id,
                "source": request.source,
                "data_hash": dataset.digest,
                "data_rows": dataset.rows,
                "train_rows": len(holdout.train_frame),
                "excluded_evaluation_rows": holdout.excluded,
                "evaluation_set": {
                    "uri": evaluation_set.uri,
                    "digest": evaluation_set.digest,
                    "rows": evaluation_set.rows,
                    "revision": evaluation_set.revision,
                    "added": holdout.added,
                },
                "accuracy": metrics["accuracy"],
                "macro_f1": metrics["macro_f1"],
                "registered": version is not None,
            },
        )


def _plan(
    client: MlflowClient,
    settings: Settings,
    dataset: TicketDataset,
    additions: pd.DataFrame | None,
    config: TrainConfig,
    began: datetime,
) -> Holdout:
    """The evaluation set this run measures on and the rows it fits on; refuses too few."""
    existing = evaluation_sets.read_evaluation_set(client, settings.model_name)
    holdout = plan_holdout(
        dataset.frame,
        existing=existing,
        additions=additions,
        test_size=config.test_size,
        seed=config.seed,
        now=began,
    )
    left = holdout.train_frame
    if left.empty or left[CATEGORY].nunique() < 2:
        raise BadInputError(
            f"{dataset.source}: {len(left):,} rows in {left[CATEGORY].nunique()} "
            f"categor{'y' if left[CATEGORY].nunique() == 1 else 'ies'} are left to train on "
            f"after excluding the {holdout.excluded:,} rows that the evaluation set of "
            f"{settings.model_name!r} holds; a classifier needs at least two categories"
        )
    return holdout


def _record_evaluation_set(holdout: Holdout) -> EvaluationSet:
    """Log a new or grown set as an artifact of the active run; else the model's current one."""
    if holdout.base is not None and not holdout.changed:
        return holdout.base
    revision = 1 if holdout.base is None else holdout.base.revision + 1
    return evaluation_sets.log_evaluation_set(holdout.evaluation, revision=revision)


def measure_latency(
    classifier: TicketClassifier, texts: pd.Series, samples: int
) -> dict[str, float]:
    """Milliseconds of ``predict_frame`` on one ticket at a time: wall clock and CPU.

    Wall-clock percentiles (``predict_latency_*``, read by the registry gates) include time
    the process waits for a core on a busy machine; CPU-time percentiles do not.
    """
    chosen = texts.iloc[: max(1, samples)].tolist()
    classifier.predict_frame(chosen[:1])  # first call warms caches
    wall, cpu = [], []
    for text in chosen:
        begin, begin_cpu = time.perf_counter(), time.thread_time()
        classifier.predict_frame([text])
        cpu.append((time.thread_time() - begin_cpu) * 1000.0)
        wall.append((time.perf_counter() - begin) * 1000.0)
    return {
        "predict_latency_p50_ms": float(np.percentile(wall, 50)),
        "predict_latency_p95_ms": float(np.percentile(wall, 95)),
        "predict_cpu_p50_ms": float(np.percentile(cpu, 50)),
        "predict_cpu_p95_ms": float(np.percentile(cpu, 95)),
    }


def git_commit() -> str:
    """The project's current commit, or ``unknown`` outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else "unknown"


def _run_data_checks(frame: pd.DataFrame) -> Any:
    from boltit.data_checks.suites import run_training_data_suite

    return run_training_data_suite(frame)


def _log_params(
    dataset: TicketDataset, holdout: Holdout, evaluation_set: EvaluationSet, config: TrainConfig
) -> None:
    mlflow.log_params(
        {
            "data_source": dataset.source[:500],
            "data_hash": dataset.digest,
            "data_rows": dataset.rows,
            "dropped_rows": dataset.dropped_rows,
            "train_rows": len(holdout.train_frame),
            "eval_rows": evaluation_set.rows,
            "excluded_evaluation_rows": holdout.excluded,
            "evaluation_set_uri": evaluation_set.uri,
            "evaluation_set_digest": evaluation_set.digest,
            "evaluation_set_revision": evaluation_set.revision,
            "evaluation_set_added": holdout.added,
            "categories": dataset.frame[CATEGORY].nunique(),
            "priority_head": dataset.has_priority,
            "test_size": config.test_size,
            "random_seed": config.seed,
            **config.model.as_params(),
        }
    )


def _log_selection(selection: Selection) -> None:
    """The search as the run shows it: every candidate's CV score, the chosen one's params
    (its CV metrics are logged with the run's other metrics)."""
    mlflow.log_params(selection.as_params())
    mlflow.log_table(selection.table(), SEARCH_ARTIFACT)
    if selection.note:
        mlflow.set_tag("calibration_note", selection.note[:5000])


def _log_datasets(
    dataset: TicketDataset, train_frame: pd.DataFrame, evaluation_set: EvaluationSet
) -> None:
    """Lineage: the rows fitted on (context ``training``) and the set measured on
    (context ``evaluation``), each with its content digest."""
    columns = [c for c in (TEXT, CATEGORY, PRIORITY) if c in train_frame.columns]
    origin: str | DatasetSource = dataset.source
    if not Path(dataset.source).is_file():
        # Generated and store data have no file to point at; keep the description as a tag.
        origin = CodeDatasetSource(tags={"boltit.source": dataset.source[:500]})
    training_digest = content_digest(train_frame[columns])
    mlflow.log_input(
        from_pandas(
            train_frame[columns],
            source=origin,
            name=dataset.name,
            targets=CATEGORY,
            digest=training_digest[:16],
        ),
        context="training",
        tags={
            "content_hash": training_digest,
            "given_data_hash": dataset.digest,
            "source": dataset.source[:500],
        },
    )
    set_columns = [c for c in (TEXT, CATEGORY, PRIORITY) if c in evaluation_set.frame.columns]
    mlflow.log_input(
        from_pandas(
            evaluation_set.frame[set_columns],
            source=_set_source(evaluation_set),
            name="evaluation-set",
            targets=CATEGORY,
            digest=evaluation_set.digest[:16],
        ),
        context="evaluation",
        tags={
            "content_hash": evaluation_set.digest,
            "uri": evaluation_set.uri,
            "revision": str(evaluation_set.revision),
        },
    )


def _set_source(evaluation_set: EvaluationSet) -> DatasetSource:
    """Where the set's file really is (a file or S3 location), else its ``runs:/`` URI."""
    run_id, _, path = evaluation_set.uri.removeprefix("runs:/").partition("/")
    try:
        location = f"{mlflow.get_run(run_id).info.artifact_uri.rstrip('/')}/{path}"
        with warnings.catch_warnings():
            # MLflow registers its local artifact source twice and warns that it picked one.
            warnings.simplefilter("ignore", UserWarning)
            return resolve_dataset_source(location)
    except MlflowException:
        return CodeDatasetSource(tags={"boltit.source": evaluation_set.uri})


def _evaluate(
    classifier: TicketClassifier,
    eval_frame: pd.DataFrame,
    settings: Settings,
    config: TrainConfig,
) -> tuple[Evaluation, pd.DataFrame]:
    predictions = classifier.predict_frame(eval_frame[TEXT].tolist(), probabilities=True)
    proba = predictions[[f"proba_{c}" for c in classifier.categories]].to_numpy()
    evaluation = evaluate(
        y_true=eval_frame[CATEGORY].tolist(),
        y_pred=predictions["category"].tolist(),
        proba=proba,
        classes=classifier.categories,
        auto_apply_threshold=settings.auto_apply_threshold,
        extra_thresholds=config.extra_thresholds,
    )
    if PRIORITY in eval_frame.columns and classifier.priority_head is not None:
        # Store tickets can join the set without a priority; score the ones that have one.
        labelled = eval_frame[PRIORITY].notna().to_numpy()
        if labelled.any():
            evaluation.metrics.update(
                priority_metrics(
                    eval_frame.loc[labelled, PRIORITY].tolist(),
                    predictions.loc[labelled, "priority"].tolist(),
                )
            )
    return evaluation, predictions


def _log_evaluation_artifacts(
    evaluation: Evaluation,
    eval_frame: pd.DataFrame,
    predictions: pd.DataFrame,
    train_frame: pd.DataFrame,
    baselines: Baselines,
) -> None:
    with tempfile.TemporaryDirectory(prefix="boltit-eval-") as folder:
        root = Path(folder)
        confusion_matrix_png(
            evaluation.confusion, evaluation.classes, root / "confusion_matrix.png"
        )
        mlflow.log_artifact(str(root / "confusion_matrix.png"), "evaluation")
        split_path = root / Path(EVAL_SPLIT_ARTIFACT).name
        columns = [c for c in (TEXT, CATEGORY, PRIORITY) if c in eval_frame.columns]
        logged = eval_frame[columns].copy()
        logged[PREDICTED_CATEGORY_COLUMN] = predictions["category"].to_numpy()
        logged["confidence"] = predictions["confidence"].to_numpy()
        logged[BASELINE_COLUMN] = baselines.tfidf_svm
        if PRIORITY in eval_frame.columns:
            logged["predicted_priority"] = predictions["priority"].to_numpy()
        logged.to_parquet(split_path, index=False)
        mlflow.log_artifact(str(split_path), str(Path(EVAL_SPLIT_ARTIFACT).parent))
    mlflow.log_text(evaluation.report, "evaluation/classification_report.txt")
    mlflow.log_dict(
        {
            "train": {str(k): int(v) for k, v in train_frame[CATEGORY].value_counts().items()},
            "evaluation": evaluation.label_distribution,
        },
        "evaluation/label_distribution.json",
    )


def _signature() -> ModelSignature:
    return ModelSignature(
        inputs=Schema([ColSpec("string", "text")]),
        outputs=Schema(
            [
                ColSpec("string", "category"),
                ColSpec("double", "confidence"),
                ColSpec("string", "priority", required=False),
            ]
        ),
        params=ParamSchema([ParamSpec("probabilities", "boolean", False)]),
    )


def _requirements() -> list[str]:
    pins = []
    for package in ("mlflow", "scikit-learn", "skops", "numpy", "pandas", "scipy"):
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins


def _log_model(classifier: TicketClassifier, eval_frame: pd.DataFrame) -> Any:
    with tempfile.TemporaryDirectory(prefix="boltit-model-") as folder:
        classifier.save(Path(folder) / "classifier")
        example = pd.DataFrame({TEXT: eval_frame[TEXT].head(2).tolist()})
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_CODE),
            artifacts={"classifier": str(Path(folder) / "classifier")},
            signature=_signature(),
            input_example=example,
            pip_requirements=_requirements(),
        )


def _register(
    client: MlflowClient,
    *,
    settings: Settings,
    model_uri: str,
    run_id: str,
    dataset: TicketDataset,
    source: str,
    metrics: dict[str, float],
    overridden: bool,
    measured_on: str = "",
) -> str:
    tags = {
        "data_hash": dataset.digest,
        "rows": str(dataset.rows),
        "git_commit": git_commit(),
        "source": source,
        "run_id": run_id,
    }
    if overridden:
        tags["data_checks_overridden"] = "true"
    registered = mlflow.register_model(model_uri, settings.model_name, tags=tags)
    client.update_model_version(
        settings.model_name,
        registered.version,
        description=" ".join(filter(None, [describe(metrics, dataset), measured_on])),
    )
    return str(registered.version)


def describe(metrics: dict[str, float], dataset: TicketDataset) -> str:
    """One-paragraph summary of a version, shown in the MLflow UI."""
    parts = [
        f"accuracy {metrics['accuracy']:.4f}",
        f"macro-F1 {metrics['macro_f1']:.4f}",
        f"log loss {metrics.get('log_loss', float('nan')):.4f}",
        f"ECE {metrics['expected_calibration_error']:.4f}",
        f"auto-apply coverage {metrics['auto_apply_coverage']:.1%} at precision "
        + (
            f"{metrics['auto_apply_precision']:.1%}"
            if "auto_apply_precision" in metrics
            else "n/a (no ticket reaches the threshold)"
        ),
        f"single-ticket p95 {metrics['predict_latency_p95_ms']:.2f} ms",
    ]
    if "priority_accuracy" in metrics:
        parts.append(f"priority accuracy {metrics['priority_accuracy']:.4f}")
    return (
        f"Trained on {dataset.rows:,} tickets from {dataset.source} "
        f"(data {dataset.digest[:12]}): " + "; ".join(parts) + "."
    )
