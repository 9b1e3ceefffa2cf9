"""``boltit demo``: the whole lifecycle on the embedded default, one real command at a time.

Every step is the ``boltit`` command a person would type, run in-process against
the configured state folder (SQLite MLflow store and SQLite ticket store by
default), with the service running on a loopback port in the background.
"""

from __future__ import annotations

import os
import shlex
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import httpx
import typer

from boltit.core.console import out
from boltit.core.context import app_context
from boltit.core.errors import BoltitError
from boltit.core.polling import wait_until
from boltit.core.ports import free_port
from boltit.core.settings import Settings

DEMO_CLIENT = "demo-agents"
SAMPLE_TICKETS = (
    "My laptop screen is broken and flickers when I open the lid",
    "Please reset my VPN password, it expired this morning",
    "Need admin rights to install the new Python version on my workstation",
    "Order two new monitors and a docking station for the new starter",
)


class DemoFailed(BoltitError):
    """A demo step did not do what it shows."""


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""

    @app.command("demo")
    def demo(
        ctx: typer.Context,
        rows: Annotated[int, typer.Option(help="Tickets the generator makes per version.")] = 4000,
        feedback: Annotated[
            int, typer.Option(help="Labelled tickets sent during the simulated regression.")
        ] = 400,
    ) -> None:
        """Generate, check, train, validate, promote, serve, roll back, and survive a regression."""
        from boltit.app.cli import build_app

        # The whole CLI, not ``app``: with lazy commands, ``app`` may hold only ``demo``.
        run_demo(build_app(), app_context(ctx).settings, rows=rows, feedback=feedback)


