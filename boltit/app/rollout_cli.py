"""``boltit rollout``: the challenger's part in serving (shadow, canary share), changed live.

Each change is a database flag that every replica follows within a second and that the
audit history records; ``start``/``status``/``abort`` (gradual rollouts) are added by their
own module through ``add_commands``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from boltit.core.actors import current_actor
from boltit.core.console import out
from boltit.core.context import AppContext, app_context

if TYPE_CHECKING:
    from boltit.core.flag_values import FlagValues


class Switch(StrEnum):
    on = "on"
    off = "off"


Reason = Annotated[str | None, typer.Option(help="Why; kept in the history.")]
Actor = Annotated[str | None, typer.Option(help="Who; defaults to the OS user.")]


def parse_percent(text: str) -> float:
    """``10``, ``12.5`` or ``10%`` as a share from 0 to 100; a clear error otherwise."""
    from boltit.core.flag_values import FlagValueError, checked_canary_percent

    try:
        number = float(text.strip().removesuffix("%"))
    except ValueError:
        raise FlagValueError(
            f"canary percent must be a number from 0 to 100, got {text!r}"
        ) from None
    return checked_canary_percent(number)


def _seed(context: AppContext) -> None:
    """Store the environment's first values, so a change's "before" is what replicas follow."""
    from boltit.core import flags

    flags.seed_defaults(context.database, flags.defaults_from(context.settings))


def _current_values(context: AppContext) -> FlagValues:
    """Every flag: stored values over the environment's (reading writes nothing)."""
    from boltit.core import flags

    with context.database.session() as session:
        return flags.read_values(session, defaults=flags.defaults_from(context.settings))


def _loaded_challenger(context: AppContext) -> str | None:
    """The challenger version a replica last loaded, from the audit history (None if never)."""
    from sqlalchemy import select

    from boltit.core.schema import AuditEvent
    from boltit.core.vocabulary import CHALLENGER

    query = (
        select(AuditEvent)
        .where(
            AuditEvent.action == "model_swap",
            AuditEvent.model_name == context.settings.model_name,
        )
        .order_by(AuditEvent.id.desc())
        .limit(200)
    )
    with context.database.session() as session:
        for event in session.scalars(query):
            if (event.details or {}).get("alias") == CHALLENGER:
                return f"version {event.to_version} (loaded by {event.actor} at {event.at:%F %T})"
    return None


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="The challenger's part in serving: shadow scoring and the canary share, live."
    )

    @group.command("shadow")
    def shadow(
        ctx: typer.Context,
        value: Annotated[Switch, typer.Argument(help="on or off.")],
        reason: Reason = None,
        actor: Actor = None,
    ) -> None:
        """Score Production's tickets with the challenger too (stored, never returned)."""
        from boltit.core import flags

        context = app_context(ctx)
        _seed(context)
        with context.database.session() as session:
            before = flags.set_shadow(
                session, value is Switch.on, actor=current_actor(actor), reason=reason
            )
        out.print(f"shadow_enabled: {'on' if before else 'off'} -> {value.value}")

    @group.command("canary")
    def canary(
        ctx: typer.Context,
        percent: Annotated[str, typer.Argument(help="Share of tickets, 0 to 100 (0 stops).")],
        reason: Reason = None,
        actor: Actor = None,
    ) -> None:
        """Send PERCENT % of tickets (sticky by text) to the challenger."""
        share = parse_percent(percent)  # before anything heavy is imported, opened or written

        from boltit.core import flags

        context = app_context(ctx)
        _seed(context)
        with context.database.session() as session:
            before = flags.set_canary_percent(
                session, share, actor=current_actor(actor), reason=reason
            )
        out.print(f"canary_percent: {before:g} -> {share:g}")

    @group.command("show")
    def show(ctx: typer.Context) -> None:
        """Print the rollout flags and the challenger version replicas last loaded."""
        context = app_context(ctx)
        values = _current_values(context)
        out.print(f"shadow_enabled = {'on' if values.shadow_enabled else 'off'}")
        out.print(f"canary_percent = {values.canary_percent:g}")
        loaded = _loaded_challenger(context)
        out.print(f"challenger = {loaded or 'never loaded by a replica'}")

    # Gradual rollouts (start / status / abort) add their commands here:
    from boltit.monitoring.rollout_commands import add_commands

    add_commands(group)

    app.add_typer(group, name="rollout")
