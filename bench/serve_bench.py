"""Serving benchmark: ``mlflow models serve`` and ``boltit serve`` on the same registered model.

Every server loads ``models:/<name>@Production`` from one throwaway registry, with one
worker each: the peer, ``boltit serve`` on a SQLite ticket store and ``boltit serve`` on a
PostgreSQL ticket store. All of them start once; then each round loads them one after the
other (peer first), each after a short warm-up, with the same load generator on loopback
and 16 keep-alive connections for a bounded time. A round's ratio is ours over the peer's
figure of the same round, so a machine that slows down between rounds colours both; the
report gives the median over rounds. The default generator is ``wrk`` (Debian's package;
``make bench`` installs it), a C program that leaves the two cores to the servers;
``--client python`` uses an asyncio client instead. The BoltIT service persists every
prediction, and each load is checked against the ticket store: a stored row for every 200.
Results go to ``bench/results/serve_bench-<time>.json`` and a Markdown table is printed.

Run: ``.venv/bin/python -m bench.serve_bench [--rounds 5] [--duration 15]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from boltit.core.polling import wait_until
from boltit.core.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
VENV_BIN = Path(sys.executable).parent


@dataclass
class LoadResult:
    """What one server did under load."""

    server: str
    requests: int
    ok: int
    failed: int
    seconds: float
    req_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def measured(
        cls,
        server: str,
        *,
        requests: int,
        ok: int,
        failed: int,
        elapsed: float,
        latencies_ms: tuple[float, float, float, float],
    ) -> LoadResult:
        """Rounded as reported; ``latencies_ms`` is p50, p90, p99 and the maximum."""
        p50, p90, p99, most = (round(value, 2) for value in latencies_ms)
        return cls(
            server=server,
            requests=requests,
            ok=ok,
            failed=failed,
            seconds=round(elapsed, 2),
            req_per_s=round(ok / elapsed, 1),
            p50_ms=p50,
            p90_ms=p90,
            p99_ms=p99,
            max_ms=most,
        )


@dataclass(frozen=True)
class LoadPlan:
    """Which server one load run hits, with what, how hard and for how long."""

    server: str
    port: int
    path: str
    bodies: list[bytes]
    connections: int
    seconds: float


async def _connection(
    http: httpx.AsyncClient,
    path: str,
    bodies: list[bytes],
    stop_at: float,
    offset: int,
    latencies: list[float],
) -> tuple[int, int]:
    """One keep-alive connection's worth of requests, back to back until ``stop_at``."""
    ok = failed = 0
    index = offset
    while time.perf_counter() < stop_at:
        body = bodies[index % len(bodies)]
        index += 1
        started = time.perf_counter()
        try:
            answer = await http.post(path, content=body)
        except httpx.HTTPError:
            failed += 1
            continue
        latencies.append(time.perf_counter() - started)
        if answer.status_code == 200:
            ok += 1
        else:
            failed += 1
    return ok, failed


async def _load(
    port: int, path: str, bodies: list[bytes], *, connections: int, seconds: float
) -> tuple[int, int, list[float], float]:
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Content-Type": "application/json"},
        limits=limits,
        timeout=10.0,
    ) as http:
        started = time.perf_counter()
        stop_at = started + seconds
        counts = await asyncio.gather(
            *(
                _connection(http, path, bodies, stop_at, i * 997, latencies)
                for i in range(connections)
            )
        )
        elapsed = time.perf_counter() - started
    return sum(c[0] for c in counts), sum(c[1] for c in counts), latencies, elapsed


def _load_in_process(job: tuple[LoadPlan, int, int]) -> tuple[int, int, list[float], float]:
    plan, connections, offset = job  # this process's share of the connections
    bodies = plan.bodies[offset:] + plan.bodies[:offset]
    return asyncio.run(
        _load(plan.port, plan.path, bodies, connections=connections, seconds=plan.seconds)
    )


