"""Waiting for something outside the process: a server that starts, a replica that swaps.

Every wait in the project (the demo, ``boltit up``, the monitor's rollback check, the bench,
the tests) goes through :func:`wait_until`, so a deadline means the same thing everywhere:
the check runs at least once and once more at the deadline, and no sleep runs past it.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(check: Callable[[], bool], *, timeout: float, interval: float) -> float | None:
    """Call ``check`` every ``interval`` seconds until it returns True.

    Args:
        check: Returns True when the wait is over. It may raise to give up early (a
            process that died will never answer); transient failures are its own to swallow.
        timeout: Seconds after which the wait gives up.
        interval: Seconds between two checks.

    Returns:
        Seconds waited when ``check`` succeeded, None when the deadline passed first.
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        if check():
            return time.monotonic() - started
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        time.sleep(min(interval, remaining))
