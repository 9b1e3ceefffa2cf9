"""Which given rows a training run fits on and which rows it is measured on.

The model's evaluation set decides: a first training fixes it from a stratified share of
the rows it is given, every later run measures on it and fits on every given row whose text
is not in it. ``retrain`` first sends a share of the tickets that arrived after the serving
version's training cut-off to the set (``split_arrivals``), so the set tracks production.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from boltit.core.evaluation_sets import (
    DIGEST,
    EvaluationSet,
    build_set,
    extend_set,
    row_digests,
)
from boltit.training.data import CATEGORY, CREATED_AT, TEXT


@dataclass(frozen=True)
class Holdout:
    """A run's training rows and evaluation set.

    Attributes:
        train_frame: The rows to fit on.
        evaluation: The evaluation set this run measures on (and records, when new or grown).
        excluded: Given rows left out of training because the evaluation set holds their text.
        added: Rows this run added to the evaluation set (all of them when it fixed the set).
        base: The set before this run; None when this run fixes the model's first one.
    """

    train_frame: pd.DataFrame
    evaluation: pd.DataFrame
    excluded: int
    added: int
    base: EvaluationSet | None

    @property
    def changed(self) -> bool:
        """Whether the run records a new revision of the set."""
        return self.base is None or self.added > 0


def split(frame: pd.DataFrame, *, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified train/evaluation split; unstratified when a category is too rare for it."""
    counts = frame[CATEGORY].value_counts()
    eval_rows = int(np.ceil(test_size * len(frame)))
    stratify = (
        frame[CATEGORY]
        if counts.min() >= 2 and eval_rows >= len(counts) and len(frame) - eval_rows >= len(counts)
        else None
    )
    train_frame, eval_frame = train_test_split(
        frame, test_size=test_size, random_state=seed, stratify=stratify
    )
    return train_frame.reset_index(drop=True), eval_frame.reset_index(drop=True)


def plan_holdout(
    frame: pd.DataFrame,
    *,
    existing: EvaluationSet | None,
    additions: pd.DataFrame | None,
    test_size: float,
    seed: int,
    now: datetime,
) -> Holdout:
    """Fix or extend the evaluation set, then drop its texts from the training rows."""
    if existing is None:
        pool, held_out = split(frame, test_size=test_size, seed=seed)
        if additions is not None and not additions.empty:
            held_out = pd.concat([held_out, additions], ignore_index=True)
        evaluation = build_set(held_out, added_at=now)
        added = len(evaluation)
    else:
        pool = frame
        evaluation, added = existing.frame, 0
        if additions is not None and not additions.empty:
            evaluation, added = extend_set(existing.frame, additions, added_at=now)
    held = set(evaluation[DIGEST])
    keep = np.array([d not in held for d in row_digests(pool[TEXT])], dtype=bool)
    return Holdout(
        train_frame=pool[keep].reset_index(drop=True),
        evaluation=evaluation,
        excluded=int((~keep).sum()),
        added=added,
        base=existing,
    )


@dataclass(frozen=True)
class Arrivals:
    """Store tickets split by the serving version's training cut-off.

    Attributes:
        evaluation: Arrivals after the cut-off that join the evaluation set.
        training: Every other store ticket (earlier ones, and the rest of the arrivals).
        after_cutoff: How many arrived after the cut-off.
        already_trained: Arrivals whose text the serving version trained on; they train,
            since an evaluation row the champion saw would make ``validate`` refuse.
    """

    evaluation: pd.DataFrame
    training: pd.DataFrame
    after_cutoff: int
    already_trained: int = 0


def split_arrivals(
    frame: pd.DataFrame,
    *,
    cutoff: datetime | None,
    test_size: float,
    seed: int,
    trained_on: set[str] | None = None,
) -> Arrivals:
    """A ``test_size`` share of the tickets created after ``cutoff`` (stratified where the
    counts allow) goes to the evaluation set; the rest trains. No cut-off: all train.

    Arrivals whose row digest is in ``trained_on`` (the serving version's training rows)
    are not eligible for the evaluation set.
    """
    if cutoff is None or CREATED_AT not in frame.columns:
        return Arrivals(evaluation=frame.iloc[0:0], training=frame, after_cutoff=0)
    created = pd.to_datetime(frame[CREATED_AT], utc=True, errors="coerce")
    late = (created > pd.Timestamp(cutoff)).fillna(False).to_numpy(dtype=bool)
    seen = np.array([d in (trained_on or ()) for d in row_digests(frame[TEXT])], dtype=bool)
    arrivals, earlier = frame[late & ~seen], frame[~late | seen]
    after_cutoff, already = int(late.sum()), int((late & seen).sum())
    # Rounded down, so a handful of tickets goes to training rather than all to evaluation.
    evaluation_rows = int(np.floor(test_size * len(arrivals)))
    if evaluation_rows == 0 or evaluation_rows == len(arrivals):
        return Arrivals(frame.iloc[0:0], frame, after_cutoff, already)
    counts = arrivals[CATEGORY].value_counts()
    stratify = (
        arrivals[CATEGORY]
        if counts.min() >= 2
        and evaluation_rows >= len(counts)
        and len(arrivals) - evaluation_rows >= len(counts)
        else None
    )
    to_train, to_evaluate = train_test_split(
        arrivals, test_size=evaluation_rows, random_state=seed, stratify=stratify
    )
    return Arrivals(
        evaluation=to_evaluate.reset_index(drop=True),
        training=pd.concat([earlier, to_train], ignore_index=True),
        after_cutoff=after_cutoff,
        already_trained=already,
    )
