"""Who an action is recorded as."""

import getpass
import os


def current_actor(explicit: str | None = None) -> str:
    """The ``--actor`` given, else the OS user."""
    if explicit and explicit.strip():
        return explicit.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")