def run_load(plan: LoadPlan, *, processes: int = 1) -> LoadResult:
    """Load one server for ``plan.seconds`` from ``processes`` client processes and summarise.

    One Python client process tops out near 1,000-1,300 req/s here, so a faster server
    needs the connections split over two client processes to be measured at all.
    """
    processes = max(1, processes)
    total = plan.connections
    shares = [total // processes + (i < total % processes) for i in range(processes)]
    jobs = [(plan, share, i * 500) for i, share in enumerate(shares)]
    if processes == 1:
        parts = [_load_in_process(jobs[0])]
    else:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(processes) as pool:
            parts = pool.map(_load_in_process, jobs)
    ok = sum(p[0] for p in parts)
    failed = sum(p[1] for p in parts)
    latencies = [latency for p in parts for latency in p[2]]
    elapsed = max(p[3] for p in parts)
    ordered = sorted(latencies) or [0.0]

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return LoadResult.measured(
        plan.server,
        requests=ok + failed,
        ok=ok,
        failed=failed,
        elapsed=elapsed,
        latencies_ms=(pct(0.50), pct(0.90), pct(0.99), ordered[-1] * 1000),
    )


WRK_SCRIPT = """
local bodies = {}
local index = 0
init = function(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  index = tonumber(args[2]) % #bodies
end
request = function()
  index = index % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[index])
end
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, '
    .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def run_wrk(plan: LoadPlan, *, workdir: Path) -> LoadResult:
    """Load one server with wrk (one thread) and summarise what its Lua ``done`` reports."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit(
            "wrk is not installed: `make bench` installs it (apt-get install wrk), "
            "or run with --client python"
        )
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT)
    bodies_file = workdir / f"bodies-{plan.port}.jsonl"
    bodies_file.write_bytes(b"\n".join(plan.bodies) + b"\n")
    command = [wrk, "-t1", f"-c{plan.connections}", f"-d{plan.seconds:g}s", "--timeout", "10s"]
    command += ["-s", str(script), f"http://127.0.0.1:{plan.port}{plan.path}"]
    command += ["--", str(bodies_file), "0"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return LoadResult.measured(
        plan.server,
        requests=int(report["requests"]),
        ok=int(report["requests"]) - int(report["non_2xx"]),
        failed=int(report["non_2xx"]) + int(report["socket_errors"]),
        elapsed=int(report["duration_us"]) / 1e6,
        latencies_ms=(
            report["p50_us"] / 1000,
            report["p90_us"] / 1000,
            report["p99_us"] / 1000,
            report["max_us"] / 1000,
        ),
    )


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 180) -> None:
    """Wait until ``url`` answers 200, or fail if the process died."""

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}")
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    if wait_until(answers, timeout=timeout, interval=0.5) is None:
        raise RuntimeError(f"{url} not ready after {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a server we started, and its workers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def prepare_registry(state_dir: Path, rows: int) -> tuple[dict[str, str], str]:
    """Train and register one version, make it Production; return the env and its version."""
    from boltit.core.settings import load_settings
    from boltit.core.tracking import configure_mlflow
    from boltit.core.vocabulary import PRODUCTION
    from boltit.training.data import from_generator
    from boltit.training.train import TrainRequest, train

    settings = load_settings(state_dir=state_dir)
    client = configure_mlflow(settings)
    result = train(
        TrainRequest(dataset=from_generator(rows, seed=11), register=True),
        settings=settings,
        client=client,
    )
    version = str(result.model_version)
    client.set_registered_model_alias(settings.model_name, PRODUCTION, version)
    env = dict(os.environ)
    env.update(
        {
            "BOLTIT_STATE_DIR": str(state_dir),
            "MLFLOW_TRACKING_URI": settings.tracking_uri,
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            "AUTO_APPLY_ENABLED": "true",
            # The load carries no token (mlflow models serve takes none either); the service
            # refuses to start open unless told.
            "BOLTIT_INSECURE_OPEN": "true",
        }
    )
    return env, version


def ticket_count(database_url: str) -> int:
    """Rows in the bench's ticket store."""
    from sqlalchemy import func, select

    from boltit.core.db import Database
    from boltit.core.schema import Ticket

    database = Database(database_url)
    try:
        with database.session() as session:
            return int(session.scalar(select(func.count()).select_from(Ticket)) or 0)
    finally:
        database.dispose()


def settled_ticket_count(database_url: str, *, pause: float = 0.3, tries: int = 20) -> int:
    """Rows in the ticket store once requests still in flight have committed."""
    count = ticket_count(database_url)
    for _ in range(tries):
        time.sleep(pause)
        again = ticket_count(database_url)
        if again == count:
            break
        count = again
    return count


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str | None]:
    """A throwaway PostgreSQL database for the ticket store, or None when unreachable."""
    from sqlalchemy import create_engine, text

    name = f"boltit_bench_{os.getpid()}_{int(time.time())}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        print(f"  PostgreSQL variant skipped: {admin_url} is not usable ({exc})", flush=True)
        admin.dispose()
        yield None
        return
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass(frozen=True)
class Variant:
    """One way of running ``boltit serve``."""

    label: str
    workers: int
    inline: bool
    postgres: bool = False


