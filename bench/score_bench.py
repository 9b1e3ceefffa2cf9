"""Batch scoring throughput: ``boltit score`` (local and Spark) beside a naive pyfunc loop.

One throwaway SQLite store holds one registered version trained on generated tickets; the
input is ``--rows`` generated tickets (default 1,000,000) as a folder of Parquet parts.
Each round runs, as separate processes and in rotating order so machine load hits them
alike:

- ``boltit score INPUT --engine local`` (pandas, chunked),
- ``boltit score INPUT --engine spark --spark-master local[2]``,
- the peer: a script that loads the pyfunc and calls ``model.predict`` on 10,000-row
  chunks, writing each chunk's answers to Parquet (what a hand-written loop does).

Every figure is rows / wall seconds of the whole process (start-up and model load
included), the median of ``--rounds`` rounds. Results go to
``bench/results/score_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BOLTIT = str(Path(sys.executable).with_name("boltit"))
TIMEOUT_S = 3600
NAIVE_LOOP = """
import sys, pyarrow.parquet as pq, pandas as pd, mlflow.pyfunc
from pathlib import Path
uri, source, out = sys.argv[1:]
model = mlflow.pyfunc.load_model(uri)
Path(out).mkdir()
n = 0
for file in sorted(Path(source).glob("*.parquet")):
    for batch in pq.ParquetFile(file).iter_batches(batch_size=10_000, columns=["text"]):
        answers = model.predict(batch.to_pandas())
        answers.to_parquet(Path(out) / f"chunk-{n:05d}.parquet")
        n += 1
"""


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; prints a Markdown table and writes the JSON results."""
    parser = argparse.ArgumentParser(prog="python -m bench.score_bench")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--skip-spark", action="store_true", help="when Java is absent")
    parser.add_argument(
        "--spark-masters",
        default="local[2]",
        help="comma-separated Spark masters, one command each (local[1],local[2]: the scaling "
        "from one executor core to two)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="boltit-score-bench-") as name:
        folder = Path(name)
        env = _environment(folder)
        version = _train(folder, env)
        source = _tickets(folder, args.rows)
        uri = f"models:/ticket-classifier/{version}"
        commands: dict[str, list[str]] = {
            "naive pyfunc.predict loop (peer)": [
                sys.executable,
                "-c",
                NAIVE_LOOP,
                uri,
                str(source),
            ],
            "boltit score --engine local": [
                BOLTIT,
                "score",
                str(source),
                "--model",
                version,
                "--chunk-rows",
                str(args.chunk_rows),
                "--output",
            ],
        }
        masters = [] if args.skip_spark else args.spark_masters.split(",")
        for master in masters:
            commands[f"boltit score --engine spark, {master}"] = [
                BOLTIT,
                "score",
                str(source),
                "--model",
                version,
                "--engine",
                "spark",
                "--spark-master",
                master,
                "--chunk-rows",
                str(args.chunk_rows),
                "--output",
            ]
        seconds: dict[str, list[float]] = {label: [] for label in commands}
        load_before = round(os.getloadavg()[0], 2)
        for round_ in range(args.rounds):
            labels = list(commands)
            order = labels[round_ % len(labels) :] + labels[: round_ % len(labels)]
            for label in order:
                out = folder / f"out-{round_}-{labels.index(label)}"
                seconds[label].append(_timed([*commands[label], str(out)], env, folder))
                shutil.rmtree(out, ignore_errors=True)
                print(f"round {round_ + 1}: {label}: {seconds[label][-1]:.1f} s", flush=True)
        load_after = round(os.getloadavg()[0], 2)
    peer = "naive pyfunc.predict loop (peer)"
    median = {label: statistics.median(times) for label, times in seconds.items()}
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": args.rows,
        "rounds": args.rounds,
        "chunk_rows": args.chunk_rows,
        "cpus": os.cpu_count(),
        "load_average_1m": [load_before, load_after],
        "seconds": seconds,
        "median_seconds": median,
        "rows_per_second": {label: args.rows / s for label, s in median.items()},
        "ratio_to_peer": {label: median[peer] / s for label, s in median.items()},
    }
    _print(results, peer)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "score_bench.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def _environment(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "BOLTIT_"))}
    env |= {"BOLTIT_STATE_DIR": str(folder / "state"), "COLUMNS": "120"}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'state' / 'mlflow.db'}"
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    return env


def _train(folder: Path, env: dict[str, str]) -> str:
    subprocess.run(
        [BOLTIT, "train", "--rows", "4000", "--seed", "3"],
        cwd=folder,
        env=env,
        check=True,
        timeout=TIMEOUT_S,
        stdout=subprocess.DEVNULL,
    )
    return "1"


def _tickets(folder: Path, rows: int) -> Path:
    """``rows`` generated tickets as 8 Parquet parts (generated in blocks: the generator is
    pure Python, so a million rows take a while, once)."""
    from boltit.training.generator import generate_tickets

    source = folder / "tickets"
    source.mkdir()
    parts = 8
    for part in range(parts):
        n = rows // parts + (1 if part < rows % parts else 0)
        frame = generate_tickets(n, seed=100 + part)
        frame.insert(0, "id", [f"p{part}-{i}" for i in range(n)])
        frame.to_parquet(source / f"part-{part}.parquet")
    return source


def _timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        timeout=TIMEOUT_S,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if done.returncode != 0:
        raise SystemExit(f"{command[:4]} failed: {done.stderr.decode()[-2000:]}")
    return time.perf_counter() - started


def _print(results: dict[str, Any], peer: str) -> None:
    print(
        f"\n{results['rows']:,} generated tickets, median of {results['rounds']} rounds, "
        f"{results['cpus']} CPUs, 1-min load {results['load_average_1m']}"
    )
    print("| what | median s | rows/s | x peer |")
    print("|---|---:|---:|---:|")
    for label, seconds in results["median_seconds"].items():
        print(
            f"| {label} | {seconds:.1f} | {results['rows_per_second'][label]:,.0f} | "
            f"{results['ratio_to_peer'][label]:.2f} |"
        )


if __name__ == "__main__":
    main()
