"""Loading a registered version and scoring it on the shared held-out tickets."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import mlflow
import pandas as pd
from cachetools import LRUCache
from mlflow import MlflowClient

from boltit.core.errors import BadInputError
from boltit.core.model_contract import (
    EVAL_SPLIT_ARTIFACT,
    EvalSplitMissingError,
    EvalSplitUnreadableError,
    load_classifier,
    read_eval_split,
)
from boltit.core.tables import read_table
from boltit.registry.gate_evidence import ModelEvaluation, score_predictions


@dataclass
class LoadedVersion:
    """A version's classifier in memory and the size of its model artifacts."""

    version: str
    classifier: Any
    size_bytes: int


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# A registered version's artifacts never change, so a long-running sync --watch (and
# one validation after another) need not download and unpack the same version again.
_CACHE: LRUCache[tuple[str, str, str], LoadedVersion] = LRUCache(maxsize=4)


def load_version_cached(*, name: str, version: str) -> LoadedVersion:
    """``load_version`` through a small in-process cache keyed by registry, model, version."""
    key = (mlflow.get_registry_uri(), name, str(version))
    loaded = _CACHE.get(key)
    if loaded is None:
        loaded = _CACHE[key] = load_version(name=name, version=version)
    return loaded


def load_version(*, name: str, version: str) -> LoadedVersion:
    """Download and load ``models:/name/version``; BadInputError when it cannot be loaded."""
    uri = f"models:/{name}/{version}"
    with tempfile.TemporaryDirectory(prefix="boltit-model-") as folder:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=folder))
            size = _folder_bytes(local)
            classifier = load_classifier(str(local))
        except Exception as exc:  # any failure to load means: this version cannot serve
            message = str(getattr(exc, "message", exc)).strip().splitlines()
            detail = message[0] if message else type(exc).__name__
            raise BadInputError(
                f"version {version} of {name!r} cannot be loaded from {uri}: {detail}"
            ) from exc
    return LoadedVersion(version=str(version), classifier=classifier, size_bytes=size)


def logged_evaluation_split(
    client: MlflowClient, *, run_id: str | None, version: str
) -> pd.DataFrame:
    """The held-out tickets the version's training run logged."""
    if not run_id:
        raise BadInputError(f"version {version} has no training run; pass --data")
    try:
        frame = read_eval_split(client, run_id)
    except EvalSplitMissingError as exc:
        raise BadInputError(
            f"version {version} has no logged {EVAL_SPLIT_ARTIFACT}; pass --data"
        ) from exc
    except EvalSplitUnreadableError as exc:
        raise BadInputError(f"version {version}: {exc}; pass --data") from exc
    return check_evaluation_frame(frame, source=f"{EVAL_SPLIT_ARTIFACT} of version {version}")


def load_evaluation_file(
    path: Path, *, text_column: str = "text", label_column: str = "category"
) -> pd.DataFrame:
    """Held-out tickets from a ticket file, renamed to ``text`` / ``category``.

    The file is read as ``train --data`` and ``check-data`` read it (``boltit.core.tables``).
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"evaluation data {path} does not exist")
    frame = read_table(path, text_columns=(text_column, label_column))
    missing = [c for c in (text_column, label_column) if c not in frame.columns]
    if missing:
        raise BadInputError(
            f"evaluation data {path} lacks column(s) {', '.join(missing)}; "
            f"it has {', '.join(map(str, frame.columns))}"
        )
    frame = frame[[text_column, label_column]].rename(
        columns={text_column: "text", label_column: "category"}
    )
    return check_evaluation_frame(frame, source=str(path))


def check_evaluation_frame(frame: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """Rows with a text and a category; BadInputError when none are usable."""
    missing = [c for c in ("text", "category") if c not in frame.columns]
    if missing:
        raise BadInputError(f"evaluation data from {source} lacks column(s) {', '.join(missing)}")
    usable = frame.dropna(subset=["text", "category"])
    usable = usable[usable["text"].astype(str).str.strip() != ""]
    if usable.empty:
        raise BadInputError(f"evaluation data from {source} has no usable rows")
    return usable[["text", "category"]].astype(str).reset_index(drop=True)


def score_version(
    loaded: LoadedVersion,
    frame: pd.DataFrame,
    *,
    auto_apply_threshold: float,
    latencies_ms: Sequence[float] = (),
) -> ModelEvaluation:
    """Predict every held-out ticket and score the predictions (per row kept for pairing)."""
    predicted = loaded.classifier.predict_frame(frame["text"].tolist())
    return score_predictions(
        version=loaded.version,
        true_categories=frame["category"].tolist(),
        predicted_categories=predicted["category"].astype(str).tolist(),
        confidence=predicted["confidence"].astype(float).tolist(),
        auto_apply_threshold=auto_apply_threshold,
        latencies_ms=latencies_ms,
        size_bytes=loaded.size_bytes,
    )


def single_predictor(classifier: Any) -> Callable[[str], object]:
    """How the service predicts one ticket: ``predict_one`` when the classifier has it."""
    predict_one = getattr(classifier, "predict_one", None)
    if callable(predict_one):
        return cast(Callable[[str], object], predict_one)
    return lambda text: classifier.predict_frame([text])


def time_single_predictions(classifiers: Sequence[Any], texts: Sequence[str]) -> list[list[float]]:
    """Milliseconds of each classifier's single prediction of every text, interleaved.

    For each text every classifier predicts once, in alternating order, so whatever else
    the machine is doing at that moment slows both alike and a ratio between them stays
    honest. One untimed warm-up call each keeps first-call costs out.
    """
    predictors = [single_predictor(c) for c in classifiers]
    timings: list[list[float]] = [[] for _ in predictors]
    if not texts:
        return timings
    for predict in predictors:
        predict(texts[0])
    for i, text in enumerate(texts):
        order = range(len(predictors)) if i % 2 == 0 else reversed(range(len(predictors)))
        for j in order:
            started = time.perf_counter()
            predictors[j](text)
            timings[j].append((time.perf_counter() - started) * 1000.0)
    return timings


def score_versions(
    candidate: LoadedVersion,
    champion: LoadedVersion | None,
    frame: pd.DataFrame,
    *,
    auto_apply_threshold: float,
    latency_samples: int,
) -> tuple[ModelEvaluation, ModelEvaluation | None]:
    """Score candidate and champion on the same tickets; time them together, interleaved."""
    versions = [candidate] if champion is None else [candidate, champion]
    timings = time_single_predictions(
        [v.classifier for v in versions], frame["text"].tolist()[:latency_samples]
    )
    scored = [
        score_version(v, frame, auto_apply_threshold=auto_apply_threshold, latencies_ms=t)
        for v, t in zip(versions, timings, strict=True)
    ]
    return scored[0], (scored[1] if champion is not None else None)
