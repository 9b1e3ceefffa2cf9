"""``boltit rollout start | status | abort``: gradual rollouts, added to the ``rollout`` group.

``start`` runs in the foreground, one progress line per look; Ctrl-C or SIGTERM sets the
canary share to 0 and marks the rollout aborted ("interrupted"). Exit codes: 0 finished and
promoted, 1 aborted (a regression, by hand, or the promotion refused), 2 bad input, 130
interrupted.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from boltit.core.actors import current_actor
from boltit.core.console import err, out
from boltit.core.context import app_context
from boltit.core.errors import BadInputError, NotFoundError

if TYPE_CHECKING:  # the engine imports mlflow and the registry (seconds); --help needs neither
    from boltit.monitoring.rollout_steps import Look, RolloutTarget
    from boltit.monitoring.rollout_store import RolloutView

Model = Annotated[str | None, typer.Option("--model", help="Registered model (default: settings).")]
Actor = Annotated[str | None, typer.Option("--actor", help="Who; defaults to the OS user.")]


def _target(ctx: typer.Context, *, model: str | None, actor: str | None) -> RolloutTarget:
    from boltit.monitoring.rollout_steps import RolloutTarget
    from boltit.registry.lookup import prepare_mlflow_for_cli

    context = app_context(ctx)
    prepare_mlflow_for_cli(context.settings)
    return RolloutTarget(
        settings=context.settings,
        database=context.database,
        client=context.mlflow_client,
        name=model or context.settings.model_name,
        actor=current_actor(actor),
    )


def progress_line(look: Look) -> str:
    """``step 1/4 at 5% | canary 12 tickets, 0 errors | Production 230 | hold: ...``."""
    rollout = look.rollout
    step = f"step {rollout.step_index + 1}/{len(rollout.steps)}"
    if look.evidence is None or look.verdict is None:
        return f"rollout {rollout.id} {rollout.status}: {rollout.reason or ''}"
    evidence = look.evidence
    labelled = (
        f", {evidence.canary_correct}/{evidence.canary_labelled} right"
        if evidence.canary_labelled
        else ""
    )
    return (
        f"{step} at {evidence.percent:g}% | canary {evidence.canary_rows} tickets, "
        f"{evidence.canary_errors} errors{labelled} | Production {evidence.production_rows} | "
        f"{look.verdict.action.value}: {look.verdict.reason}"
    )


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM ends the loop as Ctrl-C does, so the canary share is put back to 0 either way."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        before = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (an embedding caller): Ctrl-C only
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _show(rollout: RolloutView) -> None:
    steps = ", ".join(
        f"[bold]{s:g}%[/]" if i == rollout.step_index and rollout.status == "running" else f"{s:g}%"
        for i, s in enumerate(rollout.steps)
    )
    out.print(
        f"rollout {rollout.id}: v{rollout.version} vs Production v{rollout.champion_version or '-'}"
        f" of {rollout.model_name}, {rollout.status}"
    )
    out.print(
        f"steps {steps}; interval {rollout.interval_seconds:g} s; min rows {rollout.min_rows}"
    )
    out.print(f"started {rollout.started_at:%F %T} UTC by {rollout.actor}")
    if rollout.status == "running":
        out.print(f"now at {rollout.percent:g}% since {rollout.step_started_at:%F %T} UTC")
    else:
        ended = f"{rollout.finished_at:%F %T} UTC" if rollout.finished_at else "-"
        out.print(f"ended {ended}")
    if rollout.reason:
        out.print(f"reason: {rollout.reason}")
    if rollout.incident_id is not None:
        out.print(
            f"incident: {rollout.incident_id} (`boltit incident report {rollout.incident_id}`)"
        )
    for entry in rollout.history:
        evidence, verdict = entry["evidence"], entry["verdict"]
        out.print(
            f"  {entry['at'][:19]} step {evidence['step_index'] + 1} at {evidence['percent']:g}%:"
            f" {verdict['action']} ({evidence['canary_rows']} canary, "
            f"{evidence['canary_errors']} errors, {evidence['production_rows']} Production): "
            f"{verdict['reason']}"
        )


def add_commands(group: typer.Typer) -> None:
    """Add ``start``, ``status`` and ``abort`` to the ``rollout`` group."""

    @group.command("start")
    def start(
        ctx: typer.Context,
        version: Annotated[str, typer.Argument(help="Model version to roll out.")],
        steps: Annotated[
            str, typer.Option("--steps", help="Rising canary shares in %, ending at 100.")
        ] = "5,25,50,100",
        interval: Annotated[
            str, typer.Option("--interval", help="Least time per step: 30s, 10m, 1h.")
        ] = "10m",
        min_rows: Annotated[
            int, typer.Option("--min-rows", help="Canary tickets a step needs to advance.")
        ] = 50,
        reason: Annotated[str | None, typer.Option("--reason", help="Why; audited.")] = None,
        model: Model = None,
        actor: Actor = None,
    ) -> None:
        """Raise VERSION's share step by step; abort to 0% on a regression; promote at the end."""
        from boltit.monitoring.rollout_plan import parse_plan

        if not version.strip().isdigit():
            raise BadInputError(f"model version must be a number, got {version!r}")
        plan = parse_plan(steps=steps, interval=interval, min_rows=min_rows)
        from boltit.core.schema import utcnow
        from boltit.monitoring.rollout import run_rollout, start_rollout
        from boltit.monitoring.rollout_steps import stop_rollout

        target = _target(ctx, model=model, actor=actor)
        begun = utcnow()

        def report(look: Look) -> None:
            out.print(progress_line(look))

        try:
            # From before the start: a SIGTERM in the moment after the share is set must
            # still take it back.
            with _sigterm_interrupts():
                rollout = start_rollout(target, version=version, plan=plan, reason=reason)
                out.print(
                    f"rollout {rollout.id}: v{rollout.version} of {rollout.model_name} at "
                    f"{rollout.percent:g}% (Production v{rollout.champion_version}); steps "
                    f"{', '.join(f'{s:g}%' for s in plan.steps)}, every {plan.interval_seconds:g} s"
                )
                last = run_rollout(target, rollout.id, progress=report)
        except KeyboardInterrupt:
            with suppress(NotFoundError):  # interrupted before it began: nothing to stop
                stopped = stop_rollout(
                    target, reason="interrupted", version=version.strip(), since=begun
                )
                err.print(f"rollout {stopped.id} interrupted: canary share back to 0%")
            raise typer.Exit(130) from None
        except Exception as exc:
            # Nobody watches the share once the loop is gone: take it back before reporting
            # (a refused start has nothing running). The store may be what failed; then the
            # original error is the one to report.
            with suppress(Exception):
                stop_rollout(
                    target,
                    reason=f"the rollout loop failed: {exc}"[:500],
                    version=version.strip(),
                    since=begun,
                )
            raise
        final = last.rollout
        if last.outcome == "finished" and last.promoted:
            out.print(f"rollout {final.id} finished: {final.reason}")
            return
        detail = f"; incident {final.incident_id}" if final.incident_id is not None else ""
        err.print(f"[bold red]rollout {final.id} {final.status}:[/] {final.reason}{detail}")
        raise typer.Exit(1)

    @group.command("status")
    def status(ctx: typer.Context, model: Model = None) -> None:
        """The running rollout, or the last one: its steps, verdicts and outcome."""
        from boltit.monitoring.rollout import latest_rollout

        context = app_context(ctx)
        _show(latest_rollout(context.database, model_name=model or context.settings.model_name))

    @group.command("abort")
    def abort(
        ctx: typer.Context,
        reason: Annotated[str | None, typer.Option("--reason", help="Why; required.")] = None,
        model: Model = None,
        actor: Actor = None,
    ) -> None:
        """Stop the running rollout: canary share to 0 now; its loop sees it and exits."""
        if reason is None or not reason.strip():
            raise BadInputError("rollout abort needs a --reason; aborts are audited")
        from boltit.monitoring.rollout_steps import stop_rollout

        target = _target(ctx, model=model, actor=actor)
        stopped = stop_rollout(target, reason=reason.strip())
        out.print(f"rollout {stopped.id} of v{stopped.version} aborted: canary share back to 0%")
