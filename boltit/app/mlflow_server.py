"""The MLflow tracking server and UI that ``boltit up`` starts beside the service."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from boltit.core.console import err
from boltit.core.errors import BadInputError
from boltit.core.polling import wait_until
from boltit.core.ports import port_open
from boltit.core.settings import Settings
from boltit.serving.process_tree import child_dies_with_us, stop_process_group

MLFLOW_START_TIMEOUT = 180  # seconds; a cold start on a busy 2-core machine takes a minute
WEBHOOK_NAME = "boltit-serving"
ALIAS_EVENTS = ["model_version_alias.created", "model_version_alias.deleted"]


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


def answers(url: str) -> bool:
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


def wait_for_answer(url: str, *, process: subprocess.Popen[bytes], what: str) -> None:
    """Return once ``url`` answers; raise if ``process`` exits or the start times out."""

    def answered() -> bool:
        if process.poll() is not None:
            raise BadInputError(f"{what} exited with {process.returncode}")
        return answers(url)

    if wait_until(answered, timeout=MLFLOW_START_TIMEOUT, interval=0.3) is None:
        raise BadInputError(f"{what} did not answer {url} in {MLFLOW_START_TIMEOUT} s")


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
    def listening() -> bool:
        if process.poll() is not None:
            raise BadInputError(f"mlflow server exited with {process.returncode}; see {log_path}")
        return port_open(port)

    if wait_until(listening, timeout=MLFLOW_START_TIMEOUT, interval=0.3) is not None:
        return
    err.print(f"mlflow server did not open port {port} in {MLFLOW_START_TIMEOUT} s; see {log_path}")
    raise BadInputError(f"mlflow server did not start on port {port}")
