"""``boltit flags``: read and set the runtime feature flags every replica follows."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from boltit.core.actors import current_actor
from boltit.core.console import out
from boltit.core.context import app_context
from boltit.core.vocabulary import AUTO_APPLY_FLAG, SHADOW_FLAG


class FlagName(StrEnum):
    auto_apply = "auto-apply"
    shadow = "shadow"


class Switch(StrEnum):
    on = "on"
    off = "off"


_FLAG_KEYS = {FlagName.auto_apply: AUTO_APPLY_FLAG, FlagName.shadow: SHADOW_FLAG}


def shown(value: bool | float) -> str:
    """A switch as on/off, a share as its number."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}"


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Runtime feature flags shared by every service replica.")

    @group.command("show")
    def show(ctx: typer.Context) -> None:
        """Print every flag and its value (the canary share is set with ``boltit rollout``)."""
        from boltit.core import flags

        context = app_context(ctx)
        with context.database.session() as session:
            values = flags.read_values(session, defaults=flags.defaults_from(context.settings))
        for name, value in values.as_dict().items():
            out.print(f"{name} = {shown(value)}")

    @group.command("set")
    def set_(
        ctx: typer.Context,
        name: Annotated[FlagName, typer.Argument(help="Flag to change.")],
        value: Annotated[Switch, typer.Argument(help="on or off.")],
        reason: Annotated[str | None, typer.Option(help="Why; kept in the history.")] = None,
        actor: Annotated[str | None, typer.Option(help="Who; defaults to the OS user.")] = None,
    ) -> None:
        """Turn a flag on or off; every replica sees it within a second."""
        from boltit.core import flags

        context = app_context(ctx)
        key = _FLAG_KEYS[name]
        flags.seed_defaults(context.database, flags.defaults_from(context.settings))
        with context.database.session() as session:
            before = flags.set_flag(
                session, key, enabled=value is Switch.on, actor=current_actor(actor), reason=reason
            )
        out.print(f"{key}: {'on' if before else 'off'} -> {value.value}")

    app.add_typer(group, name="flags")
