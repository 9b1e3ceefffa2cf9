"""The plain baseline's per-row predictions a training run logged, for ``beats_baseline``.

Training fits ``TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)`` + ``LinearSVC()``
on the same rows as the model and logs its prediction of every evaluation row in the
run's ``evaluation/eval_split.parquet`` (column ``baseline_category``). Reading them back
is cheaper and more faithful than refitting the baseline at validate time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mlflow import MlflowClient

from boltit.core.model_contract import BASELINE_COLUMN, ModelContractError, read_eval_split


def logged_baseline(
    client: MlflowClient, *, run_id: str | None, texts: Sequence[str]
) -> np.ndarray | None:
    """The baseline's prediction for each of ``texts``, or None when any is unknown.

    Rows are matched by text: the baseline is deterministic, so one text has one
    prediction. Runs from before baselines were logged, and evaluation data given with
    ``--data`` that the run never saw, give None (the gate then passes with a note).
    """
    if not run_id:
        return None
    try:
        frame = read_eval_split(client, run_id)
    except ModelContractError:
        return None
    if BASELINE_COLUMN not in frame.columns or "text" not in frame.columns:
        return None
    known = dict(zip(frame["text"].astype(str), frame[BASELINE_COLUMN].astype(str), strict=True))
    found = [known.get(str(t)) for t in texts]
    if any(f is None for f in found):
        return None
    return np.asarray(found, dtype=object)