def run_demo(app: typer.Typer, settings: Settings, *, rows: int, feedback: int) -> None:
    """Run the demo's steps in order; raises :class:`DemoFailed` when one misbehaves."""
    import numpy as np

    from boltit.training.generator import generate_tickets

    state = settings.state_dir.resolve()
    out.print(f"[bold]BoltIT demo[/] - state folder {state}")
    data_dir = state / "demo"
    data_dir.mkdir(parents=True, exist_ok=True)

    good = data_dir / "tickets.csv"
    generate_tickets(rows, seed=7).to_csv(good, index=False)
    _boltit(app, "check-data", str(good))

    v1 = _train(app, settings, "--data", str(good))
    # Generated tickets are harder than the runbook's production data: the demo asks 0.85.
    _boltit(app, "validate", v1, "--min-accuracy", "0.85", expect=(0,))
    _boltit(app, "promote", v1, "--reason", "demo: first release")

    # The agents' tool authenticates like any client: the service refuses to start open.
    token = _demo_client(settings)
    headers = {"Authorization": f"Bearer {token}"}
    with _service(settings) as url:
        _show_classifications(url, headers)

        v2 = _train(app, settings, "--rows", str(rows + 2000), "--seed", "11")
        _boltit(app, "validate", v2, "--min-accuracy", "0.85", expect=(0, 1))
        if _boltit(app, "promote", v2, "--reason", "demo: retrained", expect=(0, 1)) == 0:
            _wait_for_version(url, v2)
            _boltit(app, "rollback", "--reason", "demo: show the way back")
            _wait_for_version(url, v1)

        # A release trained on scrambled labels: the gates refuse it, a human forces it.
        bad = data_dir / "tickets_scrambled.csv"
        scrambled = generate_tickets(rows, seed=13)
        scrambled["category"] = np.random.default_rng(13).permutation(
            scrambled["category"].to_numpy()
        )
        scrambled.to_csv(bad, index=False)
        v3 = _train(app, settings, "--data", str(bad), "--allow-failing-data")
        _boltit(app, "validate", v3, expect=(1,))
        _boltit(app, "promote", v3, expect=(1,))
        _boltit(app, "promote", v3, "--force", "--reason", "demo: simulated bad release")
        _wait_for_version(url, v3)

        _send_labelled_traffic(url, count=feedback, headers=headers)
        # After its rollback the monitor smoke-tests the service as the agents' client would.
        with _environment(BOLTIT_SMOKE_TOKEN=token):
            _boltit(app, "monitor", "--once", "--service-url", url)
        _wait_for_version(url, v1)
        # The runbook's step 7 after the rollback: what serves now answers as it should.
        _boltit(app, "smoke", "--url", url, "--token", token)
        _boltit(app, "flags", "show")
        _boltit(app, "incident", "report", "latest")
    _boltit(app, "history", "--limit", "40")
    # Every demo ticket was created just now: the report of the current month holds them all.
    month = f"{datetime.now(UTC):%Y-%m}"
    report = state / "reports" / f"{month}.html"
    _boltit(app, "report", "monthly", "--month", month, "--output", str(report))
    out.print(f"  monthly report: {report}", markup=False, highlight=False, soft_wrap=True)
    out.print("[bold green]demo finished[/]: every step above is recorded in the history.")


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """``values`` in ``os.environ`` while the block runs: in-process commands read settings
    from the environment, as the console script does."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _boltit(app: typer.Typer, *args: str, expect: tuple[int, ...] = (0,)) -> int:
    """Run one ``boltit`` command in-process and check its exit code."""
    out.print()
    out.rule(f"[bold cyan]$ boltit {shlex.join(_masked(args))}", align="left")
    try:
        result = app(list(args), standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BoltitError as exc:
        out.print(f"[bold red]error:[/] {exc}")
        code = exc.exit_code
    if code not in expect:
        raise DemoFailed(f"'boltit {shlex.join(_masked(args))}' exited {code}, expected {expect}")
    if code:
        out.print(f"[yellow](exit {code}, as expected)[/]")
    return code


def _masked(args: tuple[str, ...]) -> list[str]:
    """``args`` as shown on screen: a token given with ``--token`` stays off the terminal."""
    return ["***" if index and args[index - 1] == "--token" else a for index, a in enumerate(args)]


def _train(app: typer.Typer, settings: Settings, *args: str) -> str:
    """Train through the CLI and return the version it registered."""
    from mlflow import MlflowClient

    _boltit(app, "train", *args)
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)
    versions = client.search_model_versions(f"name='{settings.model_name}'")
    return str(max(int(v.version) for v in versions))


@contextmanager
def _service(settings: Settings) -> Iterator[str]:
    """The serving app under uvicorn on a free loopback port, for the demo's duration."""
    import uvicorn

    from boltit.app.serve import service_app

    port = free_port()
    config = uvicorn.Config(service_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="demo-service", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    out.print()
    out.rule(f"[bold cyan]service on {url} (boltit serve)", align="left")

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    if wait_until(ready, timeout=60, interval=0.2) is None:
        server.should_exit = True
        raise DemoFailed("the service did not become ready within 60 s")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _demo_client(settings: Settings) -> str:
    """A client token for the demo's agents (scopes classify, feedback, read)."""
    from boltit.core.clients import ClientFile

    scopes = ("classify", "feedback", "read")
    clients = ClientFile(settings.clients_path)
    if any(client.name == DEMO_CLIENT for client in clients.read()):
        clients.revoke(DEMO_CLIENT)  # a rerun: the earlier token was shown once and is gone
    _, token = clients.create(DEMO_CLIENT, scopes)
    out.print()
    command = " ".join(f"--scope {scope}" for scope in scopes)
    out.rule(f"[bold cyan]$ boltit token create {DEMO_CLIENT} {command}", align="left")
    out.print(f"  client {DEMO_CLIENT!r}: its token is sent as 'Authorization: Bearer ...'")
    return token


def _show_classifications(url: str, headers: dict[str, str]) -> None:
    for text in SAMPLE_TICKETS:
        answer = httpx.post(f"{url}/classify", json={"text": text}, headers=headers, timeout=10)
        body = answer.json()
        decision = "auto-applied" if body["auto_applied"] else "triage"
        out.print(
            f"  {text[:58]:<58} -> {body['category']:<22} {body['confidence']:.2f} "
            f"{decision} (v{body['model_version']})"
        )


def _wait_for_version(url: str, version: str, timeout: float = 30.0) -> None:
    """Poll ``/model/version`` until the service reports ``version``; print how long it took."""
    from boltit.monitoring.respond import wait_for_service_version

    served, waited = wait_for_service_version(
        url, version=str(version), timeout=timeout, interval=0.1
    )
    if served != str(version):
        raise DemoFailed(f"the service did not switch to v{version} within {timeout:.0f} s")
    out.print(f"  service now serves v{version} ({waited:.1f} s, no restart)")


def _send_labelled_traffic(url: str, *, count: int, headers: dict[str, str]) -> None:
    """Tickets arrive, agents correct them: feedback is the ground truth the monitor reads."""
    from boltit.training.generator import generate_tickets

    out.print()
    out.rule(f"[bold cyan]{count} tickets arrive and agents send feedback", align="left")
    tickets = generate_tickets(count, seed=29)
    wrong = 0
    with httpx.Client(base_url=url, timeout=10, headers=headers) as http:
        for row in tickets.itertuples(index=False):
            body = http.post("/classify", json={"text": row.text}).json()
            wrong += body["category"] != row.category
            http.post(
                f"/tickets/{body['ticket_id']}/feedback",
                json={"category": row.category, "priority": row.priority},
            ).raise_for_status()
    out.print(f"  live accuracy of the forced release: {1 - wrong / count:.2f}")
