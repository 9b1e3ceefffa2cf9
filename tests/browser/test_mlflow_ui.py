"""The MLflow UI as a user drives it, in Chromium, against what `boltit up` starts.

`boltit up` runs `mlflow server` (the UI), the registry sync watcher and the service on a
copy of the registry's trained store. In the UI's model version page a user moves a version
to stage Production with the legacy stage control; the watcher judges the move by the gates:
a version that passed them is accepted and the service follows it, one that fails them is
put back and the reason is written where the user looks, on the version's page.

The stage control, not the alias editor: MLflow 3.17.2's alias editor lowercases what is
typed (`production`), so a user cannot set the case-sensitive `Production` alias by clicking.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from boltit.core.polling import wait_until
from boltit.core.ports import free_port
from boltit.core.settings import Settings
from boltit.core.vocabulary import PREVIOUS, PRODUCTION
from boltit.registry.history import registry_history
from boltit.registry.lookup import aliases
from boltit.registry.validate import validate
from tests.children import killed_with
from tests.registry import conftest as registry_fixtures
from tests.registry.conftest import TrainedVersions, clone_version, serve_validated

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The registry's fixtures: the trained template store (shared with tests/registry through
# tests/once.py, so it is trained once per run), this test's copy of it, its gate config.
trained_versions = registry_fixtures.trained_versions
registry_settings = registry_fixtures.registry_settings
trained_client = registry_fixtures.trained_client
registry_db = registry_fixtures.registry_db
target = registry_fixtures.target

VENV_BIN = Path(sys.executable).parent
# What docs/serving.md states: the watcher judges UI changes every SYNC_INTERVAL_S, a version
# whose passing verdict still applies is accepted without a new validation, and the service
# polls the alias every second (BOLTIT_POLL_INTERVAL) then loads the version: about 5-10 s.
# The bound leaves room for a 2-core machine running `make test` (the measured time is printed).
FOLLOW_WITHIN_S = 60.0
# A failing version is validated again before it is put back (an evaluation, under load).
REVERT_WITHIN_S = 120.0
START_TIMEOUT_S = 240.0


@dataclass(frozen=True)
class Stack:
    """What `boltit up` started: the MLflow UI, the service, and where their logs are."""

    mlflow_url: str
    service_url: str
    state_dir: Path
    up_log: Path

    def served_version(self) -> str | None:
        try:
            answer = httpx.get(f"{self.service_url}/model/version", timeout=5)
        except httpx.HTTPError:
            return None
        return str(answer.json()["version"]) if answer.status_code == 200 else None

    def logs(self) -> str:
        """The logs of `up` and of the sync watcher, for a failure message."""
        watcher = self.state_dir / "sync-watcher.log"
        parts = [("boltit up", self.up_log), ("sync watcher", watcher)]
        return "\n".join(
            f"--- {title} ---\n{path.read_text(errors='replace')[-4000:]}"
            for title, path in parts
            if path.exists()
        )


def up_environment(settings: Settings) -> dict[str, str]:
    """`boltit up`'s environment: this test's stores and gates, nothing from the shell's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOLTIT_", "MLFLOW_"))}
    env.pop("AUTO_APPLY_ENABLED", None)
    assert settings.gates_config is not None
    env |= {
        "BOLTIT_STATE_DIR": str(settings.state_dir.resolve()),
        "BOLTIT_GATES_CONFIG": str(settings.gates_config),
        # The service answers /model/version to anyone; no client tokens in this test.
        "BOLTIT_INSECURE_OPEN": "true",
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return env


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def twin(target: dict[str, Any], trained_versions: TrainedVersions) -> str:
    """The good version serving (validated, promoted) and a validated twin of it, unserved."""
    client, name, good = target["client"], target["name"], trained_versions.good
    serve_validated(target, good)
    version = clone_version(client, name=name, version=good)
    assert validate(**target, version=version, actor="alice").passed
    return version


@pytest.fixture
def stack(registry_settings: Settings, twin: str, tmp_path: Path) -> Iterator[Stack]:
    """`boltit up` on this test's store (set up before it starts), stopped after the test."""
    port, mlflow_port = free_port(), free_port()
    up_log = tmp_path / "up.log"
    with up_log.open("wb") as output:
        up = subprocess.Popen(
            [VENV_BIN / "boltit", "up", "--port", str(port), "--mlflow-port", str(mlflow_port)],
            env=up_environment(registry_settings),
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # `up` stops the MLflow server and the watcher it started, even if pytest is killed.
            preexec_fn=killed_with(os.getpid(), signal.SIGTERM),
        )
    started = Stack(
        mlflow_url=f"http://127.0.0.1:{mlflow_port}",
        service_url=f"http://127.0.0.1:{port}",
        state_dir=registry_settings.state_dir,
        up_log=up_log,
    )
    try:

        def ready() -> bool:
            if up.poll() is not None:
                pytest.fail(f"boltit up exited with {up.returncode}\n{started.logs()}")
            return answers(f"{started.mlflow_url}/health") and answers(
                f"{started.service_url}/ready"
            )

        if wait_until(ready, timeout=START_TIMEOUT_S, interval=0.5) is None:
            pytest.fail(f"boltit up was not ready in {START_TIMEOUT_S:g} s\n{started.logs()}")
        yield started
    finally:
        up.send_signal(signal.SIGTERM)  # to `up` alone: it stops its own children
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait(timeout=10)


class VersionPage:
    """The MLflow UI's page of one model version, driven by role and text as a user sees it."""

    def __init__(self, page: Page, *, mlflow_url: str, name: str, version: str) -> None:
        self.page = page
        self.url = f"{mlflow_url}/#/models/{name}/versions/{version}"
        self.version = version

    def open(self) -> None:
        self.page.goto(self.url)
        expect(self.page.get_by_role("heading", name=f"Version {self.version}")).to_be_visible()
        self.show_stages()

    def show_stages(self) -> None:
        """Stages are hidden under the new registry UI; a user switches it off (per browser)."""
        switch = self.page.get_by_role("switch", name="New model registry UI")
        expect(switch).to_be_visible()
        if switch.is_checked():
            switch.click()
            confirm = self.page.get_by_role("dialog", name="Disable the new model stages")
            confirm.get_by_role("button", name="Disable").click()
            expect(confirm).to_be_hidden()
        expect(switch).not_to_be_checked()

    def stage(self) -> str:
        badge = self.stage_badge()
        expect(badge).to_be_visible()
        return badge.inner_text().strip()

    def stage_badge(self) -> Any:
        # The stage control: a badge ("None", "Production", ...) that opens the stage menu.
        return (
            self.page.get_by_role("main")
            .get_by_role("status")
            .filter(has_text=re.compile(r"^(None|Staging|Production|Archived)$"))
            .first
        )

    def transition_to_production(self) -> float:
        """Make the move as a user clicks it; returns the monotonic time of the click on OK."""
        self.stage_badge().click()
        self.page.get_by_role("menuitem", name="Transition to").filter(
            has_text="Production"
        ).click()
        dialog = self.page.get_by_role("dialog", name="Stage transition")
        dialog.get_by_role("textbox", name="Comment").fill("moved in the MLflow UI")
        dialog.get_by_role("button", name="OK").click()
        clicked = time.monotonic()
        expect(dialog).to_be_hidden()
        expect(self.stage_badge()).to_have_text(PRODUCTION)
        return clicked


def test_ui_stage_moves_are_judged_by_their_gates_and_followed_by_the_service(
    page: Page,
    stack: Stack,
    twin: str,
    target: dict[str, Any],
    trained_versions: TrainedVersions,
) -> None:
    client, name = target["client"], target["name"]
    good, bad = trained_versions.good, trained_versions.bad
    assert stack.served_version() == good, stack.logs()

    # A version that passed its gates, moved to Production in the UI, is accepted.
    twin_page = VersionPage(page, mlflow_url=stack.mlflow_url, name=name, version=twin)
    twin_page.open()
    assert twin_page.stage() == "Staging"  # where validation leaves a version that passed
    clicked = twin_page.transition_to_production()
    followed = wait_until(
        lambda: stack.served_version() == twin, timeout=FOLLOW_WITHIN_S, interval=0.2
    )
    assert followed is not None, (
        f"the service did not follow v{twin} within {FOLLOW_WITHIN_S:g} s\n{stack.logs()}"
    )
    print(f"UI stage move to v{twin}: served {time.monotonic() - clicked:.1f} s after OK")
    assert aliases(client, name=name) == {PRODUCTION: twin, PREVIOUS: good}
    twin_page.open()  # what the user sees after a reload
    assert twin_page.stage() == PRODUCTION
    old_page = VersionPage(page, mlflow_url=stack.mlflow_url, name=name, version=good)
    old_page.open()
    expect(old_page.stage_badge()).to_have_text("Archived")

    # A version that fails its gates, moved to Production in the UI, is put back.
    bad_page = VersionPage(page, mlflow_url=stack.mlflow_url, name=name, version=bad)
    bad_page.open()
    bad_page.transition_to_production()

    def reverted() -> bool:
        description = client.get_model_version(name, bad).description or ""
        return "Reverted by `boltit registry sync`" in description

    assert wait_until(reverted, timeout=REVERT_WITHIN_S, interval=0.5) is not None, (
        f"v{bad} was not reverted within {REVERT_WITHIN_S:g} s\n{stack.logs()}"
    )
    assert aliases(client, name=name) == {PRODUCTION: twin, PREVIOUS: good}
    assert stack.served_version() == twin  # a stage move alone does not move the alias
    # The reason, where the user looks: the version's page, after a reload.
    bad_page.open()
    expect(bad_page.stage_badge()).to_have_text("Archived")
    main = page.get_by_role("main")
    expect(main.get_by_text(re.compile(r"Reverted by boltit registry sync at"))).to_be_visible()
    expect(main.get_by_text(re.compile(r"gates failed: min_accuracy"))).to_be_visible()
    twin_page.open()
    assert twin_page.stage() == PRODUCTION

    # The history names the watcher and says how each move was judged.
    events = [
        (e.action, e.from_version, e.to_version, (e.details or {}).get("outcome"), e.actor)
        for e in registry_history(target["database"], model_name=name)
        if e.action in ("registry_sync", "sync_revert")
    ]
    watcher = "boltit-up sync watcher"
    assert events == [
        ("registry_sync", good, twin, "accepted", watcher),
        ("registry_sync", twin, bad, "reverted", watcher),
        ("sync_revert", bad, twin, "reverted", watcher),
    ], stack.logs()
