"""``boltit shadow report``: what shadow scoring found, challenger against champion."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from boltit.core.console import out
from boltit.core.context import app_context
from boltit.core.errors import BadInputError

if TYPE_CHECKING:
    from boltit.monitoring.shadow import ShadowReport


def register(app: typer.Typer) -> None:
    """Add ``shadow report`` to ``app``."""
    shadow = typer.Typer(help="Shadow scoring evidence: a challenger beside the champion.")

    @shadow.command("report")
    def shadow_report_command(
        ctx: typer.Context,
        version: Annotated[
            str | None,
            typer.Option(help="Challenger version; default: the newest one scored in shadow."),
        ] = None,
        days: Annotated[int, typer.Option(help="Tickets of the last N days.")] = 14,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON, not tables.")] = False,
    ) -> None:
        """Agreement, per-category disagreement, confidence and labelled accuracy of both."""
        if days < 1:
            raise BadInputError(f"--days must be at least 1 (got {days})")
        from boltit.data_checks.shadow import shadow_evidence
        from boltit.monitoring.shadow import shadow_report
        from boltit.registry.gate_config import load_gate_config

        context = app_context(ctx)
        config = load_gate_config(context.settings.gates_config)
        with context.database.session() as session:
            since = datetime.now(UTC) - timedelta(days=days)
            evidence = shadow_evidence(session, since=since, version=version)
        report = shadow_report(evidence, config)
        if as_json:
            out.print_json(json.dumps(report.to_dict()))
            return
        if not evidence.rows:
            which = f"version {version}" if version else "any version"
            out.print(f"No shadow predictions of {which} in the last {days} days.")
            return
        _print(report, days)

    app.add_typer(shadow, name="shadow")


def _ci(interval: tuple[float, float] | None, level: float) -> str:
    if interval is None:
        return ""
    return f" [{100 * level:.4g}% CI {interval[0]:.3f}, {interval[1]:.3f}]"


def _print(report: ShadowReport, days: int) -> None:
    e = report.evidence
    champions = ", ".join(f"v{v} ({n:,})" for v, n in sorted(e.champions.items()))
    out.print(
        f"Challenger [bold]v{e.version}[/] against {champions}: {e.rows:,} shadowed tickets "
        f"in the last {days} days."
    )
    out.print(
        f"Agreement: [bold]{e.agreement:.1%}[/] ({e.agreed:,} of {e.rows:,})"
        f"{_ci(report.agreement_interval, report.confidence)}"
    )
    if e.labelled:
        out.print(
            f"Labelled later: {e.labelled:,}; accuracy champion {e.accuracy('champion'):.3f}, "
            f"challenger {e.accuracy('challenger'):.3f}; drop (champion minus challenger) "
            f"{report.accuracy_drop:+.3f}{_ci(report.accuracy_drop_interval, report.confidence)}"
        )
    else:
        out.print("Labelled later: none yet; no accuracy comparison.")

    categories = Table(title="Disagreement by the champion's category, most first")
    for name in ("category", "tickets", "disagreed", "share", "challenger said instead"):
        categories.add_column(name, justify="left" if name == "category" else "right")
    for c in e.categories:
        instead = f"{c.instead} ({c.instead_rows:,})" if c.instead else "-"
        categories.add_row(c.category, f"{c.rows:,}", f"{c.disagreed:,}", f"{c.share:.1%}", instead)
    out.print(categories)

    quantiles = Table(title="Confidence quantiles")
    champion, challenger = e.quantiles("champion"), e.quantiles("challenger")
    quantiles.add_column("version")
    for name in champion:
        quantiles.add_column(name, justify="right")
    for label, values in (("champion", champion), (f"challenger v{e.version}", challenger)):
        quantiles.add_row(label, *(f"{v:.3f}" for v in values.values()))
    out.print(quantiles)

    gates = Table(title="What validate's shadow gates would say")
    for name in ("gate", "verdict", "observed", "note"):
        gates.add_column(name, overflow="fold")
    for g in report.gates:
        verdict = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "[dim]skipped[/]"}[g.passed]
        if g.mode == "disabled":
            verdict = "[dim]off[/]"
        gates.add_row(g.name, verdict, g.observed_text, g.note)
    out.print(gates)
