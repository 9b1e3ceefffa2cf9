"""``boltit pipeline retrain``: the scheduled retraining, one command for cron or a CronJob.

Data checks → retrain with recent labels → validate → approval (when the gate config says
``approval: required``) → promote, stopping at the first step that says no. Each step calls
the library function its own command calls (``check-data``, ``retrain``, ``validate``,
``promote``), so each is audited as that command audits it; the run ends with one summary
table and an exit code naming the step that stopped it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from boltit.core.actors import current_actor
from boltit.core.console import out
from boltit.core.context import app_context
from boltit.core.errors import BadInputError, BoltitError
from boltit.training.cli import (
    AllowFailing,
    DataOption,
    LabelColumn,
    MinClassRows,
    OtherLabel,
    PriorityColumn,
    RecentDays,
    RowsOption,
    SeedOption,
    TextColumn_,
)

if TYPE_CHECKING:  # the model and registry stacks cost seconds; `boltit --help` needs none
    import pandas as pd

    from boltit.core.context import AppContext
    from boltit.registry.target import Target
    from boltit.training.data import TicketDataset
    from boltit.training.train import TrainRequest


class Stop(IntEnum):
    """The pipeline's exit codes: 0 when the new version serves, else the step that stopped.

    1 and 2 stay what they mean for every command (a refusal, a bad input before the run).
    """

    promoted = 0
    data_checks = 3
    retrain = 4
    validate = 5
    approval = 6
    promote = 7


@dataclass
class Summary:
    """One row per step: (step, outcome, details); steps after a stop read ``not run``."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)
    stopped_at: Stop = Stop.promoted

    def passed(self, step: str, details: str) -> None:
        self.rows.append((step, "ok", details))

    def skipped(self, step: str, details: str) -> None:
        self.rows.append((step, "skipped", details))

    def stopped(self, step: str, stop: Stop, details: str, outcome: str = "STOPPED") -> None:
        self.rows.append((step, outcome, details))
        self.stopped_at = stop

    def table(self) -> Table:
        table = Table(title="Scheduled retraining")
        for column in ("step", "outcome", "details"):
            table.add_column(column, overflow="fold")
        reached = {step for step, _, _ in self.rows}
        styled = {"ok": "[green]ok[/]", "skipped": "[dim]skipped[/]"}
        for step, outcome, details in self.rows:
            table.add_row(step, styled.get(outcome, f"[bold red]{outcome}[/]"), details)
        for step in STEPS:
            if step not in reached:
                table.add_row(step, "[dim]not run[/]", "")
        return table


STEPS = ("data checks", "retrain", "validate", "approval", "promote")
AWAITING_APPROVAL = "awaiting approval"
SOURCE = "pipeline"


def register(app: typer.Typer) -> None:
    """Add ``pipeline retrain`` to ``app``."""
    pipeline_app = typer.Typer(help="Multi-step runs for a scheduler (cron, Kubernetes CronJob).")
    app.add_typer(pipeline_app, name="pipeline")

    @pipeline_app.command("retrain")
    def retrain_pipeline_command(
        ctx: typer.Context,
        data: DataOption = None,
        text_column: TextColumn_ = "text",
        label_column: LabelColumn = "category",
        priority_column: PriorityColumn = None,
        include_recent_days: RecentDays = 90,
        rows: RowsOption = 4000,
        seed: SeedOption = 42,
        min_class_rows: MinClassRows = 0,
        other_label: OtherLabel = "Other",
        min_accuracy: Annotated[
            str | None,
            typer.Option(
                "--min-accuracy",
                help="Override the min_accuracy gate (0-1; empty: the gates config's).",
            ),
        ] = None,
        actor: Annotated[
            str | None, typer.Option("--actor", help="Who the history records (default: OS user).")
        ] = None,
        allow_failing_data: AllowFailing = False,
    ) -> None:
        """Data checks → retrain → validate → approval → promote; non-zero exit at a stop.

        Exit 0: the retrained version serves. 3: the training data failed its suite.
        4: training failed. 5: the new version failed its gates. 6: it awaits a person's
        approval (gate config ``approval: required``). 7: promotion was refused.
        """
        threshold = _fraction(min_accuracy)
        context = app_context(ctx)
        who = current_actor(actor)
        summary = Summary()
        request = _checked_request(
            context,
            summary,
            _Inputs(
                data=data,
                text_column=text_column,
                label_column=label_column,
                priority_column=priority_column,
                include_recent_days=include_recent_days,
                rows=rows,
                seed=seed,
                min_class_rows=min_class_rows,
                other_label=other_label,
                actor=who,
                allow_failing_data=allow_failing_data,
            ),
        )
        version = _retrain(context, summary, request) if request is not None else None
        if version is not None:
            target = _target(context, who)
            if _validate(target, summary, version, threshold) and _approval(
                target, summary, version
            ):
                _promote(target, summary, version)
        out.print(summary.table())
        if summary.stopped_at is not Stop.promoted:
            raise typer.Exit(int(summary.stopped_at))