VARIANTS = {
    "inline": Variant("boltit serve, 1 worker, SQLite store", 1, True),
    "postgres": Variant("boltit serve, 1 worker, PostgreSQL store", 1, True, postgres=True),
    "threadpool": Variant("boltit serve, 1 worker, threadpool predict", 1, False),
    "workers2": Variant("boltit serve, 2 workers, SQLite store", 2, True),
    "workers2-threadpool": Variant("boltit serve, 2 workers, threadpool predict", 2, False),
    "postgres-workers2": Variant(
        "boltit serve, 2 workers, PostgreSQL store", 2, True, postgres=True
    ),
}
DEFAULT_VARIANTS = "inline,postgres"
PEER = "mlflow models serve"
TARGET_RATIO = 10.0
TARGET_P99_MS = 20.0


def _variants(spec: str) -> list[Variant]:
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        raise SystemExit(f"unknown --variants {unknown}; choose from {sorted(VARIANTS)}")
    return [VARIANTS[n] for n in names]


Load = Callable[[str, int, str, list[bytes], float], LoadResult]


@dataclass
class Server:
    """One started server and how to load it."""

    label: str
    process: subprocess.Popen[bytes]
    port: int
    path: str
    bodies: list[bytes]
    database_url: str | None = None  # BoltIT's ticket store, checked after every load
    workers: int = 1


