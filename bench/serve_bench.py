"""Serving benchmark: ``mlflow models serve`` and ``boltit serve`` on the same registered model.

Both servers load ``models:/<name>@Production`` from one throwaway registry and are
loaded one after the other in the same run, by the same load generator on loopback with
16 keep-alive connections for a bounded time. The default generator is ``wrk`` (Debian's
package; ``make bench`` installs it), a C program that leaves the two cores to the
servers; ``--client python`` uses an asyncio client instead. The BoltIT service persists
every prediction, and the run checks the ticket store against the successful responses.
Results go to ``bench/results/serve_bench-<time>.json`` and a Markdown table is printed.

Run: ``.venv/bin/python -m bench.serve_bench [--duration 15] [--connections 16]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
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
    "inline": Variant("boltit serve, 1 worker, inline predict", 1, True),
    "threadpool": Variant("boltit serve, 1 worker, threadpool predict", 1, False),
    "workers2": Variant("boltit serve, 2 workers, inline predict", 2, True),
    "workers2-threadpool": Variant("boltit serve, 2 workers, threadpool predict", 2, False),
    "postgres": Variant("boltit serve, 1 worker, PostgreSQL store", 1, True, postgres=True),
    "postgres-workers2": Variant(
        "boltit serve, 2 workers, PostgreSQL store", 2, True, postgres=True
    ),
}


def _variants(spec: str) -> list[Variant]:
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        raise SystemExit(f"unknown --variants {unknown}; choose from {sorted(VARIANTS)}")
    return [VARIANTS[n] for n in names]


def serve_and_load(
    variant: Variant,
    *,
    env: dict[str, str],
    database_url: str,
    workdir: Path,
    bodies: list[bytes],
    load: Callable[[str, int, str, list[bytes], float], LoadResult],
    warmup: float,
    duration: float,
    start_timeout: float,
    in_flight: int,
) -> tuple[LoadResult, dict[str, int | bool]] | None:
    """Start ``boltit serve`` as ``variant``, load it, and check the store against the 200s.

    ``in_flight``: requests the load generator may abandon at the end, whose rows may
    still be committed.
    """
    port = free_port()
    print(f"{variant.label} on :{port} ...", flush=True)
    env = {**env, "BOLTIT_PREDICT_INLINE": "true" if variant.inline else "false"}
    log_path = workdir / f"serve-{port}.log"
    command = [str(VENV_BIN / "boltit"), "serve", "--port", str(port)]
    command += ["--workers", str(variant.workers)]
    with log_path.open("wb") as log:
        service = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        try:
            wait_http(f"http://127.0.0.1:{port}/ready", service, start_timeout)
        except RuntimeError as exc:
            tail = log_path.read_text(errors="replace")[-1500:]
            print(f"  skipped: {exc}\n{tail}", flush=True)
            return None
        if variant.workers > 1:
            time.sleep(5)  # every worker loads its model before the warm-up
        load("warm-up", port, "/classify", bodies, warmup)
        before = ticket_count(database_url)
        ours = load(variant.label, port, "/classify", bodies, duration)
        stored = ticket_count(database_url) - before
    finally:
        stop(service)
    consistent = ours.failed == 0 and ours.ok <= stored <= ours.ok + in_flight
    return ours, {"ok_responses": ours.ok, "rows_stored": stored, "consistent": consistent}


Load = Callable[[str, int, str, list[bytes], float], LoadResult]


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load per server")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per server")
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
        default="inline,workers2,postgres,postgres-workers2",
        help="boltit configurations: inline (1 worker, predict on the event loop), "
        "threadpool (1 worker, predict in the threadpool), workers2 (2 workers, inline), "
        "workers2-threadpool, postgres and postgres-workers2 (the ticket store on PostgreSQL)",
    )
    args = parser.parse_args()
    if not 1 <= args.duration <= 300:
        parser.error("--duration must be between 1 and 300 seconds")
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


def measure_mlflow(
    *, env: dict[str, str], load: Load, bodies: list[bytes], warmup: float, duration: float
) -> LoadResult:
    """The peer: ``mlflow models serve`` on the same Production model."""
    mlflow_port = free_port()
    print(f"mlflow models serve on :{mlflow_port} ...", flush=True)
    command = [str(VENV_BIN / "mlflow"), "models", "serve"]
    command += ["-m", "models:/ticket-classifier@Production", "--env-manager", "local"]
    command += ["-h", "127.0.0.1", "-p", str(mlflow_port)]
    mlflow_server = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{mlflow_port}/ping", mlflow_server)
        load("warm-up", mlflow_port, "/invocations", bodies, warmup)
        return load("mlflow models serve", mlflow_port, "/invocations", bodies, duration)
    finally:
        stop(mlflow_server)


def measure_boltit(
    args: argparse.Namespace,
    *,
    env: dict[str, str],
    state_dir: Path,
    workdir: Path,
    load: Load,
    bodies: list[bytes],
) -> tuple[list[LoadResult], dict[str, dict[str, int | bool]]]:
    """Every chosen ``boltit serve`` variant: its load figures and its store check."""
    from boltit.core.settings import load_settings

    sqlite_url = load_settings(state_dir=state_dir).database_url
    results: list[LoadResult] = []
    persisted: dict[str, dict[str, int | bool]] = {}
    for variant in _variants(args.variants):
        store = (
            postgres_database(args.postgres_url) if variant.postgres else nullcontext(sqlite_url)
        )
        with store as database_url:
            if database_url is None:
                continue
            measured = serve_and_load(
                variant,
                env={**env, "BOLTIT_DATABASE_URL": database_url},
                database_url=database_url,
                workdir=workdir,
                bodies=bodies,
                load=load,
                warmup=args.warmup,
                duration=args.duration,
                start_timeout=args.start_timeout,
                in_flight=args.connections if args.client == "wrk" else 0,
            )
        if measured is not None:
            results.append(measured[0])
            persisted[variant.label] = measured[1]
    return results, persisted


def build_report(
    args: argparse.Namespace,
    *,
    version: str,
    baseline: LoadResult,
    variants: list[LoadResult],
    persisted: dict[str, dict[str, int | bool]],
) -> dict[str, Any]:
    """The JSON written to ``bench/results/``: figures, ratios to the peer, the target."""
    best = max(variants, key=lambda r: r.req_per_s)
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_end": os.getloadavg(),
        },
        "model_version": version,
        "connections": args.connections,
        "client": args.client,
        "client_processes": args.client_processes if args.client == "python" else None,
        "duration_s": args.duration,
        "results": [asdict(r) for r in [baseline, *variants]],
        "ratios": {
            r.server: round(r.req_per_s / baseline.req_per_s, 2) if baseline.req_per_s else None
            for r in variants
        },
        "best": best.server,
        "throughput_ratio": (
            round(best.req_per_s / baseline.req_per_s, 2) if baseline.req_per_s else None
        ),
        "every_success_persisted": persisted,
        # The target, per configuration: >= 8x the peer with p99 <= 20 ms.
        "meets_target": {
            r.server: bool(baseline.req_per_s)
            and r.req_per_s >= 8 * baseline.req_per_s
            and r.p99_ms <= 20
            for r in variants
        },
    }


def print_table(
    args: argparse.Namespace, report: dict[str, Any], results: list[LoadResult], out_path: Path
) -> None:
    """The Markdown table bench/README.md quotes, and the run's verdicts."""
    baseline = results[0]
    print()
    print(
        f"| server | req/s | ratio | p50 ms | p99 ms | ok | failed | "
        f"({args.client}, {args.connections} connections, {args.duration:g} s each)"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        times = r.req_per_s / baseline.req_per_s if baseline.req_per_s else 0.0
        print(
            f"| {r.server} | {r.req_per_s:,.0f} | {times:.1f}x | {r.p50_ms} | {r.p99_ms} "
            f"| {r.ok} | {r.failed} |"
        )
    print(f"\nbest: {report['best']}, **{report['throughput_ratio']}x** mlflow models serve")
    print(f"meets >= 8x with p99 <= 20 ms: {report['meets_target']}")
    print(f"every 200 persisted: {report['every_success_persisted']}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"written to {out_path.relative_to(ROOT)}")


def main() -> None:
    """Run both servers, load each, write JSON and print the table."""
    args = _arguments()
    boltit_bodies, mlflow_bodies = _request_bodies()
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        workdir = Path(tmp)
        load = _load_generator(args, workdir)
        print("training and registering one version ...", flush=True)
        env, version = prepare_registry(workdir / "state", args.rows)
        baseline = measure_mlflow(
            env=env, load=load, bodies=mlflow_bodies, warmup=args.warmup, duration=args.duration
        )
        variants, persisted = measure_boltit(
            args,
            env=env,
            state_dir=workdir / "state",
            workdir=workdir,
            load=load,
            bodies=boltit_bodies,
        )
    if not variants:
        raise SystemExit("no boltit configuration started; see the logs printed above")
    report = build_report(
        args, version=version, baseline=baseline, variants=variants, persisted=persisted
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_path = RESULTS / f"serve_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out_path.write_text(json.dumps(report, indent=2) + "\n")
    print_table(args, report, [baseline, *variants], out_path)


if __name__ == "__main__":
    main()