@dataclass(frozen=True)
class _Inputs:
    data: str | None
    text_column: str
    label_column: str
    priority_column: str | None
    include_recent_days: int
    rows: int
    seed: int
    min_class_rows: int
    other_label: str
    actor: str
    allow_failing_data: bool


def _fraction(value: str | None) -> float | None:
    # MLproject passes an unset parameter as "": the gates config's threshold then holds.
    if value is None or not value.strip():
        return None
    try:
        fraction = float(value)
    except ValueError:
        fraction = -1.0
    if not 0.0 <= fraction <= 1.0:
        raise BadInputError(f"--min-accuracy must be a number between 0 and 1, got {value!r}")
    return fraction


def _step(summary: Summary, step: str, stop: Stop, work: Callable[[], str | None]) -> bool:
    """Run one step; a refusal or error stops the pipeline, recorded against the step."""
    try:
        refusal = work()
    except BoltitError as exc:
        refusal = str(exc)
    if refusal is not None:
        summary.stopped(step, stop, refusal)
        return False
    return True


def _checked_request(context: AppContext, summary: Summary, inputs: _Inputs) -> TrainRequest | None:
    """The retrain request (base data + recent labels), once its data passed the suite."""
    built: list[TrainRequest] = []

    def check() -> str | None:
        from boltit.data_checks import paths
        from boltit.data_checks.suites import run_training_data_suite

        request = _retrain_request(context, inputs)
        frame = _folded(request)
        report = run_training_data_suite(frame, data_docs_dir=paths.data_docs_dir(context.settings))
        result = report.write_json(paths.result_path(context.settings, report.suite))
        built.append(request)
        if report.success:
            summary.passed("data checks", f"{len(frame):,} tickets passed; {result}")
            return None
        failed = ", ".join(o.label for o in report.failures)
        if inputs.allow_failing_data:
            summary.passed("data checks", f"FAILED ({failed}), overridden (--allow-failing-data)")
            return None
        return f"{failed}; result {result}"

    if not _step(summary, "data checks", Stop.data_checks, check):
        return None
    return built[0]


def _retrain_request(context: AppContext, inputs: _Inputs) -> TrainRequest:
    """What ``boltit retrain`` with the same options would train on."""
    from boltit.training.cli import base_dataset, route_arrivals
    from boltit.training.data import combine, from_store
    from boltit.training.model import ModelConfig
    from boltit.training.train import TrainConfig, TrainRequest

    base = base_dataset(
        inputs.data,
        inputs.text_column,
        inputs.label_column,
        inputs.priority_column,
        inputs.rows,
        inputs.seed,
    )
    recent: TicketDataset | None = from_store(context.database, days=inputs.include_recent_days)
    out.print(
        f"ticket store: {recent.rows if recent else 0:,} labelled tickets "
        f"from the last {inputs.include_recent_days} days"
    )
    additions = None
    if recent is not None:
        recent, additions = route_arrivals(context, recent, inputs.seed)
    return TrainRequest(
        dataset=combine(base, recent),
        config=TrainConfig(
            model=ModelConfig(seed=inputs.seed),
            min_class_rows=inputs.min_class_rows,
            other_label=inputs.other_label,
        ),
        source=SOURCE,
        allow_failing_data=inputs.allow_failing_data,
        actor=inputs.actor,
        evaluation_additions=additions,
    )


