"""``check-data``, ``drift`` and ``analyze-recent``: data quality and shift from the CLI.

Great Expectations, scipy and matplotlib load only inside the commands: the root CLI
imports this module for every ``boltit`` call.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from boltit.core.console import out
from boltit.core.context import AppContext, app_context
from boltit.core.errors import BadInputError, GateFailedError
from boltit.data_checks.config import TrainingDataConfig
from boltit.data_checks.windows import DEFAULT_WINDOW_DAYS, Anchor, Window, parse_window

if TYPE_CHECKING:
    import pandas as pd

    from boltit.data_checks.drift import DriftReport
    from boltit.data_checks.suites import SuiteReport


class SuiteName(StrEnum):
    training_data = "training_data"
    prediction_log = "prediction_log"


_VERDICT_STYLE = {"ok": "green", "warning": "yellow", "critical": "bold red", "skipped": "dim"}

TextColumn = Annotated[str, typer.Option(help="Column holding the ticket text.")]
LabelColumn = Annotated[str, typer.Option(help="Column holding the category label.")]


def register(app: typer.Typer) -> None:
    """Add ``check-data``, ``drift`` and ``analyze-recent`` to ``app``."""
    app.command("check-data")(check_data)
    app.command("drift")(drift)
    app.command("analyze-recent")(analyze_recent)


def check_data(
    ctx: typer.Context,
    path: Annotated[
        Path | None, typer.Argument(help="Ticket file (.csv, .tsv, .parquet, .json, .jsonl).")
    ] = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "category",
    priority_column: Annotated[
        str | None, typer.Option(help="Column holding the priority, if any.")
    ] = None,
    from_store: Annotated[
        bool, typer.Option("--from-store", help="Check the ticket store instead of a file.")
    ] = False,
    days: Annotated[int, typer.Option(help="With --from-store: how many days back.")] = 30,
    suite: Annotated[SuiteName, typer.Option(help="Which suite to run.")] = (
        SuiteName.training_data
    ),
    allowed_labels: Annotated[
        str | None, typer.Option(help="Comma-separated allowed categories (training_data).")
    ] = None,
    min_rows_per_class: Annotated[
        int | None, typer.Option(help="Fewest tickets per category (default 50).")
    ] = None,
    categories: Annotated[
        str | None,
        typer.Option(
            help="prediction_log: comma-separated categories every model version knows; "
            "default: read each version's categories from the registry."
        ),
    ] = None,
) -> None:
    """Run a data-quality suite; print each expectation, write Data Docs and a JSON result.

    Exits 1 when any expectation fails.
    """
    from boltit.data_checks import frames, paths, ticket_frames
    from boltit.data_checks.suites import run_prediction_log_suite, run_training_data_suite

    context = app_context(ctx)
    if (path is None) == (not from_store):
        raise BadInputError("give either a PATH or --from-store (not both)")
    if path is not None:
        source = str(path)
        if suite is SuiteName.training_data:
            frame = frames.read_ticket_file(
                path,
                text_column=text_column,
                label_column=label_column,
                priority_column=priority_column,
            )
        else:
            frame = frames.read_prediction_file(path)
    else:
        since = ticket_frames.days_ago(days)
        source = f"ticket store, last {days} days"
        with context.database.session() as session:
            if suite is SuiteName.training_data:
                from boltit.core.tickets import labelled_tickets

                frame = labelled_tickets(session, since=since)
            else:
                frame = ticket_frames.prediction_log(session, since=since)
        if frame.empty:
            kind = "labelled tickets" if suite is SuiteName.training_data else "predictions"
            raise BadInputError(f"no {kind} in the ticket store in the last {days} days")

    docs_dir = paths.data_docs_dir(context.settings)
    with out.status(f"Running {suite.value} on {len(frame):,} rows from {source}…"):
        if suite is SuiteName.training_data:
            report = run_training_data_suite(
                frame,
                config=_training_config(min_rows_per_class, allowed_labels),
                data_docs_dir=docs_dir,
            )
        else:
            known = _known_categories(context, frame, categories)
            report = run_prediction_log_suite(frame, known_categories=known, data_docs_dir=docs_dir)
    result_path = paths.result_path(context.settings, report.suite)
    report.write_json(result_path)
    _print_suite(report, source)
    out.print(f"Data Docs: {report.data_docs}")
    out.print(f"JSON result: {result_path}")
    if not report.success:
        names = ", ".join(o.name for o in report.failures)
        raise GateFailedError(
            f"{report.suite}: {len(report.failures)} of {len(report.outcomes)} "
            f"expectations failed: {names}"
        )


def drift(
    ctx: typer.Context,
    baseline_data: Annotated[
        Path | None, typer.Option(help="Baseline ticket file (text and category columns).")
    ] = None,
    current_data: Annotated[Path | None, typer.Option(help="Current ticket file.")] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            help="Baseline window from the ticket store: START..END, or one date DATE "
            "(the --window-days days starting on DATE)."
        ),
    ] = None,
    current: Annotated[
        str | None,
        typer.Option(
            help="Current window from the ticket store: START..END, or one date DATE "
            "(the --window-days days ending on DATE, DATE included)."
        ),
    ] = None,
    window_days: Annotated[
        int, typer.Option(help="Days a single --baseline/--current date stands for.")
    ] = DEFAULT_WINDOW_DAYS,
    baseline_run: Annotated[
        str | None,
        typer.Option(help="Training run whose evaluation/eval_split.parquet is the baseline."),
    ] = None,
    model_version: Annotated[
        str | None,
        typer.Option(help="Registered version whose vectorizer defines the known vocabulary."),
    ] = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "category",
) -> None:
    """Compare a baseline with current tickets; write an HTML report with plots.

    Exits 1 when any signal crosses its critical threshold.
    """
    # Every argument is checked before pandas, scipy and MLflow load: a typo costs a second.
    if sum(x is not None for x in (baseline_data, baseline, baseline_run)) != 1:
        raise BadInputError("give one baseline: --baseline-data, --baseline or --baseline-run")
    if sum(x is not None for x in (current_data, current)) != 1:
        raise BadInputError("give one current set: --current-data or --current")
    # One date, as in the runbook: the baseline week starts there, the current week ends there.
    anchors: tuple[tuple[str, str | None, Anchor], ...] = (
        ("baseline", baseline, "starting"),
        ("current", current, "ending"),
    )
    windows = {
        label: parse_window(w, single=anchor, days=window_days)
        for label, w, anchor in anchors
        if w is not None
    }
    for option, path in (("--baseline-data", baseline_data), ("--current-data", current_data)):
        if path is not None and not path.is_file():
            raise BadInputError(f"{option} {path}: no such file")
    for label, window in windows.items():
        out.print(f"{label} window: {window.label} (UTC)")

    from boltit.data_checks import paths, ticket_frames
    from boltit.data_checks.drift import detect_drift, load_drift_config, vocabulary_from_model
    from boltit.data_checks.drift_report import write_html_report

    context = app_context(ctx)
    columns = {"text_column": text_column, "label_column": label_column}
    config = load_drift_config(context.settings.drift_config)

    with out.status("Loading tickets…"):
        current_frame, current_label = _drift_side(
            context, current_data, windows.get("current"), columns
        )
        from_store = current is not None
        if baseline_run is not None:
            baseline_frame = ticket_frames.training_run_baseline(
                context.mlflow_client, baseline_run, predictions=from_store
            )
            baseline_label = f"run {baseline_run} evaluation split"
        else:
            baseline_frame, baseline_label = _drift_side(
                context, baseline_data, windows.get("baseline"), columns
            )
        vocabulary = None
        if model_version is not None:
            uri = f"models:/{context.settings.model_name}/{model_version}"
            _ = context.mlflow_client  # points MLflow at the configured stores
            vocabulary = vocabulary_from_model(uri)
    with out.status("Measuring shift…"):
        report = detect_drift(
            baseline_frame,
            current_frame,
            config=config,
            vocabulary=vocabulary,
            baseline_label=baseline_label,
            current_label=current_label,
        )
        report = write_html_report(report, directory=paths.drift_dir(context.settings))
    report.html_path.with_suffix(".json").write_text(  # type: ignore[union-attr]
        json.dumps(report.to_dict(), indent=2), encoding="utf-8"
    )
    _print_drift(report)
    out.print(f"HTML report: {report.html_path}")
    if report.critical:
        names = ", ".join(s.signal for s in report.signals if s.verdict.value == "critical")
        raise GateFailedError(f"drift: critical shift in {names}")


def analyze_recent(
    ctx: typer.Context,
    days: Annotated[int, typer.Option(help="How many days back.")] = 7,
    lowest: Annotated[int, typer.Option(help="How many lowest-confidence tickets to list.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Summarise recent tickets: volume, category mix, low-confidence share, least sure tickets."""
    from boltit.data_checks import ticket_frames
    from boltit.data_checks.recent import summarize_recent

    context = app_context(ctx)
    if lowest < 0:
        raise BadInputError(f"--lowest must not be negative (got {lowest})")
    threshold = context.settings.auto_apply_threshold
    with context.database.session() as session:
        summary = summarize_recent(
            session,
            since=ticket_frames.days_ago(days),
            low_confidence_below=threshold,
            lowest=lowest,
        )
    if as_json:
        out.print_json(json.dumps(summary.to_dict()))
        return
    if not summary.volume:
        out.print(f"No tickets in the last {days} days.")
        return
    versions = ", ".join(f"v{v}: {n:,}" for v, n in summary.versions.items())
    out.print(
        f"[bold]{summary.volume:,}[/] tickets in the last {days} days ({versions}); "
        f"[bold]{summary.low_confidence_share:.1%}[/] below confidence {threshold:g}."
    )
    table = Table(title="Category mix, least confident first")
    for name in ("category", "tickets", "share", "mean confidence", f"< {threshold:g}"):
        table.add_column(name, justify="left" if name == "category" else "right")
    for c in summary.categories:
        table.add_row(
            c.category,
            f"{c.tickets:,}",
            f"{c.share:.1%}",
            f"{c.mean_confidence:.3f}",
            f"{c.low_confidence_share:.1%}",
        )
    out.print(table)
    if summary.lowest:
        least = Table(title=f"Lowest-confidence tickets (< {threshold:g})")
        for name in ("ticket", "category", "confidence", "version", "created", "text"):
            least.add_column(name)
        for t in summary.lowest:
            least.add_row(
                t.id,
                t.category,
                f"{t.confidence:.3f}",
                t.model_version,
                f"{t.created_at:%Y-%m-%d %H:%M}",
                t.text if len(t.text) <= 60 else t.text[:59] + "…",
            )
        out.print(least)


