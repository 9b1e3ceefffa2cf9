"""Terminal output shared by every command: one console for results, one for errors."""

from rich.console import Console

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
