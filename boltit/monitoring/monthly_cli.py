"""``boltit report monthly``: the month's model performance as HTML with plots or Markdown."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from boltit.core.console import out
from boltit.core.context import AppContext, app_context

EXPERIMENT = "boltit-reports"
_HTML_SUFFIXES = (".html", ".htm")


class ReportFormat(StrEnum):
    HTML = "html"
    MD = "md"


def report_format(chosen: ReportFormat | None, output: Path | None) -> ReportFormat:
    """``--format`` when given; else HTML for an ``.html`` output and Markdown otherwise
    (the terminal, or any other file name)."""
    if chosen is not None:
        return chosen
    if output is not None and output.suffix.lower() in _HTML_SUFFIXES:
        return ReportFormat.HTML
    return ReportFormat.MD


def register(app: typer.Typer) -> None:
    """Add ``report monthly`` to ``app``."""
    report = typer.Typer(help="Periodic model-performance reports.")

    @report.command("monthly")
    def report_monthly(
        ctx: typer.Context,
        month: Annotated[
            str | None,
            typer.Option(help="Month YYYY-MM (UTC); default: the last complete month."),
        ] = None,
        output: Annotated[
            Path | None, typer.Option("--output", help="Write the report to this file.")
        ] = None,
        format_: Annotated[
            ReportFormat | None,
            typer.Option(
                "--format",
                help="html (plots embedded) or md; default html when --output ends in .html, "
                "else md.",
            ),
        ] = None,
        log: Annotated[
            bool,
            typer.Option("--log", help=f"Log it as an artifact of a run in {EXPERIMENT!r}."),
        ] = False,
    ) -> None:
        """Per serving version: tickets, auto-apply coverage and precision, labelled accuracy
        with its interval and over time, per-category accuracy, confidence; drift against the
        month before; incidents; promotions and rollbacks."""
        from boltit.data_checks.drift import load_drift_config
        from boltit.monitoring.monthly import monthly_report, parse_month, render_markdown

        period = parse_month(month)  # a malformed month fails before the store is opened
        kind = report_format(format_, output)
        context = app_context(ctx)
        drift_config = load_drift_config(context.settings.drift_config)
        with context.database.session() as session:
            report = monthly_report(
                session,
                model_name=context.settings.model_name,
                month=period,
                drift_config=drift_config,
            )
            if kind is ReportFormat.HTML:
                from boltit.monitoring.monthly_html import render_html

                text = render_html(report)
            else:
                text = render_markdown(report)
        # A page of HTML is no use in a terminal: shown only when it has nowhere else to go.
        if kind is ReportFormat.MD or output is None:
            out.print(text, markup=False, highlight=False, soft_wrap=True)
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text, encoding="utf-8")
            out.print(f"Written to {output}", markup=False, highlight=False, soft_wrap=True)
        if log:
            run_id = log_report(context, text, month=period.label, suffix=kind.value)
            out.print(f"Logged to MLflow: experiment {EXPERIMENT}, run {run_id}")

    app.add_typer(report, name="report")


def log_report(context: AppContext, text: str, *, month: str, suffix: str = "md") -> str:
    """A run in ``boltit-reports`` holding the report as ``monthly/<month>.<suffix>``; its id."""
    client = context.mlflow_client
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = (
        experiment.experiment_id if experiment is not None else client.create_experiment(EXPERIMENT)
    )
    run = client.create_run(
        experiment_id,
        run_name=f"monthly-{month}",
        tags={"boltit.report": "monthly", "boltit.month": month},
    )
    client.log_text(run.info.run_id, text, f"monthly/{month}.{suffix}")
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)
