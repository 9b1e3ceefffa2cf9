"""``boltit smoke``: the runbook's smoke tests (step 7) as one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from boltit.core.console import out
from boltit.core.context import app_context

_STYLE = {"pass": "green", "fail": "bold red", "skip": "dim"}


def register(app: typer.Typer) -> None:
    """Add ``smoke`` to ``app``."""

    @app.command("smoke")
    def smoke_command(
        ctx: typer.Context,
        url: Annotated[
            str | None, typer.Option(help="Service base URL (default BOLTIT_SMOKE_URL).")
        ] = None,
        token: Annotated[
            str | None,
            typer.Option(help="Client token with the classify scope (default BOLTIT_SMOKE_TOKEN)."),
        ] = None,
        expect_version: Annotated[
            str | None, typer.Option(help="Version to expect instead of the Production alias.")
        ] = None,
        auto_apply: Annotated[
            bool | None,
            typer.Option(
                "--auto-apply/--no-auto-apply",
                help="Expected auto-apply flag (default: the stored flag).",
            ),
        ] = None,
        calls: Annotated[int, typer.Option(min=1, help="Calls timed for the p95 latency.")] = 20,
        p95_budget_ms: Annotated[
            float | None,
            typer.Option(min=0.0, help="p95 latency budget (default: the latency rule's warning)."),
        ] = None,
        tickets: Annotated[
            Path | None, typer.Option(help="Known tickets YAML (default: the packaged set).")
        ] = None,
    ) -> None:
        """Health, readiness, served version, known tickets, auto-apply and p95 latency."""
        from boltit.monitoring.smoke import load_smoke_tickets, run_smoke
        from boltit.monitoring.smoke_expect import registry_expectations

        context = app_context(ctx)
        settings = context.settings
        expect = registry_expectations(
            settings=settings,
            database=context.database,
            client=context.mlflow_client,
            version=expect_version,
            auto_apply=auto_apply,
            p95_budget_ms=p95_budget_ms,
            latency_calls=calls,
        )
        if token is None and settings.smoke_token is not None:
            token = settings.smoke_token.get_secret_value()
        result = run_smoke(
            url=url or settings.smoke_url,
            token=token,
            tickets=load_smoke_tickets(tickets),
            expect=expect,
        )
        table = Table(title=f"smoke test of {result.url}")
        for column in ("check", "result", "detail"):
            table.add_column(column)
        for check in result.checks:
            style = _STYLE[check.outcome]
            table.add_row(check.name, f"[{style}]{check.outcome}[/]", check.detail)
        out.print(table)
        out.print(("[green]PASSED[/] " if result.ok else "[bold red]FAILED[/] ") + result.summary())
        if not result.ok:
            raise typer.Exit(1)