def start_mlflow(env: dict[str, str], bodies: list[bytes], start_timeout: float) -> Server:
    """The peer: ``mlflow models serve`` (one worker) on the same Production model."""
    port = free_port()
    print(f"{PEER} on :{port} ...", flush=True)
    command = [str(VENV_BIN / "mlflow"), "models", "serve", "-w", "1"]
    command += ["-m", "models:/ticket-classifier@Production", "--env-manager", "local"]
    command += ["-h", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = Server(PEER, process, port, "/invocations", bodies)
    wait_http(f"http://127.0.0.1:{port}/ping", process, start_timeout)
    return server


def start_boltit(
    variant: Variant,
    *,
    env: dict[str, str],
    database_url: str,
    workdir: Path,
    bodies: list[bytes],
    start_timeout: float,
) -> Server | None:
    """``boltit serve`` as ``variant``; None (with its log) when it does not get ready."""
    port = free_port()
    print(f"{variant.label} on :{port} ...", flush=True)
    env = {
        **env,
        "BOLTIT_DATABASE_URL": database_url,
        "BOLTIT_PREDICT_INLINE": "true" if variant.inline else "false",
    }
    log_path = workdir / f"serve-{port}.log"
    command = [str(VENV_BIN / "boltit"), "serve", "--port", str(port)]
    command += ["--workers", str(variant.workers)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(
        variant.label, process, port, "/classify", bodies, database_url, variant.workers
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/ready", process, start_timeout)
    except RuntimeError as exc:
        tail = log_path.read_text(errors="replace")[-1500:]
        print(f"  skipped: {exc}\n{tail}", flush=True)
        stop(process)
        return None
    if variant.workers > 1:
        time.sleep(5)  # every worker loads its model before the warm-up
    return server


@dataclass
class Measured:
    """One server's load in one round, and (for BoltIT) its store check."""

    round: int
    result: LoadResult
    rows_stored: int | None = None
    consistent: bool | None = None


def measure(
    server: Server, *, round_no: int, load: Load, warmup: float, duration: float, in_flight: int
) -> Measured:
    """Warm ``server`` up, load it, and check its store against the 200s.

    ``in_flight``: requests the load generator may abandon at the end, whose rows may
    still be committed.
    """
    load("warm-up", server.port, server.path, server.bodies, warmup)
    if server.database_url is None:
        result = load(server.label, server.port, server.path, server.bodies, duration)
        return Measured(round_no, result)
    # Requests the generator abandoned at the end of the warm-up may still commit.
    before = settled_ticket_count(server.database_url)
    result = load(server.label, server.port, server.path, server.bodies, duration)
    stored = settled_ticket_count(server.database_url) - before
    consistent = result.failed == 0 and result.ok <= stored <= result.ok + in_flight
    return Measured(round_no, result, rows_stored=stored, consistent=consistent)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="load rounds over every server")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load per server")
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="seconds of warm-up per server and round"
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rows", type=int, default=3000, help="generated tickets to train on")
    parser.add_argument("--start-timeout", type=float, default=300.0)
    parser.add_argument(
        "--client",
        choices=["wrk", "python"],
        default="wrk",
        help="load generator: wrk (C, one thread) or the asyncio client",
    )
    parser.add_argument(
        "--client-processes",
        type=int,
        default=2,
        help="asyncio client processes (same total connections); --client python only",
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="server where the postgres variants create (and drop) a database of their own",
    )
    parser.add_argument(
        "--variants",
        default=DEFAULT_VARIANTS,
        help="boltit configurations, in load order: inline (1 worker, SQLite store), "
        "postgres (1 worker, PostgreSQL store), threadpool (1 worker, predict in the "
        "threadpool), workers2 (2 workers, SQLite), workers2-threadpool, postgres-workers2",
    )
    args = parser.parse_args()
    if not 1 <= args.duration <= 300:
        parser.error("--duration must be between 1 and 300 seconds")
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds must be between 1 and 20")
    return args


def _request_bodies() -> tuple[list[bytes], list[bytes]]:
    """The same 2,000 generated tickets, as BoltIT's and as MLflow's request bodies."""
    from boltit.training.generator import generate_tickets

    texts = generate_tickets(2000, seed=99)["text"].tolist()
    boltit_bodies = [json.dumps({"text": t}).encode() for t in texts]
    mlflow_bodies = [
        json.dumps({"dataframe_split": {"columns": ["text"], "data": [[t]]}}).encode()
        for t in texts
    ]
    return boltit_bodies, mlflow_bodies


def _load_generator(args: argparse.Namespace, workdir: Path) -> Load:
    """The chosen load generator, with the run's connections."""

    def load(server: str, port: int, path: str, bodies: list[bytes], seconds: float) -> LoadResult:
        plan = LoadPlan(server, port, path, bodies, connections=args.connections, seconds=seconds)
        if args.client == "wrk":
            return run_wrk(plan, workdir=workdir)
        return run_load(plan, processes=args.client_processes)

    return load


def start_servers(
    args: argparse.Namespace,
    stack: ExitStack,
    *,
    env: dict[str, str],
    state_dir: Path,
    workdir: Path,
    bodies: tuple[list[bytes], list[bytes]],
) -> list[Server]:
    """The peer, then every chosen ``boltit serve`` variant, each stopped when ``stack`` ends."""
    from boltit.core.settings import load_settings

    boltit_bodies, mlflow_bodies = bodies
    peer = start_mlflow(env, mlflow_bodies, args.start_timeout)
    stack.callback(stop, peer.process)
    servers = [peer]
    sqlite_url = load_settings(state_dir=state_dir).database_url
    for variant in _variants(args.variants):
        if variant.postgres:
            database_url = stack.enter_context(postgres_database(args.postgres_url))
            if database_url is None:
                continue
        else:
            database_url = sqlite_url
        server = start_boltit(
            variant,
            env=env,
            database_url=database_url,
            workdir=workdir,
            bodies=boltit_bodies,
            start_timeout=args.start_timeout,
        )
        if server is not None:
            stack.callback(stop, server.process)
            servers.append(server)
    return servers


def run_rounds(
    args: argparse.Namespace, servers: list[Server], load: Load
) -> tuple[dict[str, list[Measured]], list[tuple[float, float]]]:
    """Every round loads every server in turn; the load average around each round."""
    measured: dict[str, list[Measured]] = {server.label: [] for server in servers}
    load_averages = []
    in_flight = args.connections if args.client == "wrk" else 0
    for round_no in range(1, args.rounds + 1):
        before = os.getloadavg()[0]
        print(f"round {round_no}/{args.rounds} (load average {before:.1f}) ...", flush=True)
        for server in servers:
            if server.process.poll() is not None:
                raise SystemExit(f"{server.label} exited with {server.process.returncode}")
            one = measure(
                server,
                round_no=round_no,
                load=load,
                warmup=args.warmup,
                duration=args.duration,
                in_flight=in_flight,
            )
            measured[server.label].append(one)
            r = one.result
            print(
                f"  {server.label}: {r.req_per_s:,.0f} req/s, p50 {r.p50_ms} ms, "
                f"p99 {r.p99_ms} ms, failed {r.failed}"
                + ("" if one.consistent is None else f", every 200 stored: {one.consistent}"),
                flush=True,
            )
        load_averages.append((before, os.getloadavg()[0]))
    return measured, load_averages


def build_report(
    args: argparse.Namespace,
    *,
    version: str,
    measured: dict[str, list[Measured]],
    load_averages: list[tuple[float, float]],
) -> dict[str, Any]:
    """The JSON written to ``bench/results/``: every round, the medians, the target."""
    peer = [m.result.req_per_s for m in measured[PEER]]
    servers: dict[str, Any] = {}
    for label, rounds in measured.items():
        ratios = [
            round(m.result.req_per_s / base, 2) if base else 0.0
            for m, base in zip(rounds, peer, strict=True)
        ]
        p99s = [m.result.p99_ms for m in rounds]
        summary: dict[str, Any] = {
            "rounds": [
                {**asdict(m.result), "rows_stored": m.rows_stored, "consistent": m.consistent}
                for m in rounds
            ],
            "median_req_per_s": round(statistics.median(m.result.req_per_s for m in rounds), 1),
            "median_p50_ms": round(statistics.median(m.result.p50_ms for m in rounds), 2),
            "median_p99_ms": round(statistics.median(p99s), 2),
            "worst_p99_ms": max(p99s),
            "failed": sum(m.result.failed for m in rounds),
        }
        if label != PEER:
            median_ratio = round(statistics.median(ratios), 2)
            summary["ratios"] = ratios
            summary["median_ratio"] = median_ratio
            summary["every_200_stored"] = all(m.consistent for m in rounds)
            summary["meets_target"] = (
                median_ratio >= TARGET_RATIO
                and summary["median_p99_ms"] <= TARGET_P99_MS
                and summary["every_200_stored"]
            )
        servers[label] = summary
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_per_round": load_averages,
        },
        "model_version": version,
        "rounds": args.rounds,
        "connections": args.connections,
        "client": args.client,
        "client_processes": args.client_processes if args.client == "python" else None,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "target": {"median_ratio": TARGET_RATIO, "median_p99_ms": TARGET_P99_MS},
        "servers": servers,
    }


