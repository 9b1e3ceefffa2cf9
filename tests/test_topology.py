"""The production topology on loopback, every part a real process (docs/deployment.md).

``mlflow server`` on PostgreSQL with its artifacts on S3 (moto over HTTP, proxied by the
server); two ``boltit serve`` replicas on one PostgreSQL ticket store behind a round-robin
client that health-checks ``/ready`` as a load balancer does; two sync watchers and two
``monitor --watch``, each pair leader-elected through the ticket store's ``leases`` table.
While tickets flow: ``boltit promote 2``, ``boltit rollback``, ``kill -9`` of one replica,
then ``kill -9`` of the leading monitor. No request may fail.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import httpx
import pytest
from sqlalchemy import select

from boltit.core import audit
from boltit.core.clients import ClientFile, Scope
from boltit.core.db import Database
from boltit.core.leases import LEASE_ACQUIRED, lease_name, read_lease
from boltit.core.polling import wait_until
from boltit.core.ports import free_port
from boltit.core.schema import Ticket
from boltit.core.settings import Settings
from boltit.core.tracking import configure_mlflow
from tests.children import killed_with
from tests.conftest import POSTGRES_ADMIN_URL
from tests.postgres import throwaway_database
from tests.registry.conftest import write_test_gates

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

VENV_BIN = Path(sys.executable).parent
BUCKET = "boltit-topology"
LEASE_SECONDS = 5.0
POLL_SECONDS = 1.0
# What docs/deployment.md states: a replica serves a moved alias within this many seconds.
FOLLOW_WITHIN_S = 15.0
HEALTH_CHECK_S = 1.0  # a load balancer's usual interval


@dataclass
class Child:
    """A process of the topology, in a session of its own, logging to a file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill_now(self) -> None:
        """``kill -9`` of the whole process group: no handler runs, nothing is released."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if not self.alive():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill_now()


def _start(name: str, args: list[str], *, env: dict[str, str], folder: Path) -> Child:
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            args,
            env=env,
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # SIGTERM: mlflow server and the loops stop their own children and leases.
            preexec_fn=killed_with(os.getpid(), signal.SIGTERM),
        )
    return Child(name, process, log)


def _wait(what: str, predicate: object, *, timeout: float, children: list[Child]) -> float:
    def check() -> bool:
        for child in children:
            if not child.alive():
                pytest.fail(
                    f"{child.name} exited {child.process.returncode}:\n{child.text()[-3000:]}"
                )
        return bool(predicate())  # type: ignore[operator]

    waited = wait_until(check, timeout=timeout, interval=0.1)
    if waited is None:
        pytest.fail(f"{what}: not within {timeout} s")
    return waited


def _served_version(url: str) -> str | None:
    try:
        answer = httpx.get(f"{url}/ready", timeout=2)
    except httpx.HTTPError:
        return None
    return answer.json().get("version") if answer.status_code == 200 else None


@dataclass
class Answer:
    """One request of the client: where it went first, where it was answered, and what."""

    first: str
    served_by: str | None
    status: int | None
    ticket_id: str | None
    version: str | None
    sent_at: float
    retried: bool = False


@dataclass
class RoundRobinClient:
    """A load balancer and its client in one: round robin over the replicas that passed
    the last ``/ready`` check, and one retry on another replica when a request fails."""

    urls: list[str]
    headers: dict[str, str]
    texts: list[str]
    answers: list[Answer] = field(default_factory=list)
    healthy: dict[str, bool] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.healthy = dict.fromkeys(self.urls, True)
        self._threads = [
            threading.Thread(target=self._guarded, args=(self._check_health,), daemon=True),
            threading.Thread(target=self._guarded, args=(self._send,), daemon=True),
        ]

    def __enter__(self) -> RoundRobinClient:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def answered_since(self, moment: float) -> list[Answer]:
        return [a for a in list(self.answers) if a.sent_at >= moment]

    def _guarded(self, loop: object) -> None:
        try:
            loop()  # type: ignore[operator]
        except BaseException as exc:  # reported by the test, never lost in the thread
            self.errors.append(exc)

    def _check_health(self) -> None:
        with httpx.Client(timeout=1.0) as http:
            while not self.stop.is_set():
                for url in self.urls:
                    try:
                        self.healthy[url] = http.get(f"{url}/ready").status_code == 200
                    except httpx.HTTPError:
                        self.healthy[url] = False
                self.stop.wait(HEALTH_CHECK_S)

    def _send(self) -> None:
        turn = 0
        with httpx.Client(timeout=10.0, headers=self.headers) as http:
            while not self.stop.is_set():
                turn += 1
                live = [u for u in self.urls if self.healthy[u]] or self.urls
                first = live[turn % len(live)]
                sent_at = time.monotonic()
                text = self.texts[turn % len(self.texts)]
                answer = self._post(http, first, text, sent_at)
                if answer.status != 200:
                    self.healthy[first] = False  # as a load balancer's passive check would
                    others = [u for u in self.urls if u != first]
                    answer = self._post(http, others[turn % len(others)], text, sent_at)
                    answer.first, answer.retried = first, True
                self.answers.append(answer)
                self.stop.wait(0.02)  # ~40 requests/s: a steady stream, not a load test

    @staticmethod
    def _post(http: httpx.Client, url: str, text: str, sent_at: float) -> Answer:
        try:
            response = http.post(f"{url}/classify", json={"text": text})
        except httpx.HTTPError:
            return Answer(url, None, None, None, None, sent_at)
        if response.status_code != 200:
            return Answer(url, url, response.status_code, None, None, sent_at)
        body = response.json()
        return Answer(url, url, 200, body["ticket_id"], body["model_version"], sent_at)


@pytest.fixture
def stores(
    settings: Settings, postgres_url: str, moto_endpoint: str, tmp_path: Path
) -> Iterator[tuple[Settings, str]]:
    """The stores: MLflow's PostgreSQL database, the ticket store's, and the S3 bucket."""
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=BUCKET)
    with throwaway_database(POSTGRES_ADMIN_URL) as ticket_url:
        yield (
            settings.model_copy(
                update={
                    "database_url_override": ticket_url,
                    "artifact_root_override": "mlflow-artifacts:/boltit",
                    "gates_config": write_test_gates(tmp_path),
                }
            ),
            postgres_url,
        )


def _environment(settings: Settings, tracking_uri: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOLTIT_", "MLFLOW_"))}
    env.pop("AUTO_APPLY_ENABLED", None)
    env.update(
        BOLTIT_STATE_DIR=str(settings.state_dir),
        BOLTIT_DATABASE_URL=settings.database_url,
        BOLTIT_ARTIFACT_ROOT=settings.artifact_root,
        BOLTIT_GATES_CONFIG=str(settings.gates_config),
        BOLTIT_POLL_INTERVAL=str(POLL_SECONDS),
        BOLTIT_LEADER_LEASE_SECONDS=str(LEASE_SECONDS),
        MLFLOW_TRACKING_URI=tracking_uri,
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        COLUMNS="200",
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


def _leader_and_standby(database: Database, name: str, pair: list[Child]) -> tuple[Child, Child]:
    lease = read_lease(database, name)
    assert lease is not None and lease.holder is not None, f"nobody holds {name}"
    pid = int(lease.holder.split(":")[1])
    leaders = [c for c in pair if c.process.pid == pid]
    assert len(leaders) == 1, (lease.holder, [c.process.pid for c in pair])
    return leaders[0], next(c for c in pair if c is not leaders[0])


def _run_boltit(env: dict[str, str], folder: Path, *args: str) -> str:
    done = subprocess.run(
        [str(VENV_BIN / "boltit"), *args],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, f"boltit {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


# Nine processes start on two cores: minutes when the machine is busy, past the usual limit.
@pytest.mark.timeout(1800)
def test_two_replicas_follow_promotion_and_rollback_and_survive_a_kill_with_no_failed_request(
    stores: tuple[Settings, str], moto_endpoint: str, tmp_path: Path
) -> None:
    from boltit.registry.promote import promote
    from boltit.registry.validate import validate
    from boltit.training.data import from_generator
    from boltit.training.generator import generate_tickets
    from boltit.training.train import TrainConfig, TrainRequest, train

    settings, mlflow_store = stores
    children: list[Child] = []
    try:
        port = free_port()
        tracking_uri = f"http://127.0.0.1:{port}"
        server_env = {
            **_environment(settings, tracking_uri),
            "MLFLOW_S3_ENDPOINT_URL": moto_endpoint,  # only the server talks to S3
            # As `boltit up` runs it: no GenAI job runner (7 more processes, nothing to run).
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        server = _start(
            "mlflow-server",
            [
                str(VENV_BIN / "mlflow"), "server",
                "--backend-store-uri", mlflow_store,
                "--artifacts-destination", f"s3://{BUCKET}/mlflow",
                "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            ],
            env=server_env,
            folder=tmp_path,
        )  # fmt: skip
        children.append(server)
        _wait(
            "mlflow server /health",
            lambda: _answers(f"{tracking_uri}/health"),
            timeout=300,  # minutes, not seconds, on a loaded 2-core machine
            children=children,
        )

        # Setup, as a training job would: v1 trained through the server, v2 its twin.
        settings = settings.model_copy(update={"tracking_uri_override": tracking_uri})
        client = configure_mlflow(settings)
        name = settings.model_name
        trained = train(
            TrainRequest(
                dataset=from_generator(1200, seed=1),
                # The plain model, no search: the topology is under test here, not the model.
                config=TrainConfig(latency_samples=10, search=None),
            ),
            settings=settings,
            client=client,
        )
        v1 = str(trained.model_version)
        source = client.get_model_version(name, v1)
        v2 = str(  # its twin, as a retraining on the same data would register
            client.create_model_version(
                name,
                source.source,
                source.run_id,
                # Over REST the logged model's id must be named as well as its models:/ URI.
                model_id=str(source.source).removeprefix("models:/"),
            ).version
        )
        database = Database(settings.database_url)
        common = {"client": client, "database": database, "name": name, "settings": settings}
        assert validate(**common, version=v1, actor="setup").passed
        promote(**common, version=v1, actor="setup")
        assert validate(**common, version=v2, actor="setup").passed
        stored = boto3.client("s3", endpoint_url=moto_endpoint).list_objects_v2(
            Bucket=BUCKET, Prefix="mlflow/"
        )
        assert any(o["Key"].endswith("MLmodel") for o in stored.get("Contents", []))

        env = _environment(settings, tracking_uri)
        _, token = ClientFile(settings.clients_path).create("help-desk", {Scope.classify})
        ports = [free_port(), free_port()]
        replicas = [
            _start(
                f"replica-{letter}",
                [str(VENV_BIN / "boltit"), "serve", "--port", str(replica_port)],
                env=env,
                folder=tmp_path,
            )
            for letter, replica_port in zip("ab", ports, strict=True)
        ]
        urls = [f"http://127.0.0.1:{replica_port}" for replica_port in ports]
        watchers = [
            _start(
                f"sync-watcher-{i}",
                [sys.executable, "-m", "boltit.registry.sync_watcher", "1"],
                env=env,
                folder=tmp_path,
            )
            for i in (1, 2)
        ]
        monitors = [
            _start(
                f"monitor-{i}",
                [str(VENV_BIN / "boltit"), "monitor", "--watch", "--interval", "2"],
                env=env,
                folder=tmp_path,
            )
            for i in (1, 2)
        ]
        children += [*replicas, *watchers, *monitors]
        _wait(
            "both replicas ready on v1",
            lambda: all(_served_version(u) == v1 for u in urls),
            timeout=300,
            children=children,
        )

        # Tickets like the ones it trained on: the monitor sees a healthy model, not an incident.
        texts = generate_tickets(400, seed=7)["text"].tolist()
        with RoundRobinClient(urls, {"Authorization": f"Bearer {token}"}, texts) as traffic:
            _wait("traffic", lambda: len(traffic.answers) >= 40, timeout=60, children=children)

            _run_boltit(env, tmp_path, "promote", v2, "--actor", "ops")
            promoted = time.monotonic()
            follow_promotion = _wait(
                "both replicas serve the promoted v2",
                lambda: all(_served_version(u) == v2 for u in urls),
                timeout=60,
                children=children,
            )
            _wait(
                "traffic on v2",
                lambda: len([a for a in traffic.answered_since(promoted) if a.version == v2]) > 40,
                timeout=60,
                children=children,
            )

            _run_boltit(env, tmp_path, "rollback", "--reason", "topology drill", "--actor", "ops")
            rolled_back = time.monotonic()
            follow_rollback = _wait(
                "both replicas serve v1 again",
                lambda: all(_served_version(u) == v1 for u in urls),
                timeout=60,
                children=children,
            )

            killed = replicas[1]
            children.remove(killed)
            killed_at = time.monotonic()  # before: the requests it fails come within ms
            killed.kill_now()
            _wait(
                "traffic after the kill",
                lambda: len(traffic.answered_since(killed_at)) >= 80,
                timeout=60,
                children=children,
            )
        assert not traffic.errors, traffic.errors

        # No failed request: every one answered 200, and stored in the shared ticket store.
        answers = traffic.answers
        failed = [a for a in answers if a.status != 200]
        assert not failed, failed[:5]
        ids = {a.ticket_id for a in answers}
        with database.session() as session:
            rows = dict(
                session.execute(
                    select(Ticket.id, Ticket.model_version).where(Ticket.id.in_(ids))
                ).all()
            )
        assert {a.ticket_id: a.version for a in answers} == rows
        assert {a.served_by for a in answers if a.sent_at < killed_at} == set(urls)

        # Both replicas followed each move within the stated time, with no restart.
        assert follow_promotion <= FOLLOW_WITHIN_S and follow_rollback <= FOLLOW_WITHIN_S
        assert {a.version for a in traffic.answered_since(rolled_back + follow_rollback)} == {v1}

        # The killed replica's requests went to the other one; a request in flight or sent
        # before the health check noticed was retried there.
        after = traffic.answered_since(killed_at + HEALTH_CHECK_S * 2)
        assert after and {a.served_by for a in after} == {urls[0]}
        retried = [a for a in traffic.answered_since(killed_at) if a.retried]
        assert all(a.first == urls[1] and a.served_by == urls[0] for a in retried)
        sent_to_killed = [a for a in traffic.answered_since(killed_at) if a.first == urls[1]]

        # One sync watcher and one monitor acted; the others stood by.
        sync_leader, sync_standby = _leader_and_standby(
            database, lease_name("sync", name), watchers
        )
        assert "standing by" in sync_standby.text() and "leading" in sync_leader.text()
        # A pass says what it judged ("... change to vN: ...") or what it waits for.
        assert not re.search(r"change to v|waiting:", sync_standby.text()), sync_standby.text()
        leader, standby = _leader_and_standby(database, lease_name("monitor", name), monitors)
        assert "Production v" in leader.text(), leader.text()[-2000:]
        assert "Production v" not in standby.text(), standby.text()[-2000:]
        with database.session() as session:
            takes = [
                e.details["lease"] if e.details else None
                for e in audit.history(session, actions=[LEASE_ACQUIRED])
            ]
        assert sorted(takes) == sorted([lease_name("sync", name), lease_name("monitor", name)])

        # The leading monitor dies: the standby takes over within a lease period and acts.
        term = read_lease(database, lease_name("monitor", name))
        assert term is not None
        children.remove(leader)
        dead_at = time.monotonic()
        leader.kill_now()
        took_over = _wait(
            "the standby monitor leads",
            lambda: (
                (read_lease(database, lease_name("monitor", name)) or term).term == term.term + 1
            ),
            timeout=LEASE_SECONDS * 4,
            children=children,
        )
        assert took_over <= LEASE_SECONDS + LEASE_SECONDS / 3 + 3.0  # + slack for a busy host
        _wait(
            "the new leader's first pass",
            lambda: "Production v" in standby.text(),
            timeout=60,
            children=children,
        )
        assert f"from {term.holder}" in standby.text()
        print(
            f"\ntopology: {len(answers)} requests; after the kill {len(sent_to_killed)} sent to "
            f"the killed replica first, {len(retried)} of them retried on the other; "
            f"replicas followed the promotion in {follow_promotion:.1f} s and the rollback in "
            f"{follow_rollback:.1f} s; monitor taken over {time.monotonic() - dead_at:.1f} s "
            "after the leader's kill"
        )
        database.dispose()
    finally:
        for child in reversed(children):
            child.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
