"""Child processes that never outlive the process that started them.

``boltit serve --workers N`` runs uvicorn's supervisor in the CLI process and N worker
processes sharing its socket; ``boltit up`` starts ``mlflow server``, which starts uvicorn
and sometimes a job runner. A supervisor killed with SIGKILL runs no clean-up, so each
child asks the kernel for SIGTERM when its parent dies (Linux ``PR_SET_PDEATHSIG``;
elsewhere a watcher thread polls the parent). Otherwise orphaned workers keep serving
and the next start fails with EADDRINUSE (issue 13).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

from boltit.core.polling import wait_until

SUPERVISOR_ENV = "BOLTIT_SUPERVISOR_PID"  # set by the supervisor, read by its workers
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_WATCH_INTERVAL = 1.0  # seconds between parent checks where prctl is unavailable


def die_with_parent(parent_pid: int) -> None:
    """SIGTERM this process when ``parent_pid`` (its parent) exits, however it exits."""
    if not _ask_kernel_for_sigterm():
        threading.Thread(
            target=_watch_parent, args=(parent_pid,), name="parent-watch", daemon=True
        ).start()
    # The parent may have died before the request above: then no signal will ever come.
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


# Resolved at import, not in a forked child where another thread may have held the loader.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _ask_kernel_for_sigterm() -> bool:
    # The signal is sent when the *thread* that forked us exits; uvicorn's supervisor and
    # subprocess.Popen both start children from the main thread, which lives as long as
    # the process.
    if _prctl is None:
        return False
    return int(_prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)) == 0


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_WATCH_INTERVAL)
    os.kill(os.getpid(), signal.SIGTERM)


def child_dies_with_us() -> None:
    """``preexec_fn`` for ``subprocess.Popen``: the child gets SIGTERM when this process dies.

    Kept across ``exec``; only the direct child is covered, its own children are reached
    through the process group (``stop_process_group``) or its own signal forwarding.
    """
    parent = os.getppid()
    if _ask_kernel_for_sigterm() and os.getppid() != parent:
        os._exit(1)  # pragma: no cover - the parent died between fork and prctl


def stop_process_group(process: subprocess.Popen[bytes], *, timeout: float = 10) -> None:
    """SIGTERM every process in ``process``'s group (it must lead one), SIGKILL stragglers.

    Needs ``start_new_session=True`` at start, so the group holds only the child and what
    it started, never the caller.
    """
    group = process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    started = time.monotonic()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    # The leader's own children may still be shutting down after it exits.
    left = max(0.0, timeout - (time.monotonic() - started))
    wait_until(lambda: not _group_alive(group), timeout=left, interval=0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    if process.poll() is None:
        process.wait(timeout=5)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a member changed user: still alive
        return True
    return True
