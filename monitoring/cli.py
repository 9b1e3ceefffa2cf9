"""Commands of this package, added to the root ``boltit`` CLI."""

import typer


def register(app: typer.Typer) -> None:
    """Add this package's commands to ``app``."""
