"""Benchmark: the ``training_data`` suite on 1M tickets, against the same checks in pandas.

Run: ``.venv/bin/python bench/data_checks_bench.py [--rows 1000000] [--repeats 2]``.
Tickets are sampled from the shared real dataset when it is present (its long texts are
the realistic load), else from the generator; each gets a reference number so texts stay
as unique as real ones. Results go to ``bench/results/data_checks.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from boltit.data_checks.config import TrainingDataConfig

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT.parent / "shared" / "data" / "it_service_tickets.csv"
RESULTS = ROOT / "bench" / "results" / "data_checks.json"


def tickets(rows: int, seed: int = 0) -> tuple[pd.DataFrame, str]:
    """``rows`` tickets sampled with replacement, made unique by a reference suffix."""
    if REAL_DATA.is_file():
        base = pd.read_csv(REAL_DATA).rename(
            columns={"Document": "text", "Topic_group": "category"}
        )
        source = "real dataset, resampled"
    else:
        from boltit.training.generator import generate_tickets

        base = generate_tickets(20_000, seed=seed)[["text", "category"]]
        source = "generator, resampled"
    sample = base.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    sample["text"] = sample["text"] + " ref " + pd.Series(np.arange(rows)).astype("str")
    return sample, source


def pandas_checks(frame: pd.DataFrame, *, config: TrainingDataConfig) -> dict[str, bool]:
    """The same checks as ``training_data``, written directly in pandas (the peer)."""
    from boltit.data_checks.frames import normalise_text

    c = config
    text = frame["text"]
    normalised = normalise_text(text.where(text.notna(), None))
    length = normalised.str.len()
    keys = pd.util.hash_pandas_object(normalised.fillna(""), index=False)
    labels = frame.assign(key=keys).groupby("key", sort=False)["category"].transform("nunique")
    counts = frame["category"].value_counts()
    return {
        "required_columns": {"text", "category"} <= set(frame.columns),
        "has_rows": len(frame) > 0,
        "text_not_null": bool(text.notna().all()),
        "text_not_empty": bool((length.dropna() >= 1).all()),
        "text_length_bounds": bool(
            length.dropna().between(c.min_text_length, c.max_text_length).all()
        ),
        "category_not_null": bool(frame["category"].notna().all()),
        "duplicate_rate": keys.nunique() / len(keys) >= 1 - c.max_duplicate_rate,
        "conflicting_labels": float((labels > 1).mean()) <= c.max_conflicting_label_rate,
        "at_least_two_categories": len(counts) >= 2,
        "min_rows_per_class": bool((counts >= c.min_rows_per_class).all()),
        "class_imbalance_ratio": counts.max() / counts.min() <= c.max_imbalance_ratio,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    started = time.perf_counter()
    from boltit.data_checks.config import TrainingDataConfig
    from boltit.data_checks.suites import run_training_data_suite

    config = TrainingDataConfig()
    run_training_data_suite(tickets(2_000)[0], config=config)  # imports GX, warms caches
    warmup = time.perf_counter() - started

    frame, source = tickets(args.rows)
    suite_times, peer_times = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        report = run_training_data_suite(frame, config=config)
        suite_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        peer = pandas_checks(frame, config=config)
        peer_times.append(time.perf_counter() - t0)
    agree = {o.name: o.success for o in report.outcomes} == peer

    suite_s, peer_s = statistics.median(suite_times), statistics.median(peer_times)
    result = {
        "rows": args.rows,
        "data": source,
        "repeats": args.repeats,
        "suite_seconds_median": round(suite_s, 2),
        "suite_seconds_all": [round(t, 2) for t in suite_times],
        "pandas_peer_seconds_median": round(peer_s, 2),
        "ratio_suite_to_pandas": round(suite_s / peer_s, 2),
        "target_seconds": 30,
        "verdicts_agree": agree,
        "suite_success": report.success,
        "first_call_with_gx_import_seconds": round(warmup, 2),
        "machine": f"{platform.machine()}, {platform.python_version()}",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"training_data suite on {args.rows:,} rows ({source}), median of {args.repeats}:")
    print(f"  GX suite      {suite_s:7.2f} s   (target <= 30 s)")
    print(f"  pandas peer   {peer_s:7.2f} s")
    print(f"  ratio         {suite_s / peer_s:7.2f} x   verdicts agree: {agree}")
    print(f"  written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
