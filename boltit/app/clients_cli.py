"""``boltit token``: create, list and revoke the service's client tokens."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from boltit.core.console import err, out
from boltit.core.context import app_context


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Client tokens for the HTTP service (scopes: classify, feedback, read, admin, review)."
    )

    @group.command("create")
    def create(
        ctx: typer.Context,
        name: Annotated[str, typer.Argument(help="Client name, recorded on its feedback.")],
        scope: Annotated[
            list[str],
            typer.Option(
                "--scope", help="classify, feedback, read, admin or review; repeat for more."
            ),
        ],
    ) -> None:
        """Create a client and print its token once; only its SHA-256 is stored."""
        from boltit.core.clients import ClientFile

        settings = app_context(ctx).settings
        client, token = ClientFile(settings.clients_path).create(name, scope)
        scopes = ", ".join(sorted(s.value for s in client.scopes))
        err.print(f"client {client.name!r} created with scopes {scopes} in {client.source}")
        err.print("the token is shown once; send it as 'Authorization: Bearer <token>':")
        # The token alone on stdout, so `TOKEN=$(boltit token create ...)` works.
        out.print(token, markup=False, highlight=False, soft_wrap=True)

    @group.command("list")
    def list_(ctx: typer.Context) -> None:
        """Every client the service accepts, with its scopes (never a token)."""
        from boltit.core.clients import ClientRegistry

        settings = app_context(ctx).settings
        clients = ClientRegistry(settings).clients
        if not clients:
            out.print(f"no clients in {settings.clients_path} and no BOLTIT_ADMIN_TOKEN")
            return
        table = Table(title=f"clients ({settings.clients_path})")
        for column in ("name", "scopes", "created", "source"):
            table.add_column(column)
        for client in clients:
            table.add_row(
                client.name,
                ", ".join(sorted(s.value for s in client.scopes)),
                client.created_at or "-",
                client.source,
            )
        out.print(table)

    @group.command("revoke")
    def revoke(
        ctx: typer.Context,
        name: Annotated[str, typer.Argument(help="Client to remove.")],
    ) -> None:
        """Remove a client; running services refuse its token from their next request."""
        from boltit.core.clients import ClientFile

        settings = app_context(ctx).settings
        client = ClientFile(settings.clients_path).revoke(name)
        out.print(f"client {client.name!r} revoked")

    app.add_typer(group, name="token")
