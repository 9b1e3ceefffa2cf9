"""Processes start together on fresh state and die together (issue 13).

Real processes on real stores: ``boltit serve --workers 2`` and ``boltit up`` as a user
starts them, killed as an operator or the OOM killer would.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient

from boltit.core.ports import free_port
from boltit.core.settings import Settings
from tests.children import killed_with
from tests.serving.conftest import (
    MODEL,
    VENV_BIN,
    ServiceProcess,
    register_version,
    service_env,
    wait_for,
)

pytestmark = pytest.mark.e2e

# No client token in these tests: the service runs open on purpose.
OPEN = {"BOLTIT_INSECURE_OPEN": "true"}


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name may hold spaces and brackets
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"  # a zombie has exited, only not been reaped


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) and stat[1] == pid:
            found.append(int(entry.name))
    return found


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in _children(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _workers(supervisor: int) -> list[int]:
    """Uvicorn's worker processes (multiprocessing also starts a resource tracker)."""
    return [
        pid
        for pid in _children(supervisor)
        if _alive(pid) and b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def _open_files(pid: int) -> set[str]:
    names = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            names.add(os.readlink(fd))
        except OSError:
            continue
    return names


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _kill_all(pids: set[int]) -> None:
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_workers_die_with_a_killed_supervisor_and_a_restart_binds(
    settings: Settings, production_v1: str, tmp_path: Path
) -> None:
    env = service_env(settings, **OPEN)
    first = ServiceProcess(env=env, cwd=tmp_path, workers=2).start()
    assert first.process is not None
    supervisor = first.process.pid
    workers: list[int] = []
    try:
        first.wait_ready()
        wait_for(lambda: len(_workers(supervisor)) == 2, timeout=60, interval=0.2)
        workers = _workers(supervisor)

        os.kill(supervisor, signal.SIGKILL)  # no clean-up code of the supervisor runs
        first.process.wait(timeout=10)
        seconds = wait_for(lambda: not any(map(_alive, workers)), timeout=10, interval=0.1)
        print(f"workers gone {seconds:.2f} s after kill -9 of their supervisor")

        orphaned = list(settings.state_dir.glob(f"metrics-{supervisor}-*"))
        assert orphaned  # the killed supervisor could not remove its metrics folder
        second = ServiceProcess(env=env, cwd=tmp_path, workers=2, port=first.port).start()
        try:
            second.wait_ready()
            assert not any(folder.exists() for folder in orphaned)  # removed by the restart
            answer = httpx.post(f"{second.url}/classify", json={"text": "vpn drops"}, timeout=60)
            assert answer.status_code == 200, answer.text
            assert "address already in use" not in second.logs().lower()
        finally:
            second.stop()
    finally:
        _kill_all(set(workers))  # never leave a worker behind when the assertion fails
        first.stop()


def _run_cli(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    done = subprocess.run(
        [str(VENV_BIN / "boltit"), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, done.stdout + done.stderr


def _alembic_leftovers(database: Path) -> list[str]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '_alembic_tmp_%'"
        ).fetchall()
    return [row[0] for row in rows]


@pytest.mark.slow
def test_processes_started_together_on_empty_state_initialise_it_once(
    settings: Settings, model_dir: Path, tmp_path: Path
) -> None:
    assert not settings.state_dir.exists()  # empty: no MLflow store, no project database
    env = service_env(settings, **OPEN, COLUMNS="250")  # the history table on one line a row
    commands = [["validate", "999"]] * 3 + [["history"]]
    service = ServiceProcess(env=env, cwd=tmp_path, workers=2)
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        service.start()
        results = list(pool.map(lambda args: _run_cli(args, env, tmp_path), commands))
    assert service.process is not None
    try:
        wait_for(lambda: _answers(f"{service.url}/metrics"), timeout=120, interval=0.3)
        supervisor = service.process.pid
        # Both workers opened both stores: each got past the point where the race hit.
        stores = {str(settings.state_dir / "mlflow.db"), str(settings.state_dir / "boltit.db")}
        wait_for(
            lambda: (
                len(_workers(supervisor)) == 2
                and all(stores <= _open_files(pid) for pid in _workers(supervisor))
            ),
            timeout=60,
            interval=0.3,
        )
        time.sleep(1)  # a worker that failed would now be gone, its traceback logged
        assert len(_workers(supervisor)) == 2, service.logs()
        assert "Traceback" not in service.logs(), service.logs()
    finally:
        service.stop()

    for args, (code, output) in zip(commands, results, strict=True):
        assert "Traceback" not in output, (args, output)
        if args[0] == "validate":
            assert code == 2 and len(output.strip().splitlines()) == 1, output
            assert "no registered model" in output or "has no version 999" in output, output
        else:
            assert code == 0, output

    # The store works afterwards: register a version, validate and promote it.
    assert _alembic_leftovers(settings.state_dir / "mlflow.db") == []
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)
    version = register_version(client, model_dir, tmp_path)
    code, output = _run_cli(
        ["promote", version, "--force", "--reason", "store check"], env, tmp_path
    )
    assert code == 0, output
    code, output = _run_cli(["history"], env, tmp_path)
    assert code == 0 and "promote forced" in output and "store check" in output, output
    assert str(client.get_registered_model(MODEL).aliases["Production"]) == version


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return False
    return True


@pytest.mark.slow
def test_sigterm_to_up_stops_the_mlflow_server_and_all_its_children(
    settings: Settings, production_v1: str, tmp_path: Path
) -> None:
    port, mlflow_port = free_port(), free_port()
    log = tmp_path / "up.log"
    with log.open("wb") as output:
        up = subprocess.Popen(
            [
                str(VENV_BIN / "boltit"),
                "up",
                "--port",
                str(port),
                "--mlflow-port",
                str(mlflow_port),
            ],
            env=service_env(settings, **OPEN),
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Stops its children even if pytest is killed -9 (the test's finally does not run).
            preexec_fn=killed_with(os.getpid(), signal.SIGTERM),
        )
    tree: set[int] = set()
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{mlflow_port}/health"), timeout=240)
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/health"), timeout=120)
        tree = _descendants(up.pid)
        assert tree, "mlflow server is not a child of boltit up"
        # Issue 12: MLflow's job runner stays off, and the registry sync watcher runs.
        commands = {pid: _cmdline(pid) for pid in tree}
        assert not [c for c in commands.values() if "huey" in c], commands
        assert [c for c in commands.values() if "boltit.registry.sync_watcher" in c], commands

        up.send_signal(signal.SIGTERM)  # to boltit up alone, not to its process group
        up.wait(timeout=60)
        seconds = wait_for(lambda: not any(map(_alive, tree)), timeout=30, interval=0.1)
        print(f"{len(tree)} processes of mlflow server gone {seconds:.2f} s after SIGTERM")
        assert not _answers(f"http://127.0.0.1:{mlflow_port}/health")
    finally:
        _kill_all(tree)
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait(timeout=10)
    assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")
