"""Does the classifier hold up on any team's tickets? Four dataset shapes, one run.

For each shape the model (``TicketClassifier`` with the default search space, chosen and
calibrated on its training rows only) and the plain ``TfidfVectorizer(ngram_range=(1, 2),
sublinear_tf=True)`` + ``LinearSVC()`` baseline are fitted on the same training rows and
scored on the same evaluation rows: accuracy, macro-F1 and, for the model, expected
calibration error. Shapes: the shared real dataset (standard stratified 80/20 split,
``random_state=42``; skipped when absent), the generator's many skewed classes with
singletons, a two-class set and a short-text set. Results go to
``bench/results/generalisation_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.metrics import f1_score

from boltit.core.evaluation import expected_calibration_error
from boltit.training.baseline import plain_baseline
from boltit.training.data import load_file
from boltit.training.holdout import split
from boltit.training.model import ModelConfig, TicketClassifier
from boltit.training.selection import load_search_space
from boltit.training.shapes import short_texts, skewed_teams, two_classes

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "it_service_tickets.csv"
RESULTS = ROOT / "bench" / "results"
SEED = 42


def _real(path: Path) -> Callable[[], pd.DataFrame] | None:
    if not path.is_file():
        return None
    return lambda: load_file(path, text_column="Document", label_column="Topic_group").frame


def shapes(
    data: Path, rows: int, seeds: tuple[int, ...] = (SEED,)
) -> dict[str, Callable[[], pd.DataFrame] | None]:
    """Each shape's frame builder (None: not available here); generated ones per seed."""
    built: dict[str, Callable[[], pd.DataFrame] | None] = {
        "shared dataset (8 classes)": _real(data)
    }
    for seed in seeds:
        tag = "" if seeds == (SEED,) else f", seed {seed}"
        built |= {
            f"64 skewed classes, 3 singletons{tag}": partial(
                skewed_teams, rows, n_classes=64, singletons=3, seed=seed
            ),
            f"2 classes (70/30){tag}": partial(two_classes, rows, seed=seed),
            f"short texts (5 words){tag}": partial(short_texts, rows, seed=seed),
        }
    return built


def holdout(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The standard split; categories too rare to split all stay in training."""
    counts = frame["category"].map(frame["category"].value_counts())
    rare = (counts < 2).to_numpy()
    train_frame, eval_frame = split(frame[~rare], test_size=0.2, seed=SEED)
    return pd.concat([train_frame, frame[rare]], ignore_index=True), eval_frame


def measure(frame: pd.DataFrame) -> dict[str, Any]:
    """Model and plain baseline on the same rows."""
    train_frame, eval_frame = holdout(frame)
    truth = eval_frame["category"].to_numpy()
    started, cpu_started = time.perf_counter(), time.process_time()
    model = TicketClassifier.fit(
        train_frame["text"],
        train_frame["category"],
        config=ModelConfig(seed=SEED),
        search=load_search_space(),
    )
    fit_seconds = time.perf_counter() - started
    fit_cpu_seconds = time.process_time() - cpu_started
    predicted = model.predict_frame(eval_frame["text"].tolist())
    correct = predicted["category"].to_numpy() == truth
    baseline = plain_baseline()
    started, cpu_started = time.perf_counter(), time.process_time()
    baseline.fit(train_frame["text"], train_frame["category"])  # type: ignore[attr-defined]
    baseline_seconds = time.perf_counter() - started
    baseline_cpu_seconds = time.process_time() - cpu_started
    base_predicted = baseline.predict(eval_frame["text"])  # type: ignore[attr-defined]
    selection = model.selection
    return {
        "classes": int(frame["category"].nunique()),
        "train_rows": len(train_frame),
        "eval_rows": len(eval_frame),
        "largest_class_share": float(frame["category"].value_counts(normalize=True).iloc[0]),
        "accuracy": float(correct.mean()),
        "macro_f1": float(f1_score(truth, predicted["category"], average="macro")),
        "ece": expected_calibration_error(
            confidence=predicted["confidence"].to_numpy(), correct=correct
        ),
        "baseline_accuracy": float((base_predicted == truth).mean()),
        "baseline_macro_f1": float(f1_score(truth, base_predicted, average="macro")),
        "chosen": selection.chosen.name if selection else "",
        "fit_seconds": fit_seconds,
        # CPU seconds of this process (both cores): wall time on a machine shared with
        # other work says more about the other work than about the fit.
        "fit_cpu_seconds": fit_cpu_seconds,
        "baseline_fit_seconds": baseline_seconds,
        "baseline_fit_cpu_seconds": baseline_cpu_seconds,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run every available shape; prints a Markdown table and writes the JSON results."""
    parser = argparse.ArgumentParser(prog="python -m bench.generalisation_bench")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rows", type=int, default=4000, help="Rows of each generated shape.")
    parser.add_argument(
        "--seeds",
        default=str(SEED),
        help="Comma-separated generator seeds; each generated shape is run once per seed.",
    )
    args = parser.parse_args(argv)
    seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    figures: dict[str, Any] = {}
    for name, build in shapes(args.data, args.rows, seeds).items():
        figures[name] = None if build is None else measure(build())
    measured = [f for f in figures.values() if f is not None]
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "load_average_1m": os.getloadavg()[0],
        "model_at_least_baseline": sum(f["accuracy"] >= f["baseline_accuracy"] for f in measured),
        "shapes_measured": len(measured),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "shapes": figures,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "generalisation_bench.json").write_text(json.dumps(results, indent=2))
    print(markdown(results))
    return results


def markdown(results: dict[str, Any]) -> str:
    """One row per shape: model next to the plain baseline."""
    lines = [
        f"{results['machine']}, load average {results['load_average_1m']:.1f} at the end; "
        f"model >= baseline accuracy on {results['model_at_least_baseline']} of "
        f"{results['shapes_measured']} shapes",
        "",
        "| shape | classes | model accuracy | baseline accuracy | model macro-F1 | "
        "baseline macro-F1 | model ECE | chosen | fit CPU s (baseline) |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, f in results["shapes"].items():
        if f is None:
            lines.append(f"| {name} | skipped: data not found | | | | | | | |")
            continue
        lines.append(
            f"| {name} | {f['classes']} | {f['accuracy']:.4f} | {f['baseline_accuracy']:.4f} | "
            f"{f['macro_f1']:.4f} | {f['baseline_macro_f1']:.4f} | {f['ece']:.4f} | "
            f"{f['chosen']} | {f['fit_cpu_seconds']:.1f} ({f['baseline_fit_cpu_seconds']:.1f}) |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
