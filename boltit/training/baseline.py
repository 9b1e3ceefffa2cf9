"""The baselines every run is measured against, on the same training and evaluation rows.

``majority`` predicts the most frequent training category; ``tfidf_svm`` is the plain
``TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)`` + ``LinearSVC()`` a user would
try first. A registered model that does not beat the second is not worth its complexity.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

# The eval-split column holding the plain baseline's predictions; validation reads it back.
from boltit.core.model_contract import BASELINE_COLUMN as BASELINE_COLUMN


@dataclass(frozen=True)
class Baselines:
    """Both baselines' predictions on the evaluation rows, and their accuracies."""

    majority: np.ndarray
    tfidf_svm: np.ndarray
    truth: np.ndarray

    def metrics(self, model_accuracy: float) -> dict[str, float]:
        svm = float((self.tfidf_svm == self.truth).mean())
        return {
            "baseline_majority_accuracy": float((self.majority == self.truth).mean()),
            "baseline_tfidf_svm_accuracy": svm,
            "baseline_margin": model_accuracy - svm,
        }


def plain_baseline() -> object:
    """The untuned TF-IDF + linear SVM pipeline."""
    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LinearSVC())


def fit_baselines(
    train_texts: Sequence[str],
    train_labels: Sequence[str],
    eval_texts: Sequence[str],
    eval_labels: Sequence[str],
) -> Baselines:
    """Fit both baselines on the training rows and predict the evaluation rows."""
    labels = np.asarray([str(v) for v in train_labels], dtype=object)
    values, counts = np.unique(labels, return_counts=True)
    pipeline = plain_baseline()
    with warnings.catch_warnings():
        # The baseline is deliberately stock; its convergence is not the user's concern.
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit([str(t) for t in train_texts], labels)  # type: ignore[attr-defined]
    texts = [str(t) for t in eval_texts]
    return Baselines(
        majority=np.full(len(texts), values[counts.argmax()], dtype=object),
        tfidf_svm=np.asarray(pipeline.predict(texts), dtype=object),  # type: ignore[attr-defined]
        truth=np.asarray([str(v) for v in eval_labels], dtype=object),
    )