def _folded(request: TrainRequest) -> pd.DataFrame:
    """The frame training's own data check sees (rare categories folded when asked)."""
    from boltit.training.rare import fold_rare_categories

    frame = request.dataset.frame
    if request.config.min_class_rows <= 0:
        return frame
    return fold_rare_categories(
        frame, min_rows=request.config.min_class_rows, other=request.config.other_label
    ).frame


def _retrain(context: AppContext, summary: Summary, request: TrainRequest) -> str | None:
    """The new version's number, or None when training stopped the pipeline."""
    from boltit.training.train import train

    trained: list[str] = []

    def fit() -> str | None:
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        result = train(
            request,
            settings=context.settings,
            client=context.mlflow_client,
            database=context.database,
        )
        if result.model_version is None:
            return "no version was registered"
        trained.append(result.model_version)
        accuracy = result.metrics.get("accuracy")
        shown = f", accuracy {accuracy:.4f}" if accuracy is not None else ""
        summary.passed(
            "retrain",
            f"v{result.model_version} trained on {result.train_rows:,} tickets{shown}, "
            f"run {result.run_id}",
        )
        return None

    return trained[0] if _step(summary, "retrain", Stop.retrain, fit) else None


def _target(context: AppContext, actor: str) -> Target:
    from boltit.registry.lookup import prepare_mlflow_for_cli

    prepare_mlflow_for_cli(context.settings)
    return {
        "client": context.mlflow_client,
        "database": context.database,
        "name": context.settings.model_name,
        "actor": actor,
        "settings": context.settings,
    }


def _validate(target: Target, summary: Summary, version: str, min_accuracy: float | None) -> bool:
    from boltit.registry.validate import validate

    def gates() -> str | None:
        result = validate(**target, version=version, min_accuracy=min_accuracy)
        champion = result.report.champion
        against = f"against v{champion}" if champion else "no champion"
        if not result.passed:
            failing = "; ".join(r.describe() for r in result.failures)
            return f"v{version} failed its gates ({against}): {failing}"
        summary.passed("validate", f"v{version} passed its gates ({against}); alias challenger")
        return None

    return _step(summary, "validate", Stop.validate, gates)


def _approval(target: Target, summary: Summary, version: str) -> bool:
    """Whether promotion may go ahead; a version awaiting approval stops the run unpromoted.

    Checked here rather than left to ``promote``: a scheduled run that waits for a person
    is not a refused promotion, and should not be recorded as one.
    """
    from boltit.registry.approval import approval_refusal
    from boltit.registry.gate_config import load_gate_config

    config = load_gate_config(target["settings"].gates_config)
    if config.approval != "required":
        summary.skipped("approval", "not required by the gate config")
        return True
    with target["database"].session() as session:
        waiting = approval_refusal(session, config, name=target["name"], version=version)
    if waiting is None:
        summary.passed("approval", f"v{version} approved")
        return True
    summary.stopped(
        "approval",
        Stop.approval,
        f"v{version} is challenger; after `boltit approve {version} --reason TEXT` by someone "
        f"other than its trainer, `boltit promote {version}` makes it serve",
        outcome=AWAITING_APPROVAL,
    )
    return False


def _promote(target: Target, summary: Summary, version: str) -> bool:
    from boltit.registry.promote import promote

    def move() -> str | None:
        result = promote(**target, version=version, reason="scheduled retraining (pipeline)")
        if not result.changed:
            summary.passed("promote", f"v{version} already served; nothing changed")
        else:
            summary.passed("promote", f"Production v{result.previous or '-'} -> v{version}")
        return None

    return _step(summary, "promote", Stop.promote, move)
