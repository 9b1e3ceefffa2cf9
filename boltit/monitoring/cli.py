"""``boltit monitor``, ``boltit incident`` and the runbook's helper commands."""

from __future__ import annotations

import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from boltit.core.console import err, out
from boltit.core.context import app_context
from boltit.core.errors import BadInputError

if TYPE_CHECKING:  # the monitoring stack imports mlflow and pandas; `--help` needs neither
    from boltit.monitoring.feedback_sources import FeedbackSources
    from boltit.monitoring.monitor import PassResult
    from boltit.monitoring.status import MonitorStatus

_LEVEL_STYLE = {"ok": "green", "no_data": "dim", "warning": "yellow", "critical": "bold red"}


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _limit(sign: str, value: float) -> str:
    # NaN: a relative rule with no evaluation-set figure to be relative to.
    return "-" if value != value else f"{sign} {value:.3g}"


def status_table(status: MonitorStatus) -> Table:
    """Every rule with its value, thresholds and level."""
    table = Table(
        title=f"{status.model_name}: Production v{status.production or '-'}, "
        f"previous v{status.previous or '-'} ({status.config.window_days:g}-day window)"
    )
    for column in ("rule", "kind", "value", "warning", "critical", "n", "level"):
        table.add_column(column, justify="right" if column in ("value", "n") else "left")
    for evaluation in status.evaluations:
        sign = "<" if evaluation.direction == "below" else ">"
        style = _LEVEL_STYLE[evaluation.level.value]
        table.add_row(
            evaluation.label,
            evaluation.kind.value,
            _fmt(evaluation.value),
            _limit(sign, evaluation.warning),
            _limit(sign, evaluation.critical),
            str(evaluation.samples),
            f"[{style}]{evaluation.level.value}[/]",
        )
    return table


def print_verdicts(status: MonitorStatus) -> None:
    """The sequential test and every verdict that is not plainly ok, with what it rests on."""
    for evaluation in status.evaluations:
        if evaluation.rule == "sequential_regression" or evaluation.level.value in (
            "warning",
            "critical",
        ):
            acts = " [incident]" if evaluation.opens_incident else ""
            out.print(evaluation.describe() + acts, markup=False, highlight=False, soft_wrap=True)


def _print_pass(result: PassResult) -> None:
    status, response = result.status, result.response
    out.print(status_table(status))
    print_verdicts(status)
    if response.opened:
        out.print(f"[bold red]incident #{response.incident_id} opened[/]; auto-apply disabled")
    for note in response.notes:
        out.print(note)
    if response.decision is not None:
        out.print(
            f"rollback: {'yes' if response.decision.rollback else 'no'}: {response.decision.reason}"
        )
    if response.rolled_back_to:
        verdict = "verified" if response.verified else "NOT verified"
        out.print(f"rolled back to v{response.rolled_back_to} ({verdict})")
    if response.smoke_ok is not None:
        verdict = "[green]passed[/]" if response.smoke_ok else "[bold red]FAILED[/]"
        out.print(f"smoke test after the rollback {verdict} (see the incident's timeline)")
    if result.published:
        out.print(f"published {len(result.published)} metrics to CloudWatch")
    if result.publish_error:
        out.print(f"[yellow]CloudWatch: {result.publish_error}[/]")
    if result.feedback is not None:
        _print_feedback_sources(result.feedback)
    if not status.incident_alerts():
        out.print(f"overall: {status.worst.value}")


