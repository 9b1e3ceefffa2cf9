"""The registry's audit trail: recording, the serving timeline, the tag summary, the table."""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.table import Table
from sqlalchemy.orm import Session

from boltit.core import audit
from boltit.core.db import Database
from boltit.core.errors import BadInputError
from boltit.core.schema import AuditEvent

if TYPE_CHECKING:  # `boltit history` reads only the project database: no MLflow import
    from mlflow import MlflowClient
    from typing_extensions import Unpack  # typing.Unpack is 3.12+

REGISTRY_ACTIONS = ["validate", "promote", "rollback", "registry_sync", "sync_revert"]
# Events after which ``to_version`` held Production.
_SERVING_ACTIONS = {"promote", "rollback"}


def audited_reason(reason: str | None, *, force: bool, what: str) -> str | None:
    """The stripped reason (None when blank); ``force`` without one is refused.

    Raises:
        BadInputError: ``force`` without a reason, since forced ``what`` are audited.
    """
    reason = reason.strip() if reason and reason.strip() else None
    if force and reason is None:
        raise BadInputError(f"--force needs a --reason; forced {what} are audited")
    return reason


def serving_timeline(session: Session, *, model_name: str) -> list[str]:
    """Versions in the order they started serving, as recorded in the history."""
    timeline: list[str] = []
    for event in audit.history(
        session, model_name=model_name, actions=[*_SERVING_ACTIONS, "registry_sync"]
    ):
        if event.to_version is None:
            continue
        outcome = (event.details or {}).get("outcome")
        served = (event.action in _SERVING_ACTIONS and outcome != "refused") or (
            event.action == "registry_sync" and outcome == "accepted"
        )
        if served and (not timeline or timeline[-1] != event.to_version):
            timeline.append(event.to_version)
    return timeline


def recorded_production(session: Session, *, model_name: str) -> str | None:
    """The version the history says serves now."""
    timeline = serving_timeline(session, model_name=model_name)
    return timeline[-1] if timeline else None


def served_before(timeline: list[str], *, version: str, excluding: set[str]) -> str | None:
    """The version that served just before ``version`` last started serving."""
    if version not in timeline:
        return None
    start = len(timeline) - 1 - timeline[::-1].index(version)
    for earlier in reversed(timeline[:start]):
        if earlier not in excluding and earlier != version:
            return earlier
    return None


def summarise_on_model(client: MlflowClient, *, name: str, key: str, text: str) -> None:
    """Keep the latest event of each kind as a registered-model tag, seen in the MLflow UI."""
    from mlflow.exceptions import MlflowException

    # The history row is the record; a missing tag summary must not undo it.
    with suppress(MlflowException):
        client.set_registered_model_tag(name, f"boltit.last_{key}", text[:5000])


def event_summary(event: AuditEvent) -> str:
    """One line: when, who, what, from→to, why."""
    move = f"v{event.from_version or '-'} -> v{event.to_version or '-'}"
    forced = " FORCED" if event.forced else ""
    # A refused promotion or rollback moved nothing; the tag must not read like a move.
    refused = " REFUSED" if (event.details or {}).get("outcome") == "refused" else ""
    reason = f": {event.reason}" if event.reason else ""
    return (
        f"{event.at:%Y-%m-%d %H:%M:%S}Z {event.actor} {event.action}{forced}{refused} "
        f"{move}{reason}"
    )


def record_event(
    session: Session,
    client: MlflowClient,
    *,
    action: str,
    actor: str,
    model_name: str,
    **fields: Unpack[audit.EventFields],
) -> AuditEvent:
    """Write the history row in the caller's transaction and refresh the tag summary."""
    event = audit.record(session, action=action, actor=actor, model_name=model_name, **fields)
    summarise_on_model(client, name=model_name, key=action, text=event_summary(event))
    return event


def registry_history(
    database: Database,
    *,
    model_name: str | None = None,
    limit: int | None = None,
    since: datetime | None = None,
    registry_only: bool = True,
) -> list[AuditEvent]:
    """Events oldest first; with ``registry_only=False`` also trainings, flags and incidents."""
    with database.session() as session:
        events = audit.history(
            session, actions=REGISTRY_ACTIONS if registry_only else None, since=since
        )
    if model_name is not None:
        events = [e for e in events if e.model_name in (model_name, None)]
    return events[-limit:] if limit else events


def _gates_cell(details: dict[str, Any] | None) -> str:
    gates = (details or {}).get("gates")
    guards = (details or {}).get("guards")
    if isinstance(guards, list) and guards:  # a rollback's guards (boltit.registry.rollback_guard)
        fired = [f"incident #{g['incident']}" if g.get("incident") else g["guard"] for g in guards]
        return "guarded: " + ", ".join(fired)
    if not isinstance(gates, dict) or gates.get("passed") is None:
        return ""
    failed = gates.get("failed") or []
    verdict = "passed" if gates.get("passed") else "failed"
    return verdict + (f" ({', '.join(failed)})" if failed else "")


def history_table(events: list[AuditEvent]) -> Table:
    """The history as a rich table, oldest first (the model column only when mixed)."""
    models = {event.model_name for event in events}
    table = Table(title="History")
    table.add_column("when (UTC)", no_wrap=True)
    table.add_column("action", no_wrap=True)
    table.add_column("actor", overflow="fold")
    if len(models) > 1:
        table.add_column("model", overflow="fold")
    for column in ("from", "to"):
        table.add_column(column, no_wrap=True)
    table.add_column("gates", overflow="fold")
    table.add_column("reason", overflow="fold")
    for event in events:
        action = event.action + (" [bold red]forced[/]" if event.forced else "")
        outcome = (event.details or {}).get("outcome")
        if outcome in {"refused", "accepted", "reverted"}:
            action += f" [dim]{outcome}[/]"
        row = [f"{event.at:%Y-%m-%d %H:%M:%S}", action, event.actor]
        if len(models) > 1:
            row.append(event.model_name or "")
        row += [
            f"v{event.from_version}" if event.from_version else "",
            f"v{event.to_version}" if event.to_version else "",
            _gates_cell(event.details),
            event.reason or "",
        ]
        table.add_row(*row)
    return table