def print_table(args: argparse.Namespace, report: dict[str, Any], out_path: Path) -> None:
    """The Markdown table bench/README.md quotes, and the run's verdicts."""
    servers = report["servers"]
    rounds = report["rounds"]
    print()
    print(
        f"{args.client}, {args.connections} connections, {args.duration:g} s per server and "
        f"round, {rounds} rounds, one worker each unless named; load average per round "
        + ", ".join(f"{a:.1f}-{b:.1f}" for a, b in report["machine"]["load_average_per_round"])
    )
    print()
    runs = " / ".join(str(i) for i in range(1, rounds + 1))
    print(
        f"| server | req/s (rounds {runs}) | ratio to peer (median; rounds) | p50 ms (median) "
        "| p99 ms (median; worst) | failed | every 200 stored |"
    )
    print("|---|---:|---:|---:|---:|---:|:---:|")
    for label, summary in servers.items():
        per_round = " / ".join(f"{r['req_per_s']:,.0f}" for r in summary["rounds"])
        if label == PEER:
            ratio, stored, name = "1.0", "n/a", f"`{PEER}`"
        else:
            each = ", ".join(f"{x:.1f}" for x in summary["ratios"])
            ratio = f"**{summary['median_ratio']:.1f}** ({each})"
            stored = "yes" if summary["every_200_stored"] else "**no**"
            name = f"`{label}`"
        print(
            f"| {name} | {per_round} | {ratio} | {summary['median_p50_ms']} "
            f"| **{summary['median_p99_ms']}**; {summary['worst_p99_ms']} "
            f"| {summary['failed']} | {stored} |"
        )
    print()
    for label, summary in servers.items():
        if label != PEER:
            verdict = "meets" if summary["meets_target"] else "misses"
            print(
                f"{label}: {verdict} the target (median ratio >= {TARGET_RATIO:g}x, "
                f"median p99 <= {TARGET_P99_MS:g} ms, every 200 stored)"
            )
    print(f"written to {out_path.relative_to(ROOT)}")


def main() -> None:
    """Start every server, load them round after round, write JSON and print the table."""
    args = _arguments()
    bodies = _request_bodies()
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        load = _load_generator(args, workdir)
        print("training and registering one version ...", flush=True)
        env, version = prepare_registry(workdir / "state", args.rows)
        servers = start_servers(
            args, stack, env=env, state_dir=workdir / "state", workdir=workdir, bodies=bodies
        )
        if len(servers) < 2:
            raise SystemExit("no boltit configuration started; see the logs printed above")
        measured, load_averages = run_rounds(args, servers, load)
    report = build_report(args, version=version, measured=measured, load_averages=load_averages)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_path = RESULTS / f"serve_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out_path.write_text(json.dumps(report, indent=2) + "\n")
    print_table(args, report, out_path)


if __name__ == "__main__":
    main()
