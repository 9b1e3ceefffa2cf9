"""``boltit demo``: the main job on the embedded default, end to end."""

import typer


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""
