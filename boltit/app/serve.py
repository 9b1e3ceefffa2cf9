"""``boltit serve`` and ``boltit up``: the service wired with the monitor's alert rules.

Serving imports nothing of monitoring; this composition root hands it monitoring's
``AlertCollector`` so ``/metrics`` carries the alert rules, in the CLI's own process and in
every uvicorn worker (through :func:`worker_app`).
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from boltit.app.mlflow_server import answers, register_webhook, start_mlflow_server, wait_for_answer
from boltit.core.console import out
from boltit.core.context import app_context
from boltit.core.polling import wait_until
from boltit.core.settings import Settings, load_settings
from boltit.serving.process_tree import (
    SUPERVISOR_ENV,
    child_dies_with_us,
    die_with_parent,
    stop_process_group,
)
from boltit.serving.runner import check_port, refuse_open_service, run_service

if TYPE_CHECKING:
    from fastapi import FastAPI
    from prometheus_client.registry import Collector

    from boltit.serving.service import ServingService

# Uvicorn builds each worker's app with this, after tying the worker's life to the supervisor's.
FACTORY = "boltit.app.serve:worker_app"
DEFAULT_PORT = 8000
DEFAULT_MLFLOW_PORT = 5000
SYNC_INTERVAL_S = 5.0  # the UI's stage changes fire no webhook, so the watcher polls


def alert_collector(service: ServingService) -> Collector:
    """The monitor's alert rules for the service's ``/metrics`` (store reads only)."""
    from boltit.monitoring.alert_collector import AlertCollector

    return AlertCollector(
        settings=service.settings, database=service.database, production=service.served_version
    )


def service_app(settings: Settings) -> FastAPI:
    """The classification service as ``boltit serve`` runs it."""
    from boltit.serving.app import create_app

    return create_app(settings, collectors=[alert_collector])


def worker_app() -> FastAPI:
    """Uvicorn's factory in each worker: tie the worker to its supervisor, then build the app."""
    supervisor = os.environ.get(SUPERVISOR_ENV)
    if supervisor and int(supervisor) != os.getpid():  # a single-process run has no supervisor
        die_with_parent(int(supervisor))
    return service_app(load_settings())


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``up`` to ``app``."""

    @app.command("serve")
    def serve(
        ctx: typer.Context,
        host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="HTTP port.")] = DEFAULT_PORT,
        workers: Annotated[int, typer.Option(help="Replica processes (uvicorn workers).")] = 1,
    ) -> None:
        """Serve models:/<name>@Production and follow the alias without restarts."""
        context = app_context(ctx)
        settings = context.settings
        refuse_open_service(settings)
        _ = context.database  # migrate once here, before workers race to do it
        out.print(
            f"serving [bold]{settings.model_name}@Production[/] on http://{host}:{port} "
            f"({workers} worker{'s' if workers > 1 else ''}; alias polled every "
            f"{settings.poll_interval_seconds:g} s)"
        )
        run_service(settings, factory=FACTORY, host=host, port=port, workers=workers)

    @app.command("up")
    def up(
        ctx: typer.Context,
        port: Annotated[int, typer.Option(help="Port of the classification service.")] = (
            DEFAULT_PORT
        ),
        mlflow_port: Annotated[int, typer.Option(help="Port of the MLflow server and UI.")] = (
            DEFAULT_MLFLOW_PORT
        ),
    ) -> None:
        """Start the MLflow tracking server with its UI and the service, both on 127.0.0.1."""
        context = app_context(ctx)
        settings = context.settings
        check_port(mlflow_port)
        refuse_open_service(settings)
        _ = context.database
        # Uvicorn re-raises the SIGTERM it stopped on once it is done; by default that ends
        # the process before the ``finally`` below could stop the MLflow server.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        server = start_mlflow_server(settings, port=mlflow_port)
        watcher = None
        try:
            mlflow_url = f"http://127.0.0.1:{mlflow_port}"
            wait_for_answer(f"{mlflow_url}/health", process=server, what="mlflow server")
            out.print(f"MLflow UI and registry: {mlflow_url}")
            watcher = start_sync_watcher(settings)
            out.print(
                "registry sync watcher: changes made in the UI are judged every "
                f"{SYNC_INTERVAL_S:g} s (log {settings.state_dir / 'sync-watcher.log'})"
            )
            if settings.webhook_secret is not None:
                register_webhook(
                    settings,
                    mlflow_url=f"http://127.0.0.1:{mlflow_port}",
                    service_url=f"http://127.0.0.1:{port}",
                )
                out.print("alias changes made in the UI reach the service by webhook (and polling)")
            _announce_when_answering(port)
            run_service(settings, factory=FACTORY, host="127.0.0.1", port=port, workers=1)
        finally:
            if watcher is not None:
                stop_process_group(watcher)
            stop_process_group(server)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def start_sync_watcher(settings: Settings) -> subprocess.Popen[bytes]:
    """``python -m boltit.registry.sync_watcher`` in a session of its own, dying with us.

    A process, not a thread: the watcher's gate runs must not hold the service's GIL, and
    the service shares nothing with the registry but MLflow and the database.
    """
    env = dict(os.environ)
    env["BOLTIT_STATE_DIR"] = str(settings.state_dir.resolve())
    with (settings.state_dir / "sync-watcher.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "boltit.registry.sync_watcher", str(SYNC_INTERVAL_S)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=child_dies_with_us,
        )


def _announce_when_answering(port: int) -> None:
    """Print the service's URL once it answers; uvicorn runs in the foreground meanwhile."""
    import threading

    url = f"http://127.0.0.1:{port}"

    def announce() -> None:
        waited = wait_until(lambda: answers(f"{url}/health"), timeout=math.inf, interval=0.3)
        state = "ready" if _answers_ok(f"{url}/ready") else "waiting for a Production model"
        out.print(
            f"classification service: {url}  (docs at /docs; {state}; "
            f"answered {waited or 0.0:.1f} s after the MLflow UI)"
        )

    threading.Thread(target=announce, name="announce-service", daemon=True).start()


def _answers_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False