def _print_feedback_sources(sources: FeedbackSources) -> None:
    from boltit.monitoring.feedback_sources import describe_sources

    for line in describe_sources(sources):
        style = "bold yellow" if line.startswith("feedback flood") else "dim"
        out.print(f"[{style}]{line}[/]", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``monitor``, ``incident``, ``model-metrics``, ``recompute-accuracy`` and
    ``export-predictions`` to ``app``."""
    monitor = typer.Typer(help="Alert rules, regression detection and the automated runbook.")

    @monitor.callback(invoke_without_command=True)
    def monitor_main(
        ctx: typer.Context,
        once: Annotated[bool, typer.Option("--once", help="Run one pass and exit.")] = False,
        watch_: Annotated[
            bool, typer.Option("--watch", help="Run a pass every --interval seconds.")
        ] = False,
        interval: Annotated[
            float, typer.Option(min=1.0, help="Seconds between passes with --watch.")
        ] = 60.0,
        passes: Annotated[
            int | None, typer.Option(min=1, help="Stop --watch after this many passes.")
        ] = None,
        service_url: Annotated[
            str | None,
            typer.Option(help="Service to verify a rollback against (GET /model/version)."),
        ] = None,
        verify_timeout: Annotated[
            float, typer.Option(min=1.0, help="Seconds to wait for the service to switch.")
        ] = 30.0,
    ) -> None:
        """Check the alert rules; on a critical model-quality alert, follow the runbook."""
        if ctx.invoked_subcommand is not None:
            return  # before the import: `monitor status` must not pay for the monitor
        from boltit.monitoring.monitor import run_once, watch

        if once == watch_:
            raise BadInputError("choose one of --once or --watch (or run `boltit monitor status`)")
        context = app_context(ctx)
        if once:
            result = run_once(
                settings=context.settings,
                database=context.database,
                client=context.mlflow_client,
                service_url=service_url,
                verify_timeout=verify_timeout,
            )
            _print_pass(result)
            return
        out.print(f"watching {context.settings.model_name} every {interval:g} s (Ctrl-C stops)")
        # SIGTERM (a pod deleted) unwinds like Ctrl-C, so the leader lease is handed back.
        before = signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
        try:
            watch(
                settings=context.settings,
                database=context.database,
                client=context.mlflow_client,
                interval=interval,
                passes=passes,
                service_url=service_url,
                on_pass=_print_pass,
                on_error=lambda exc: err.print(f"[bold red]pass failed:[/] {exc}", soft_wrap=True),
                on_leadership=lambda text: out.print(
                    text, markup=False, highlight=False, soft_wrap=True
                ),
            )
        finally:
            signal.signal(signal.SIGTERM, before)

    @monitor.command("status")
    def monitor_status(ctx: typer.Context) -> None:
        """Show every alert rule's value and level; changes nothing."""
        # Reading aliases and run metrics needs no pandas (boltit.core.light): on call.
        from boltit.core.light import import_mlflow_light

        import_mlflow_light()
        from boltit.monitoring.status import collect_status

        context = app_context(ctx)
        with out.status("computing figures from the ticket store"):
            status = collect_status(
                settings=context.settings,
                database=context.database,
                client=context.mlflow_client,
            )
        out.print(status_table(status))
        print_verdicts(status)
        from boltit.monitoring.feedback_sources import check_feedback

        since = status.computed_at - timedelta(days=status.config.window_days)
        _print_feedback_sources(
            check_feedback(context.database, settings=context.settings, since=since)
        )
        out.print(f"overall: {status.worst.value}")

    app.add_typer(monitor, name="monitor")

    incident = typer.Typer(help="Incidents the monitor opened, and their reviews.")

    @incident.command("list")
    def incident_list(
        ctx: typer.Context,
        limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 20,
    ) -> None:
        """List incidents, newest first."""
        from boltit.monitoring import incidents, report

        views = incidents.list_incidents(app_context(ctx).database, limit=limit)
        if not views:
            out.print("no incidents recorded")
            return
        table = Table()
        for column in ("id", "opened (UTC)", "status", "severity", "version", "duration", "title"):
            table.add_column(column)
        for view in views:
            table.add_row(
                str(view.id),
                f"{view.opened_at:%Y-%m-%d %H:%M:%S}",
                view.status,
                view.severity,
                f"v{view.model_version or '-'}",
                report._span(report.duration(view)),
                view.title,
            )
        out.print(table)

    @incident.command("report")
    def incident_report(
        ctx: typer.Context,
        reference: Annotated[str, typer.Argument(help="Incident id, or 'latest'.")],
        output: Annotated[
            Path | None, typer.Option("--out", help="Write the Markdown here instead.")
        ] = None,
    ) -> None:
        """Print the post-incident review (Markdown), pre-filled from the timeline."""
        from boltit.monitoring import incidents, report

        view = incidents.get_incident(app_context(ctx).database, reference)
        text = report.render_review(view)
        if output is None:
            out.print(text, markup=False, highlight=False, soft_wrap=True)
            return
        if not output.parent.is_dir():
            raise BadInputError(f"--out folder {output.parent} does not exist")
        output.write_text(text, encoding="utf-8")
        out.print(f"wrote {output}")

    @incident.command("resolve")
    def incident_resolve(
        ctx: typer.Context,
        reference: Annotated[str, typer.Argument(help="Incident id, or 'latest'.")],
        note: Annotated[str | None, typer.Option(help="Why it is resolved.")] = None,
        actor: Annotated[str | None, typer.Option(help="Who; defaults to the OS user.")] = None,
    ) -> None:
        """Mark an incident resolved (the permanent fix is in); the channels are told."""
        from boltit.core.actors import current_actor
        from boltit.monitoring import incidents
        from boltit.monitoring.notify import resolve_incident

        context = app_context(ctx)
        view = incidents.get_incident(context.database, reference)
        deliveries = resolve_incident(
            settings=context.settings,
            database=context.database,
            incident_id=view.id,
            actor=current_actor(actor),
            note=note,
        )
        out.print(f"incident #{view.id} resolved")
        for _, delivery in deliveries:
            verdict = "told" if delivery.ok else f"[yellow]NOT told[/] ({delivery.error})"
            out.print(f"{delivery.channel}: {verdict}", soft_wrap=True)

    app.add_typer(incident, name="incident")

    @app.command("model-metrics")
    def model_metrics_command(
        ctx: typer.Context,
        days: Annotated[float, typer.Option(help="Window of live figures, in days.")] = 7.0,
    ) -> None:
        """Per version: aliases, validation accuracy and live figures from the ticket store."""
        from boltit.monitoring import accuracy

        context = app_context(ctx)
        rows = accuracy.model_metrics(
            database=context.database,
            client=context.mlflow_client,
            name=context.settings.model_name,
            days=days,
        )
        table = Table(title=f"{context.settings.model_name}, last {days:g} days")
        for column in (
            "version", "aliases", "validation acc", "tickets", "labelled", "live acc",
            "mean conf", "auto-apply", "p95 latency s",
        ):  # fmt: skip
            table.add_column(column)
        for row in rows:
            table.add_row(
                row.version,
                ", ".join(row.aliases),
                _fmt(row.validation_accuracy),
                str(row.tickets),
                str(row.labelled),
                _fmt(row.live_accuracy),
                _fmt(row.mean_confidence),
                _fmt(row.auto_apply_rate),
                _fmt(row.latency_p95_seconds),
            )
        out.print(table)

    @app.command("recompute-accuracy")
    def recompute_accuracy_command(
        ctx: typer.Context,
        days: Annotated[float, typer.Option(help="Window, in days.")] = 7.0,
    ) -> None:
        """Recompute accuracy from stored predictions and agents' feedback."""
        from boltit.monitoring import accuracy

        result = accuracy.recompute_accuracy(app_context(ctx).database, days=days)
        out.print(
            f"since {result.since:%Y-%m-%d %H:%M} UTC: {result.tickets} tickets, "
            f"{result.labelled} with feedback, accuracy {_fmt(result.accuracy)}"
        )
        for title, frame in (
            ("by day", result.by_day),
            ("by version", result.by_version),
            ("by category (agent's)", result.by_category),
        ):
            table = Table(title=title)
            for column in frame.columns:
                table.add_column(str(column))
            for record in frame.itertuples(index=False):
                table.add_row(*(_fmt(v) if isinstance(v, float) else str(v) for v in record))
            out.print(table)

    @app.command("export-predictions")
    def export_predictions_command(
        ctx: typer.Context,
        output: Annotated[Path, typer.Option("--out", help="CSV file to write.")],
        days: Annotated[float, typer.Option(help="Window, in days.")] = 7.0,
    ) -> None:
        """Export the last days' predictions (and feedback) to CSV."""
        from boltit.monitoring import csv_export

        rows = csv_export.export_predictions(app_context(ctx).database, days=days, out=output)
        out.print(f"wrote {rows} tickets to {output}")
