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


def shapes(data: Path, rows: int) -> dict[str, Callable[[], pd.DataFrame] | None]:
    """Each shape's frame builder (None: not available here)."""
    return {
        "shared dataset (8 classes)": _real(data),
        "64 skewed classes, 3 singletons": lambda: skewed_teams(
            rows, n_classes=64, singletons=3, seed=SEED
        ),
        "2 classes (70/30)": lambda: two_classes(rows, seed=SEED),
        "short texts (5 words)": lambda: short_texts(rows, seed=SEED),
    }


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
    started = time.perf_counter()
    model = TicketClassifier.fit(
        train_frame["text"],
        train_frame["category"],
        config=ModelConfig(seed=SEED),
        search=load_search_space(),
    )
    fit_seconds = time.perf_counter() - started
    predicted = model.predict_frame(eval_frame["text"].tolist())
    correct = predicted["category"].to_numpy() == truth
    baseline = plain_baseline()
    baseline.fit(train_frame["text"], train_frame["category"])  # type: ignore[attr-defined]
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
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run every available shape; prints a Markdown table and writes the JSON results."""
    parser = argparse.ArgumentParser(prog="python -m bench.generalisation_bench")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rows", type=int, default=4000, help="Rows of each generated shape.")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {}
    for name, build in shapes(args.data, args.rows).items():
        figures[name] = None if build is None else measure(build())
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
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
        "| shape | classes | model accuracy | baseline accuracy | model macro-F1 | "
        "baseline macro-F1 | model ECE | fit s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, f in results["shapes"].items():
        if f is None:
            lines.append(f"| {name} | skipped: data not found | | | | | | |")
            continue
        lines.append(
            f"| {name} | {f['classes']} | {f['accuracy']:.4f} | {f['baseline_accuracy']:.4f} | "
            f"{f['macro_f1']:.4f} | {f['baseline_macro_f1']:.4f} | {f['ece']:.4f} | "
            f"{f['fit_seconds']:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
