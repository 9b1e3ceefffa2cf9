"""``boltit report monthly``: the month's model performance as Markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from boltit.core.console import out
from boltit.core.context import AppContext, app_context

EXPERIMENT = "boltit-reports"


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
            Path | None, typer.Option("--output", help="Also write the Markdown to this file.")
        ] = None,
        log: Annotated[
            bool,
            typer.Option("--log", help=f"Log it as an artifact of a run in {EXPERIMENT!r}."),
        ] = False,
    ) -> None:
        """Per serving version: tickets, auto-applied share, labelled accuracy with its
        interval, per-category accuracy; incidents; promotions and rollbacks."""
        from boltit.monitoring.monthly import monthly_report, parse_month, render_markdown

        period = parse_month(month)  # a malformed month fails before the store is opened
        context = app_context(ctx)
        with context.database.session() as session:
            text = render_markdown(
                monthly_report(session, model_name=context.settings.model_name, month=period)
            )
        out.print(text, markup=False, highlight=False, soft_wrap=True)
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text, encoding="utf-8")
            out.print(f"Written to {output}")
        if log:
            run_id = log_report(context, text, month=period.label)
            out.print(f"Logged to MLflow: experiment {EXPERIMENT}, run {run_id}")

    app.add_typer(report, name="report")


def log_report(context: AppContext, text: str, *, month: str) -> str:
    """A run in ``boltit-reports`` holding the report as ``monthly/<month>.md``; its id."""
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
    client.log_text(run.info.run_id, text, f"monthly/{month}.md")
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)
