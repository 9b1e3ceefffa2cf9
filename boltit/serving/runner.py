"""Running the service under uvicorn: one process, or a supervisor with worker processes."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from boltit.core.console import err
from boltit.core.errors import BadInputError
from boltit.core.settings import Settings
from boltit.serving.process_tree import SUPERVISOR_ENV


def check_port(port: int) -> None:
    """Refuse a port number no socket can bind, naming it."""
    if not 1 <= port <= 65535:
        raise BadInputError(f"--port must be between 1 and 65535, not {port}")


def run_service(settings: Settings, *, factory: str, host: str, port: int, workers: int) -> None:
    """Run uvicorn on the app ``factory`` (``module:function``); each worker builds its own app.

    Workers re-read settings from the environment, so the factory must build from it.
    """
    import uvicorn

    check_port(port)
    if workers < 1:
        raise BadInputError(f"--workers must be at least 1, not {workers}")
    # Workers re-read settings from the environment; pin the state folder the CLI resolved.
    os.environ.setdefault("BOLTIT_STATE_DIR", str(settings.state_dir.resolve()))
    metrics_dir = None
    # A value inherited from some other supervisor would make a lone server end itself.
    os.environ.pop(SUPERVISOR_ENV, None)
    if workers > 1:
        # Uvicorn's supervisor runs in this process: its workers die with it, even on kill -9.
        os.environ[SUPERVISOR_ENV] = str(os.getpid())
        # Sum counters and histograms over every worker (prometheus_client multiprocess mode).
        remove_orphaned_metrics(settings.state_dir)
        metrics_dir = Path(
            tempfile.mkdtemp(prefix=f"metrics-{os.getpid()}-", dir=settings.state_dir)
        )
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    try:
        uvicorn.run(
            factory,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
            # Each worker imports MLflow and loads and warms the model before it is ready;
            # uvicorn's 5 s default would kill and respawn workers forever on a busy machine.
            timeout_worker_healthcheck=120,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def remove_orphaned_metrics(state_dir: Path) -> None:
    """Delete the metrics folders of supervisors that died without removing their own."""
    for folder in state_dir.glob("metrics-*-*"):
        owner = folder.name.split("-")[1]
        if owner.isdigit() and not _process_exists(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process holds that id now
        return True
    return True


def refuse_open_service(settings: Settings) -> None:
    """One clear line, before any worker starts, when no client token is configured."""
    from boltit.serving.auth import ServiceAuth  # FastAPI, imported only when serving

    ServiceAuth(settings).check_startup()
    if settings.insecure_open:
        err.print(
            "[yellow]warning:[/] BOLTIT_INSECURE_OPEN=true: callers without a token may "
            "classify, send feedback and export (their feedback is ignored by the monitor)"
        )
