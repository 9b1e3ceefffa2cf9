"""``boltit train`` and ``boltit retrain``: thin commands over ``boltit.training.train.train``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from boltit.core.console import err, out
from boltit.core.context import app_context

if TYPE_CHECKING:  # the model stack costs seconds to import; `boltit --help` needs none of it
    import pandas as pd

    from boltit.core.context import AppContext
    from boltit.training.data import TicketDataset
    from boltit.training.train import TrainResult

DataOption = Annotated[
    str | None,
    typer.Option(
        "--data",
        help="Ticket file (.csv, .tsv, .parquet, .json, .jsonl); the built-in generator "
        "when omitted or empty (MLproject passes '').",
    ),
]
TextColumn_ = Annotated[str, typer.Option(help="Column holding the ticket text.")]
LabelColumn = Annotated[str, typer.Option(help="Column holding the category.")]
PriorityColumn = Annotated[
    str | None,
    typer.Option(help="Column holding the priority (default: 'priority' if the file has it)."),
]
RecentDays = Annotated[
    int, typer.Option(help="Add labelled tickets of the store from the last N days.")
]
RowsOption = Annotated[int, typer.Option(help="Tickets to generate when --data is omitted.")]
SeedOption = Annotated[int, typer.Option(help="Seed of the generator, the split and the model.")]
NoRegister = Annotated[
    bool, typer.Option("--no-register", help="Log the run but register no version.")
]
AllowFailing = Annotated[
    bool,
    typer.Option(
        "--allow-failing-data",
        help="Train even if the data-quality suite fails (recorded as data_checks_overridden).",
    ),
]
MinClassRows = Annotated[
    int,
    typer.Option(
        "--min-class-rows",
        help="Fold categories with fewer than N rows into the fallback category "
        "(--other-label) instead of refusing them; 0 (default) is off.",
    ),
]
OtherLabel = Annotated[
    str, typer.Option("--other-label", help="The fallback category of --min-class-rows.")
]
SourceOption = Annotated[
    str, typer.Option(help="Recorded as the version's 'source' tag (cli, mlproject, ...).")
]


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``retrain`` to ``app``."""

    @app.command("train")
    def train_command(
        ctx: typer.Context,
        data: DataOption = None,
        text_column: TextColumn_ = "text",
        label_column: LabelColumn = "category",
        priority_column: PriorityColumn = None,
        rows: RowsOption = 4000,
        seed: SeedOption = 42,
        no_register: NoRegister = False,
        allow_failing_data: AllowFailing = False,
        min_class_rows: MinClassRows = 0,
        other_label: OtherLabel = "Other",
        source: SourceOption = "cli",
    ) -> None:
        """Train the ticket classifier, log the run to MLflow and register a new version."""
        dataset = base_dataset(data, text_column, label_column, priority_column, rows, seed)
        _run(
            ctx,
            dataset,
            seed,
            no_register,
            allow_failing_data,
            source,
            min_class_rows=min_class_rows,
            other_label=other_label,
        )

    @app.command("retrain")
    def retrain_command(
        ctx: typer.Context,
        data: DataOption = None,
        text_column: TextColumn_ = "text",
        label_column: LabelColumn = "category",
        priority_column: PriorityColumn = None,
        include_recent_days: RecentDays = 90,
        rows: RowsOption = 4000,
        seed: SeedOption = 42,
        no_register: NoRegister = False,
        allow_failing_data: AllowFailing = False,
        min_class_rows: MinClassRows = 0,
        other_label: OtherLabel = "Other",
        source: SourceOption = "retrain",
    ) -> None:
        """Retrain on base data plus the agents' corrections from the ticket store.

        A share of the tickets that arrived after the Production version's training
        cut-off joins the model's evaluation set instead, so the set tracks production.
        """
        from boltit.training.data import combine, from_store

        context = app_context(ctx)
        base = base_dataset(data, text_column, label_column, priority_column, rows, seed)
        recent = from_store(context.database, days=include_recent_days)
        out.print(
            f"ticket store: {recent.rows if recent else 0:,} labelled tickets "
            f"from the last {include_recent_days} days"
        )
        additions = None
        if recent is not None:
            recent, additions = route_arrivals(context, recent, seed)
        _run(
            ctx,
            combine(base, recent),
            seed,
            no_register,
            allow_failing_data,
            source,
            evaluation_additions=additions,
            min_class_rows=min_class_rows,
            other_label=other_label,
        )


def route_arrivals(
    context: AppContext, recent: TicketDataset, seed: int
) -> tuple[TicketDataset, pd.DataFrame | None]:
    """Split off the evaluation share of the tickets that arrived after Production's cut-off."""
    from boltit.core.evaluation_sets import serving_cutoff, training_digests
    from boltit.training.data import TicketDataset
    from boltit.training.holdout import split_arrivals
    from boltit.training.train import TrainConfig

    serving = serving_cutoff(context.mlflow_client, context.settings.model_name)
    if serving is None:
        out.print("no Production version: every store ticket trains")
        return recent, None
    version, run_id, cutoff = serving
    arrivals = split_arrivals(
        recent.frame,
        cutoff=cutoff,
        test_size=TrainConfig().test_size,
        seed=seed,
        trained_on=training_digests(context.mlflow_client, run_id),
    )
    when = f"{cutoff:%Y-%m-%d %H:%M:%S} UTC" if cutoff else "unknown"
    seen = (
        f" ({arrivals.already_trained:,} of them v{version} trained on)"
        if arrivals.already_trained
        else ""
    )
    out.print(
        f"{arrivals.after_cutoff:,} arrived after v{version}'s training cut-off ({when}){seen}: "
        f"{len(arrivals.evaluation):,} join the evaluation set, "
        f"{len(arrivals.training):,} store tickets train"
    )
    trained = TicketDataset(
        frame=arrivals.training,
        source=recent.source,
        name=recent.name,
        dropped_rows=recent.dropped_rows,
    )
    return trained, (arrivals.evaluation if len(arrivals.evaluation) else None)


