"""Child processes that die with the test process, even when pytest itself is killed -9.

A test's ``finally`` stops what it started, but a SIGKILLed pytest (a CI timeout, an
impatient developer) runs no finaliser; a service started in its own session would then keep
its port and its CPU. Linux's parent-death signal kills the child when pytest goes.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
# Resolved before any fork: the child runs only the call itself between fork and exec.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def killed_with(parent_pid: int, sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets ``sig`` when its parent
    (the thread that started it, here pytest's main thread) exits.

    SIGKILL for a process whose children die with it (``boltit serve``'s supervisor);
    SIGTERM for one that must stop its own children (``boltit up``, ``mlflow server``).
    The signal survives ``exec`` and ``setsid``; ``parent_pid`` closes the race of a parent
    that died between the fork and the ``prctl``.
    """

    def arm() -> None:
        _prctl(_PR_SET_PDEATHSIG, sig)
        if os.getppid() != parent_pid:
            os._exit(1)

    return arm
