"""``boltit alarms sync``: CloudWatch alarms from the alert rules."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from boltit.core.console import out
from boltit.core.context import app_context

_STYLE = {
    "created": "green",
    "updated": "yellow",
    "deleted": "red",
    "unchanged": "dim",
    "skipped": "dim",
}


def register(app: typer.Typer) -> None:
    """Add ``alarms sync`` to ``app``."""
    alarms = typer.Typer(help="CloudWatch alarms made from the alert rules.")

    @alarms.command("sync")
    def alarms_sync(
        ctx: typer.Context,
        action: Annotated[
            list[str] | None,
            typer.Option("--action", help="Alarm action ARN (e.g. an SNS topic); repeatable."),
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
        ] = False,
    ) -> None:
        """Create or update one alarm per rule and level; a second run changes nothing."""
        from boltit.core.vocabulary import PRODUCTION
        from boltit.monitoring.alarms import sync_alarms
        from boltit.monitoring.cloudwatch import cloudwatch_client
        from boltit.monitoring.rules import load_alert_config
        from boltit.monitoring.status import aliases, evaluation_figures

        context = app_context(ctx)
        settings = context.settings
        name = settings.model_name
        production = aliases(context.mlflow_client, name).get(PRODUCTION)
        references: dict[str, float | None] = {}
        if production is not None:
            figures = evaluation_figures(context.mlflow_client, name, production)
            references["mean_confidence"] = figures.mean_confidence
        changes = sync_alarms(
            cloudwatch=cloudwatch_client(settings),
            config=load_alert_config(settings),
            namespace=settings.cloudwatch_namespace,
            model_name=name,
            references=references,
            actions=action or [],
            dry_run=dry_run,
        )
        table = Table(
            title=f"CloudWatch alarms in {settings.cloudwatch_namespace} "
            f"(Production v{production or '-'})" + (" [dry run]" if dry_run else "")
        )
        for column in ("alarm", "change", "detail"):
            table.add_column(column)
        for change in changes:
            style = _STYLE[change.change]
            table.add_row(change.name, f"[{style}]{change.change}[/]", change.detail)
        out.print(table)
        written = [c for c in changes if c.change in ("created", "updated", "deleted")]
        if not written:
            kept = sum(c.change == "unchanged" for c in changes)
            out.print(f"no changes: {kept} alarms already match the rules")
        else:
            verb = "would change" if dry_run else "changed"
            out.print(f"{verb} {len(written)} alarms")

    app.add_typer(alarms, name="alarms")
