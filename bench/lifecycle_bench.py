"""Emergency commands beside the floor: a bare ``MlflowClient`` script that moves an alias.

Every command runs as its own process, as an on-call engineer runs it, on one throwaway
SQLite store holding two versions that both served (so neither promote nor rollback has
to load a model). Two bad arguments are timed too: they must be refused before anything
heavy loads. Rounds interleave the commands so machine load hits them alike; the
report is each command's median wall time and its ratio to the bare script's median.
The bare script moves an alias of its own (``bench_bare``) so that it does not disturb
the history the boltit commands read; moving any alias costs the same.
Results go to ``bench/results/lifecycle_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
# The console script, as installed beside this interpreter.
BOLTIT = [str(Path(sys.executable).with_name("boltit"))]
TIMEOUT_S = 300  # one command; a hung store must not hang the bench
BARE_SCRIPT = """
import sys
from mlflow import MlflowClient
uri, name, version = sys.argv[1:]
MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
    name, "bench_bare", version
)
"""


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; prints a Markdown table and writes the JSON results."""
    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle_bench")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="boltit-lifecycle-bench-") as folder:
        env = _environment(Path(folder))
        name, first, second = _prepare(Path(folder), env)
        uri = f"sqlite:///{Path(folder) / 'state' / 'mlflow.db'}"
        times: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        load_before = round(os.getloadavg()[0], 2)
        for round_ in range(args.rounds):
            # second serves at the start of every round: roll back to first, promote second.
            there, back = first, second
            commands = {
                "bare MlflowClient alias move": [
                    sys.executable,
                    "-c",
                    BARE_SCRIPT,
                    uri,
                    name,
                    there,
                ],
                "boltit rollback": [*BOLTIT, "rollback", "--to", there, "--reason", "bench"],
                "boltit promote (served before)": [*BOLTIT, "promote", back],
                "boltit flags set": [
                    *BOLTIT,
                    "flags",
                    "set",
                    "auto-apply",
                    "off" if round_ % 2 else "on",
                    "--reason",
                    "bench",
                ],
                "boltit history": [*BOLTIT, "history", "--limit", "20"],
                "boltit incident list": [*BOLTIT, "incident", "list"],
                "boltit monitor status": [*BOLTIT, "monitor", "status"],
                "boltit drift, bad window (exit 2)": [
                    *BOLTIT,
                    "drift",
                    "--baseline",
                    "nonsense",
                    "--current",
                    "2026-11-01..2026-11-30",
                ],
                "boltit rollback --to abc (exit 2)": [*BOLTIT, "rollback", "--to", "abc"],
            }
            for label, command in commands.items():
                expected = 2 if "(exit 2)" in label else 0
                wall, used = _timed(command, env=env, cwd=Path(folder), expected=expected)
                times.setdefault(label, []).append(wall)
                cpu.setdefault(label, []).append(used)
    bare = statistics.median(times["bare MlflowClient alias move"])
    bare_cpu = statistics.median(cpu["bare MlflowClient alias move"])
    results = {
        "rounds": args.rounds,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        # How busy the machine was (1-minute load average), before and after the timed rounds.
        "load_average": {"before": load_before, "after": round(os.getloadavg()[0], 2)},
        "commands": {
            label: {
                "median_s": round(statistics.median(runs), 2),
                "runs_s": [round(t, 2) for t in runs],
                "ratio_to_bare": round(statistics.median(runs) / bare, 2),
                # CPU time (user + system) of the process: what the command costs, less
                # sensitive than wall time to other work on a busy machine.
                "median_cpu_s": round(statistics.median(cpu[label]), 2),
                "cpu_ratio_to_bare": round(statistics.median(cpu[label]) / bare_cpu, 2),
            }
            for label, runs in times.items()
        },
    }
    load = results["load_average"]
    print(f"load average {load['before']} before, {load['after']} after ({results['cpus']} CPUs)")
    print(
        f"| command | wall s, median of {args.rounds} | ratio to bare | median CPU s | CPU ratio |"
    )
    print("|---|---:|---:|---:|---:|")
    for label, figures in results["commands"].items():
        print(
            f"| {label} | {figures['median_s']:.2f} | {figures['ratio_to_bare']:.2f} "
            f"| {figures['median_cpu_s']:.2f} | {figures['cpu_ratio_to_bare']:.2f} |"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lifecycle_bench.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def _environment(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOLTIT_", "MLFLOW_", "AWS_"))}
    env.update(BOLTIT_STATE_DIR=str(folder / "state"), COLUMNS="200")
    return env


def _prepare(folder: Path, env: dict[str, str]) -> tuple[str, str, str]:
    """A store with one trained version and its twin, both promoted once (untimed)."""
    code = (
        "from pathlib import Path\n"
        "from boltit.core.settings import load_settings\n"
        "from boltit.core.tracking import configure_mlflow\n"
        "from boltit.training.data import from_generator\n"
        "from boltit.training.train import TrainConfig, TrainRequest, train\n"
        f"settings = load_settings(state_dir=Path({str(folder / 'state')!r}))\n"
        "client = configure_mlflow(settings)\n"
        "request = TrainRequest(dataset=from_generator(1500, seed=1),"
        " config=TrainConfig(latency_samples=10))\n"
        "result = train(request, settings=settings, client=client)\n"
        "mv = client.get_model_version(settings.model_name, result.model_version)\n"
        "twin = client.create_model_version(settings.model_name, mv.source, mv.run_id)\n"
        # Stands in for `boltit validate` (not timed here): both count as validated.
        "for v in (result.model_version, twin.version):\n"
        "    client.set_model_version_tag(settings.model_name, v, 'validation_status', 'passed')\n"
        "print(settings.model_name, result.model_version, twin.version)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT_S * 2,
    )
    name, first, second = done.stdout.split()[-3:]
    for version in (first, second):  # first promotions load the model: setup, not timed
        _timed([*BOLTIT, "promote", version, "--force", "--reason", "bench"], env=env, cwd=folder)
    return name, first, second


def _timed(
    command: list[str], *, env: dict[str, str], cwd: Path, expected: int = 0
) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of ``command``, run to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != expected:
        raise SystemExit(
            f"{' '.join(command[1:])} exited {done.returncode}, not {expected}: "
            f"{done.stderr.strip()[-500:]}"
        )
    return elapsed, used


if __name__ == "__main__":
    main()
