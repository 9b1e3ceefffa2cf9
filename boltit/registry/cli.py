"""Commands of the registry workflow: validate, approve, promote, rollback, history, sync."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from boltit.core.actors import current_actor
from boltit.core.console import err, out
from boltit.core.context import app_context
from boltit.core.errors import BadInputError, GateFailedError
from boltit.core.light import import_mlflow_light

if TYPE_CHECKING:  # the registry stack imports mlflow (seconds); `boltit --help` needs none of it
    from boltit.registry.gates import GateReport
    from boltit.registry.sync import SyncOutcome
    from boltit.registry.target import Target

ACTOR_HELP = "Who the history records (default: the OS user)."
MODEL_HELP = "Registered model (default: BOLTIT_MODEL_NAME)."


def _target(ctx: typer.Context, *, model: str | None, actor: str | None) -> Target:
    from boltit.registry.lookup import prepare_mlflow_for_cli

    context = app_context(ctx)
    prepare_mlflow_for_cli(context.settings)
    target: Target = {
        "client": context.mlflow_client,
        "database": context.database,
        "name": model or context.settings.model_name,
        "actor": current_actor(actor),
        "settings": context.settings,
    }
    return target


def _alias_move(ctx: typer.Context, *, model: str | None, actor: str | None) -> Target:
    # Moving an alias needs no pandas/scipy (boltit.core.light): on call, seconds count.
    import_mlflow_light()
    return _target(ctx, model=model, actor=actor)


def _print_manifests(uris: list[str]) -> None:
    for uri in uris:
        out.print(f"wrote {uri}")


def _gate_table(report: GateReport) -> Table:
    champion = f"v{report.champion}" if report.champion else "none"
    table = Table(title=f"Gates for v{report.candidate} (champion {champion})")
    for column in ("gate", "mode", "result", "observed", "limit", "note"):
        table.add_column(column, overflow="fold")
    for r in report.results:
        result = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "[dim]off[/]"}[r.passed]
        if r.passed is None and r.mode != "disabled":
            result = "[dim]skipped[/]"  # too little evidence (the shadow gates' min_rows)
        observed = "" if r.observed is None else r.observed_text
        table.add_row(r.name, r.mode, result, observed, r.limit, r.note)
    return table


def _given(value: str | None) -> bool:
    # MLproject passes an unset string parameter as "".
    return value is not None and value.strip() != ""


def _check_version(value: str | None) -> None:
    # Before MLflow loads (seconds): a mistyped version is reported at once.
    if _given(value) and not str(value).strip().isdigit():
        raise BadInputError(f"model version must be a number, got {value!r}")


def _fraction(value: str | None, option: str) -> float | None:
    if value is None or not _given(value):
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise BadInputError(f"{option} must be a number between 0 and 1, got {value!r}") from exc


def register(app: typer.Typer) -> None:
    """Add this package's commands to ``app``."""
    registry_app = typer.Typer(help="Registry upkeep: sync changes made in the MLflow UI.")
    app.add_typer(registry_app, name="registry")

    @app.command("validate")
    def validate_command(
        ctx: typer.Context,
        version: str = typer.Argument(..., help="Model version to validate."),
        data: str | None = typer.Option(
            None,
            "--data",
            help="Held-out tickets (CSV/Parquet) to pin; default: the model's evaluation set.",
        ),
        text_column: str = typer.Option("text", help="Ticket text column of --data."),
        label_column: str = typer.Option("category", help="Category column of --data."),
        min_accuracy: str | None = typer.Option(
            None, "--min-accuracy", help="Override the min_accuracy gate (default 0.90)."
        ),
        model: str | None = typer.Option(None, "--model", help=MODEL_HELP),
        actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
    ) -> None:
        """Run every gate on VERSION against Production; exit 1 when an enabled gate fails."""
        _check_version(version)
        min_accuracy_value = _fraction(min_accuracy, "--min-accuracy")
        from boltit.registry.scoring import load_evaluation_file
        from boltit.registry.validate import validate

        target = _target(ctx, model=model, actor=actor)
        frame = None
        if data is not None and _given(data):
            frame = load_evaluation_file(
                Path(data), text_column=text_column, label_column=label_column
            )
        with err.status(f"validating v{version} of {target['name']} against Production..."):
            result = validate(
                **target,
                version=version,
                data=frame,
                data_label=str(Path(data).resolve()) if frame is not None and data else None,
                min_accuracy=min_accuracy_value,
            )
        if result.evaluation is not None:
            seen = result.evaluation
            out.print(
                f"evaluated on {seen.source}: {seen.rows:,} rows, digest {seen.digest[:12]}; "
                f"gate config {result.config_digest[:12]}"
            )
        for note in result.notes:
            out.print(f"[yellow]note: {note}[/]")
        out.print(_gate_table(result.report))
        if not result.passed:
            failing = "; ".join(r.describe() for r in result.failures)
            raise GateFailedError(f"v{result.version} failed its gates: {failing}")
        out.print(f"v{result.version} passed its gates: alias challenger, stage Staging")

    @app.command("promote")
    def promote_command(
        ctx: typer.Context,
        version: str = typer.Argument(..., help="Model version to promote to Production."),
        force: bool = typer.Option(False, "--force", help="Promote despite failed gates."),
        force_flag: str = typer.Option(
            "false", "--force-flag", hidden=True, help="--force as true/false (MLproject)."
        ),
        reason: str | None = typer.Option(None, "--reason", help="Why (required with --force)."),
        model: str | None = typer.Option(None, "--model", help=MODEL_HELP),
        actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
    ) -> None:
        """Make VERSION serve: Production moves to it, the old one becomes previous."""
        _check_version(version)
        target = _alias_move(ctx, model=model, actor=actor)
        from boltit.registry.promote import promote

        name = target["name"]
        with err.status(f"promoting v{version} of {name}..."):
            result = promote(
                **target,
                version=version,
                reason=reason,
                force=force or force_flag.strip().lower() in {"true", "1", "yes"},
            )
        if not result.changed:
            out.print(f"v{result.version} already serves {name}; nothing changed")
            return
        forced = " (forced)" if result.forced else ""
        out.print(
            f"{name}: Production v{result.previous or '-'} -> v{result.version}{forced}; "
            f"previous = v{result.previous or '-'}"
        )
        _print_manifests(result.manifests)

    @app.command("approve")
    def approve_command(
        ctx: typer.Context,
        version: str = typer.Argument(..., help="Model version to approve for Production."),
        reason: str | None = typer.Option(None, "--reason", help="Why (required; audited)."),
        model: str | None = typer.Option(None, "--model", help=MODEL_HELP),
        actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
    ) -> None:
        """Sign off VERSION (gate config `approval: required`); not by who trained it."""
        _check_version(version)
        if not _given(reason):
            raise BadInputError("approve needs a --reason; approvals are audited")
        target = _alias_move(ctx, model=model, actor=actor)
        from boltit.registry.approval import approve

        approval = approve(**target, version=version, reason=reason)
        trained_by = ", ".join(approval.trained_by)
        out.print(
            f"{approval.name}: v{approval.version} approved by {approval.approved_by} "
            f"(trained by {trained_by}): {approval.reason}"
        )

    @app.command("rollback")
    def rollback_command(
        ctx: typer.Context,
        to: str | None = typer.Option(None, "--to", help="A version that once served."),
        reason: str | None = typer.Option(
            None, "--reason", help="Why, for the history (required with --force)."
        ),
        force: bool = typer.Option(
            False,
            "--force",
            help="Restore a version that failed its gates or that a recent incident found "
            "regressed.",
        ),
        model: str | None = typer.Option(None, "--model", help=MODEL_HELP),
        actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
    ) -> None:
        """Move Production back to previous (or --to VERSION)."""
        _check_version(to)
        target = _alias_move(ctx, model=model, actor=actor)
        from boltit.registry.rollback import rollback

        name = target["name"]
        with err.status(f"rolling back {name}..."):
            result = rollback(
                **target, to_version=to if _given(to) else None, reason=reason, force=force
            )
        forced = " (forced: " + "; ".join(g.message for g in result.guards) + ")"
        out.print(
            f"{name}: Production v{result.from_version} -> v{result.to_version}"
            f"{forced if result.forced else ''}; "
            f"previous = {'v' + result.previous if result.previous else 'none'}"
        )
        _print_manifests(result.manifests)

    @app.command("history")
    def history_command(
        ctx: typer.Context,
        limit: int = typer.Option(50, "--limit", min=1, help="Newest N events."),
        model: str | None = typer.Option(None, "--model", help="Only this model."),
        registry_only: bool = typer.Option(
            False, "--registry-only", help="Only validations, promotions, rollbacks and syncs."
        ),
    ) -> None:
        """Every recorded step (trainings, gates, promotions, rollbacks, flags, incidents)."""
        from boltit.registry.history import history_table, registry_history

        context = app_context(ctx)
        events = registry_history(
            context.database, model_name=model, limit=limit, registry_only=registry_only
        )
        if not events:
            out.print("no history yet")
            return
        out.print(history_table(events))

    def _print_outcome(outcome: SyncOutcome) -> None:
        change = outcome.change
        out.print(
            f"{change.via} change to v{change.version or '-'} "
            f"(recorded v{change.recorded or '-'}): {outcome.outcome}: {outcome.reason}"
        )

    @registry_app.command("sync")
    def sync_command(
        ctx: typer.Context,
        watch_mode: bool = typer.Option(False, "--watch", help="Keep polling."),
        interval: float = typer.Option(5.0, "--interval", min=0.1, help="Seconds between polls."),
        max_cycles: int | None = typer.Option(
            None, "--max-cycles", min=1, help="Stop --watch after N polls."
        ),
        model: str | None = typer.Option(None, "--model", help=MODEL_HELP),
        actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
    ) -> None:
        """Record, gate and accept or revert Production changes made in the MLflow UI."""
        from boltit.registry.sync import sync, watch

        target = _target(ctx, model=model, actor=actor)
        name = target["name"]
        if watch_mode:
            err.print(f"watching {name} every {interval:g}s (Ctrl-C stops)")
            watch(**target, interval=interval, max_cycles=max_cycles, on_outcome=_print_outcome)
            return
        from boltit.registry.approval import adopt_ui_approvals

        with err.status(f"checking {name} for changes made outside boltit..."):
            approvals = adopt_ui_approvals(**target)
            outcomes = sync(**target)
        for approval in approvals:
            out.print(f"UI approval of v{approval.version}: {approval.message}")
        if not outcomes and not approvals:
            out.print(f"{name}: registry and history agree; nothing to sync")
        for outcome in outcomes:
            _print_outcome(outcome)

    @registry_app.command("gates")
    def gates_command(ctx: typer.Context) -> None:
        """Print the effective gate config (defaults merged with BOLTIT_GATES_CONFIG)."""
        from boltit.registry.gate_config import load_gate_config

        settings = app_context(ctx).settings
        config = load_gate_config(settings.gates_config)
        table = Table(title=f"Gates ({settings.gates_config or 'packaged defaults'})")
        table.add_column("gate")
        table.add_column("mode")
        table.add_column("limits")
        for gate_name, gate in config.gates:
            limits = ", ".join(f"{k}={v}" for k, v in gate.model_dump().items() if k != "mode")
            table.add_row(gate_name, gate.mode.value, limits)
        out.print(table)
        policy = config.sync
        out.print(
            f"sync: on gate pass {policy.on_gate_pass}, on gate fail {policy.on_gate_fail}, "
            f"on a guarded version {policy.on_guarded}"
        )
        out.print(f"approval before promotion: {config.approval.replace('_', ' ')}")
