"""``boltit serve`` and ``boltit up``: the classification service, alone or with the MLflow UI."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from boltit.core.console import err, out
from boltit.core.context import app_context
from boltit.core.errors import BadInputError
from boltit.core.settings import Settings
from boltit.serving.process_tree import (
    SUPERVISOR_ENV,
    child_dies_with_us,
    stop_process_group,
)

# Builds the app from the environment (boltit.serving.app:app_from_environment), after tying each
# worker's life to the supervisor's.
FACTORY = "boltit.serving.process_tree:worker_app"
DEFAULT_PORT = 8000
DEFAULT_MLFLOW_PORT = 5000
MLFLOW_START_TIMEOUT = 180  # seconds; a cold start on a busy 2-core machine takes a minute
SYNC_INTERVAL_S = 5.0  # the UI's stage changes fire no webhook, so the watcher polls


def _check_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise BadInputError(f"--port must be between 1 and 65535, not {port}")


def run_service(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """Run uvicorn on the app factory; each worker builds its own service from the environment."""
    import uvicorn

    _check_port(port)
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
            FACTORY,
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
    from boltit.serving.auth import ServiceAuth

    ServiceAuth(settings).check_startup()
    if settings.insecure_open:
        err.print(
            "[yellow]warning:[/] BOLTIT_INSECURE_OPEN=true: callers without a token may "
            "classify, send feedback and export (their feedback is ignored by the monitor)"
        )


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
        run_service(settings, host=host, port=port, workers=workers)

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
        _check_port(mlflow_port)
        refuse_open_service(settings)
        _ = context.database
        # Uvicorn re-raises the SIGTERM it stopped on once it is done; by default that ends
        # the process before the ``finally`` below could stop the MLflow server.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        server = start_mlflow_server(settings, port=mlflow_port)
        watcher = None
        try:
            mlflow_url = f"http://127.0.0.1:{mlflow_port}"
            _wait_for_answer(f"{mlflow_url}/health", process=server, what="mlflow server")
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
            run_service(settings, host="127.0.0.1", port=port, workers=1)
        finally:
            if watcher is not None:
                stop_process_group(watcher)
            stop_process_group(server)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def start_mlflow_server(settings: Settings, *, port: int) -> subprocess.Popen[bytes]:
    """``mlflow server`` on the project's own backend store, with webhooks allowed to loopback.

    It leads a process group of its own, so ``stop_process_group`` reaches its uvicorn and
    job runner too, and it gets SIGTERM (which it forwards) if this process dies first.
    """
    mlflow_bin = shutil.which("mlflow") or str(Path(sys.executable).with_name("mlflow"))
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https")
    env.setdefault("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
    # A fixed key, or each server start could not decrypt the secrets it stored (mlflow#19896).
    env.setdefault("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY", _webhook_key(settings))
    # Its job runner (huey workers for GenAI jobs this project never submits) is 7 more
    # processes and gigabytes of RSS; a user who wants it sets the variable to true.
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    command = [
        mlflow_bin,
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        settings.tracking_uri,
        "--artifacts-destination",
        settings.artifact_root,
        "--workers",
        "1",
    ]
    log_path = settings.state_dir / "mlflow-server.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Runs between fork and exec: one prctl call, resolved before the fork.
            preexec_fn=child_dies_with_us,
        )
    try:
        _wait_for_port(port, process, log_path)
    except BaseException:  # a failed start, or SIGTERM/Ctrl-C while waiting: leave nothing
        stop_process_group(process)
        raise
    return process


def start_sync_watcher(settings: Settings) -> subprocess.Popen[bytes]:
    """``python -m boltit.registry.sync_watcher`` in a session of its own, dying with us.

    A process, not a thread: the service never imports ``registry`` (docs/ARCHITECTURE.md),
    and the watcher's gate runs must not hold the service's GIL.
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


def _answers(url: str) -> bool:
    """Any HTTP answer: the process is up (``/health`` is 503 until a model loads)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _wait_for_answer(url: str, *, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + MLFLOW_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BadInputError(f"{what} exited with {process.returncode}")
        if _answers(url):
            return
        time.sleep(0.3)
    raise BadInputError(f"{what} did not answer {url} in {MLFLOW_START_TIMEOUT} s")


def _announce_when_answering(port: int) -> None:
    """Print the service's URL once it answers; uvicorn runs in the foreground meanwhile."""
    import threading

    url = f"http://127.0.0.1:{port}"

    def announce() -> None:
        started = time.monotonic()
        while not _answers(f"{url}/health"):
            time.sleep(0.3)
        state = "ready" if _answers_ok(f"{url}/ready") else "waiting for a Production model"
        out.print(
            f"classification service: {url}  (docs at /docs; {state}; "
            f"answered {time.monotonic() - started:.1f} s after the MLflow UI)"
        )

    threading.Thread(target=announce, name="announce-service", daemon=True).start()


def _answers_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


WEBHOOK_NAME = "boltit-serving"
ALIAS_EVENTS = ["model_version_alias.created", "model_version_alias.deleted"]


def _webhook_key(settings: Settings) -> str:
    from cryptography.fernet import Fernet

    path = settings.state_dir / "webhook-encryption.key"
    if not path.exists():
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Fernet.generate_key())
        path.chmod(0o600)
    return path.read_text().strip()


def register_webhook(settings: Settings, *, mlflow_url: str, service_url: str) -> None:
    """Point the server's alias webhooks at the service (once; kept across restarts)."""
    from mlflow import MlflowClient

    assert settings.webhook_secret is not None
    client = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
    target = f"{service_url}/webhooks/mlflow"
    try:
        for hook in client.list_webhooks():
            if hook.name == WEBHOOK_NAME:
                client.delete_webhook(hook.webhook_id)
        client.create_webhook(
            name=WEBHOOK_NAME,
            url=target,
            events=list(ALIAS_EVENTS),  # type: ignore[arg-type]
            secret=settings.webhook_secret.get_secret_value(),
        )
    except Exception as exc:  # webhooks are an accelerator; polling still follows the alias
        err.print(f"[yellow]warning:[/] could not register the MLflow webhook: {exc}")


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    import socket

    deadline = time.monotonic() + MLFLOW_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BadInputError(f"mlflow server exited with {process.returncode}; see {log_path}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    err.print(f"mlflow server did not open port {port} in {MLFLOW_START_TIMEOUT} s; see {log_path}")
    raise BadInputError(f"mlflow server did not start on port {port}")