def base_dataset(
    data: str | None,
    text_column: str,
    label_column: str,
    priority_column: str | None,
    rows: int,
    seed: int,
) -> TicketDataset:
    from boltit.training.data import from_generator, load_file

    if not data:
        return from_generator(rows, seed=seed)
    return load_file(
        Path(data),
        text_column=text_column,
        label_column=label_column,
        priority_column=priority_column or None,
    )


def _run(
    ctx: typer.Context,
    dataset: TicketDataset,
    seed: int,
    no_register: bool,
    allow_failing_data: bool,
    source: str,
    *,
    evaluation_additions: pd.DataFrame | None = None,
    min_class_rows: int = 0,
    other_label: str = "Other",
) -> None:
    from boltit.training.model import ModelConfig
    from boltit.training.train import TrainConfig, TrainRequest, train

    context = app_context(ctx)
    # The model's input example is validated by downloading it; no bars in our output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    out.print(
        f"data: {dataset.rows:,} tickets, {dataset.frame['category'].nunique()} categories, "
        f"priority {'yes' if dataset.has_priority else 'no'} ({dataset.source})"
    )
    if dataset.dropped_rows:
        out.print(f"skipped {dataset.dropped_rows:,} rows without text or label")
    with _progress() as step:
        result = train(
            TrainRequest(
                dataset=dataset,
                config=TrainConfig(
                    model=ModelConfig(seed=seed),
                    min_class_rows=min_class_rows,
                    other_label=other_label,
                ),
                register=not no_register,
                source=source,
                allow_failing_data=allow_failing_data,
                evaluation_additions=evaluation_additions,
            ),
            settings=context.settings,
            client=context.mlflow_client,
            database=context.database,
            progress=step,
        )
    _report(result, context.settings.model_name)


@contextmanager
def _progress() -> Iterator[Callable[[str], None]]:
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=None)

        def step(message: str) -> None:
            progress.update(task, description=message)

        yield step


def _report(result: TrainResult, model_name: str) -> None:
    out.print(f"run id: {result.run_id}")
    if result.folded_categories:
        names = ", ".join(f"{c!r} ({n})" for c, n in result.folded_categories.items())
        out.print(
            f"folded {len(result.folded_categories)} rare categories into the fallback "
            f"category (--min-class-rows): {names}"
        )
    if result.model_version:
        out.print(f"registered: {model_name} version {result.model_version} ({result.model_uri})")
    else:
        out.print("registered: no (--no-register)")
    if result.data_checks_passed is False:
        out.print("[yellow]data checks failed and were overridden (--allow-failing-data)[/]")
    out.print(_evaluation_line(result))
    table = Table(title="Headline metrics (the model's evaluation set)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("accuracy", "accuracy", "{:.4f}"),
        ("macro-F1", "macro_f1", "{:.4f}"),
        ("log loss", "log_loss", "{:.4f}"),
        ("expected calibration error", "expected_calibration_error", "{:.4f}"),
        ("auto-apply coverage", "auto_apply_coverage", "{:.1%}"),
        ("auto-apply precision", "auto_apply_precision", "{:.1%}"),
        ("priority accuracy", "priority_accuracy", "{:.4f}"),
        ("fit seconds", "fit_seconds", "{:.1f}"),
        ("predict latency p50 (ms)", "predict_latency_p50_ms", "{:.2f}"),
        ("predict latency p95 (ms)", "predict_latency_p95_ms", "{:.2f}"),
        ("baseline: majority class accuracy", "baseline_majority_accuracy", "{:.4f}"),
        ("baseline: TF-IDF + LinearSVC accuracy", "baseline_tfidf_svm_accuracy", "{:.4f}"),
    ]
    for label, key, fmt in rows:
        if key in result.metrics:
            table.add_row(label, fmt.format(result.metrics[key]))
    out.print(table)
    if "baseline_margin" in result.metrics:
        margin = result.metrics["baseline_margin"]
        verdict = "beats" if margin > 0 else "matches" if margin == 0 else "does not beat"
        out.print(
            f"margin over the plain TF-IDF + LinearSVC baseline: {margin:+.4f} "
            f"(the model {verdict} it on the same evaluation rows)"
        )


def _evaluation_line(result: TrainResult) -> str:
    if result.evaluation_fixed:
        what = f"fixed by this run: {result.evaluation_rows:,} held-out tickets"
    elif result.evaluation_added:
        what = (
            f"revision {result.evaluation_revision}: {result.evaluation_rows:,} tickets "
            f"(+{result.evaluation_added:,} new arrivals)"
        )
    else:
        what = f"revision {result.evaluation_revision}: {result.evaluation_rows:,} tickets"
    return (
        f"evaluation set {what}, digest {result.evaluation_digest[:12]}; "
        f"excluded {result.excluded_evaluation_rows:,} given rows it holds; "
        f"trained on {result.train_rows:,}"
    )