def _training_config(
    min_rows_per_class: int | None, allowed_labels: str | None
) -> TrainingDataConfig:
    try:
        config = (
            TrainingDataConfig(min_rows_per_class=min_rows_per_class)
            if min_rows_per_class is not None
            else TrainingDataConfig()
        )
    except ValueError as exc:
        raise BadInputError(f"--min-rows-per-class: {exc}") from exc
    return config.with_labels(_split(allowed_labels)) if allowed_labels else config


def _split(values: str) -> list[str]:
    return [v.strip() for v in values.split(",") if v.strip()]


def _known_categories(
    context: AppContext, frame: pd.DataFrame, categories: str | None
) -> dict[str, set[str]]:
    from boltit.data_checks import ticket_frames

    versions: list[str] = []
    if "model_version" in frame.columns:
        versions = frame["model_version"].dropna().astype(str).tolist()
    if categories is None:
        _ = context.mlflow_client  # points MLflow at the configured stores
    return ticket_frames.known_categories(
        model_name=context.settings.model_name,
        versions=versions,
        categories=_split(categories) if categories is not None else None,
    )


def _drift_side(
    context: AppContext, path: Path | None, window: Window | None, columns: dict[str, str]
) -> tuple[pd.DataFrame, str]:
    from boltit.data_checks import frames, ticket_frames

    if path is not None:
        return frames.read_ticket_file(path, **columns), str(path)
    assert window is not None
    with context.database.session() as session:
        frame = ticket_frames.prediction_log(session, since=window.start, until=window.end)
    if frame.empty:
        raise BadInputError(f"no tickets in the ticket store for {window.label}")
    return frame, f"store {window.label}"


def _print_suite(report: SuiteReport, source: str) -> None:
    table = Table(title=f"{report.suite} on {report.rows:,} rows ({source})")
    table.add_column("expectation")
    table.add_column("result")
    table.add_column("observed", overflow="fold")
    for outcome in report.outcomes:
        verdict = "[green]pass[/]" if outcome.success else "[bold red]FAIL[/]"
        table.add_row(outcome.name, verdict, outcome.observed)
    out.print(table)


def _print_drift(report: DriftReport) -> None:
    table = Table(title=f"Drift: {report.baseline_label} → {report.current_label}")
    for name in ("signal", "statistic", "value", "verdict", "summary"):
        table.add_column(name, overflow="fold")
    for s in report.signals:
        style = _VERDICT_STYLE[s.verdict.value]
        table.add_row(
            s.signal,
            s.statistic,
            "-" if s.value is None else f"{s.value:.4f}",
            f"[{style}]{s.verdict.value}[/]",
            s.summary,
        )
    out.print(table)
