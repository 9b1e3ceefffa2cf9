"""Choosing and calibrating a linear head by cross-validation on the training rows only.

TF-IDF features are fitted once per fold (on that fold's training part); every candidate
head of the search space is fitted on those features, so the search costs one feature
fit per fold plus one cheap linear fit per candidate. The winner's out-of-fold scores,
pooled over all folds, calibrate its temperature: the pooling needs no class in every
fold, so a class with one row neither breaks calibration nor silently disables it.

The space names a reference candidate: the plain configuration a user would try first
(the baseline's own). Another candidate replaces it only when its CV accuracy is higher by
more than ``min_gain_se`` standard errors of the paired per-row difference. Otherwise the
best CV score is often a fold's luck: on small or easy data several candidates lie within
noise of each other, and the one that won CV lost on new rows to the configuration it
displaced as often as not.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import yaml
from joblib import Parallel, delayed
from scipy.optimize import minimize_scalar
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from boltit.core.errors import BadInputError

DEFAULT_SEARCH_SPACE = Path(__file__).with_name("search_space.yaml")
_CLASS_WEIGHTS = (None, "balanced")
# liblinear's default 1000 iterations warns on large C with many sparse features; the
# extra iterations cost nothing when it converges earlier.
MAX_ITER = 5000


@dataclass(frozen=True)
class Candidate:
    """One linear-head configuration."""

    c: float
    class_weight: str | None

    @property
    def name(self) -> str:
        return f"C={self.c:g}, class_weight={self.class_weight or 'none'}"

    def estimator(self, seed: int) -> LinearSVC:
        return LinearSVC(
            C=self.c,
            class_weight=self.class_weight,
            random_state=seed,
            dual="auto",
            max_iter=MAX_ITER,
        )


@dataclass(frozen=True)
class SearchSpace:
    """Candidates to compare, the folds to compare them on, and the reference candidate.

    ``reference`` (one of ``candidates``; None: no reference, the best CV score wins) is
    kept unless another candidate beats it by more than ``min_gain_se`` standard errors.
    """

    candidates: tuple[Candidate, ...]
    folds: int = 3
    reference: Candidate | None = None
    min_gain_se: float = 2.0

    @classmethod
    def single(cls, candidate: Candidate, folds: int = 3) -> SearchSpace:
        """No choice, only calibration."""
        return cls((candidate,), folds)


@dataclass
class CandidateScore:
    """A candidate's pooled out-of-fold scores."""

    candidate: Candidate
    cv_accuracy: float
    cv_macro_f1: float
    rows: int
    # CV accuracy minus the reference's, on the same rows, and that difference's standard
    # error (both 0 for the reference itself and without one).
    gain: float = 0.0
    gain_se: float = 0.0


@dataclass
class Selection:
    """The search's outcome: every candidate's CV score, the winner and its temperature."""

    scores: list[CandidateScore]
    chosen: Candidate
    temperature: float
    folds: int
    calibration_rows: int
    # Why the temperature could not be fitted (empty when it was).
    note: str = ""
    reference: Candidate | None = None

    def table(self) -> dict[str, list[Any]]:
        """Every candidate's CV score, as columns (an MLflow table artifact)."""
        return {
            "candidate": [s.candidate.name for s in self.scores],
            "c": [s.candidate.c for s in self.scores],
            "class_weight": [s.candidate.class_weight or "none" for s in self.scores],
            "cv_accuracy": [s.cv_accuracy for s in self.scores],
            "cv_macro_f1": [s.cv_macro_f1 for s in self.scores],
            "gain_over_reference": [s.gain for s in self.scores],
            "gain_se": [s.gain_se for s in self.scores],
            "reference": [s.candidate == self.reference for s in self.scores],
            "chosen": [s.candidate == self.chosen for s in self.scores],
        }

    def as_params(self) -> dict[str, Any]:
        return {
            "chosen_c": self.chosen.c,
            "chosen_class_weight": self.chosen.class_weight or "none",
            "search_candidates": len(self.scores),
            "search_folds": self.folds,
            "search_reference": self.reference.name if self.reference else "none",
        }

    def as_metrics(self) -> dict[str, float]:
        best = next(s for s in self.scores if s.candidate == self.chosen)
        return {
            "cv_accuracy": best.cv_accuracy,
            "cv_macro_f1": best.cv_macro_f1,
            "category_temperature": self.temperature,
        }


def load_search_space(path: Path | None = None) -> SearchSpace:
    """The search space in ``path`` (``training/search_space.yaml`` by default)."""
    path = Path(path or DEFAULT_SEARCH_SPACE)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BadInputError(f"search space {path} cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise BadInputError(f"search space {path} must be a mapping with 'c' and 'class_weight'")
    weights = data.get("class_weight", [None])
    values = data.get("c", [])
    folds = data.get("folds", 3)
    if not isinstance(values, list) or not values:
        raise BadInputError(f"search space {path}: 'c' must be a non-empty list of numbers")
    if not isinstance(weights, list) or not weights:
        raise BadInputError(f"search space {path}: 'class_weight' must be a non-empty list")
    unknown = [w for w in weights if w not in _CLASS_WEIGHTS]
    if unknown:
        raise BadInputError(
            f"search space {path}: class_weight {unknown} unknown; use null or balanced"
        )
    try:
        cs = [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"search space {path}: 'c' must hold numbers") from exc
    if any(v <= 0 for v in cs):
        raise BadInputError(f"search space {path}: every 'c' must be positive")
    if not isinstance(folds, int) or folds < 2:
        raise BadInputError(f"search space {path}: 'folds' must be an integer >= 2")
    candidates = tuple(Candidate(c, w) for w in weights for c in cs)
    reference = _reference(path, data.get("reference"))
    if reference is not None and reference not in candidates:
        candidates = (reference, *candidates)
    min_gain_se = data.get("min_gain_se", 2.0)
    if isinstance(min_gain_se, bool) or not isinstance(min_gain_se, int | float):
        raise BadInputError(f"search space {path}: 'min_gain_se' must be a number >= 0")
    if min_gain_se < 0:
        raise BadInputError(f"search space {path}: 'min_gain_se' must be a number >= 0")
    return SearchSpace(candidates, folds, reference, float(min_gain_se))


def _reference(path: Path, value: Any) -> Candidate | None:
    """The ``reference: {c: ..., class_weight: ...}`` entry, or None when absent."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"c", "class_weight"} or "c" not in value:
        raise BadInputError(
            f"search space {path}: 'reference' must be a mapping with 'c' and 'class_weight'"
        )
    weight = value.get("class_weight")
    if weight not in _CLASS_WEIGHTS:
        raise BadInputError(
            f"search space {path}: reference class_weight {weight!r} unknown; use null or balanced"
        )
    c = value["c"]
    if isinstance(c, bool) or not isinstance(c, int | float) or c <= 0:
        raise BadInputError(f"search space {path}: the reference's 'c' must be positive")
    return Candidate(float(c), weight)


def assign_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold number per row, each class dealt round-robin over the folds.

    Unlike ``StratifiedKFold`` it accepts classes with fewer rows than folds (they
    appear in fewer folds) without a warning.
    """
    rng = np.random.default_rng(seed)
    assigned = np.empty(len(labels), dtype=np.int64)
    dealt = 0  # carries over between classes so rare classes do not all land in fold 0
    for label in sorted(set(labels.tolist()), key=str):
        rows = np.flatnonzero(labels == label)
        rng.shuffle(rows)
        assigned[rows] = (dealt + np.arange(len(rows))) % folds
        dealt += len(rows)
    return assigned


# A fold's features: (training rows, held-out rows, their two matrices).
Fold = tuple[np.ndarray, np.ndarray, sp.csr_matrix, sp.csr_matrix]
Featurize = Callable[[np.ndarray, np.ndarray], tuple[sp.csr_matrix, sp.csr_matrix]]


def select(
    labels: np.ndarray,
    featurize: Featurize,
    space: SearchSpace,
    *,
    seed: int,
    n_jobs: int = 2,
) -> Selection:
    """Cross-validate every candidate, choose one, calibrate it.

    The choice is the best CV accuracy among the reference and the candidates that beat it
    by more than ``space.min_gain_se`` standard errors (without a reference: the best).

    Args:
        labels: One label per training row (strings).
        featurize: Given a fold's training and held-out row indices, their feature
            matrices fitted on the training rows only.
        space: Candidates, number of folds, reference and its margin.
        seed: Fold assignment and estimator seed.
        n_jobs: Threads fitting candidates (liblinear releases the GIL).
    """
    labels = np.asarray(labels).astype(str)
    classes = np.unique(labels)
    targets = np.searchsorted(classes, labels)
    folds = max(2, min(space.folds, len(labels)))
    fold_of = assign_folds(labels, folds, seed)
    oof = {c: np.zeros((len(labels), len(classes))) for c in space.candidates}
    scored = np.zeros(len(labels), dtype=bool)  # the row's class was seen in its fold
    prepared = []
    for fold in range(folds):
        held = np.flatnonzero(fold_of == fold)
        fit_rows = np.flatnonzero(fold_of != fold)
        if len(held) == 0 or len(set(labels[fit_rows].tolist())) < 2:
            continue
        prepared.append((fit_rows, held, *featurize(fit_rows, held)))
    # Every (fold, candidate) fit in one pool, largest C first: the slowest fits start
    # early, so no core idles at the end of a fold waiting for one long fit.
    tasks = sorted(
        ((f, c) for f in range(len(prepared)) for c in space.candidates),
        key=lambda task: -task[1].c,
    )
    # Filters are process-wide, so they are set here once, not in the worker threads.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        results = Parallel(n_jobs=n_jobs, backend="threading")(
            delayed(_fold_scores)(c, prepared[f][2], labels[prepared[f][0]], prepared[f][3], seed)
            for f, c in tasks
        )
    for (f, candidate), fold_scores in zip(tasks, results, strict=True):
        fit_rows, held = prepared[f][0], prepared[f][1]
        fold_classes = np.unique(labels[fit_rows])
        full = np.empty((len(held), len(classes)))
        # A class the fold never saw scores like the fold's least likely class.
        full[:] = fold_scores.min(axis=1, keepdims=True)
        full[:, np.searchsorted(classes, fold_classes)] = fold_scores
        oof[candidate][held] = full
        scored[held] = np.isin(labels[held], fold_classes)
    if not scored.any():
        raise BadInputError("too few rows per category to cross-validate the classifier")
    ranked = _rank(space, oof, targets, scored)
    chosen = _choose(ranked, space)
    usable = np.flatnonzero(scored)
    temperature = fit_temperature(oof[chosen][usable], targets[usable])
    note = ""
    unscored = int((~scored).sum())
    if unscored:
        note = (
            f"{unscored} rows of categories too rare to appear in every fold were left out "
            "of calibration"
        )
    return Selection(ranked, chosen, temperature, folds, len(usable), note, space.reference)


def _rank(
    space: SearchSpace, oof: dict[Candidate, np.ndarray], targets: np.ndarray, scored: np.ndarray
) -> list[CandidateScore]:
    """Every candidate's CV scores, and its paired gain over the reference."""
    ranked = [_score(c, oof[c], targets, scored) for c in space.candidates]
    if space.reference is None:
        return ranked
    right = {c: (oof[c].argmax(axis=1) == targets) & scored for c in space.candidates}
    base = right[space.reference].astype(np.float64)
    for score in ranked:
        difference = right[score.candidate] - base
        score.gain = float(difference.mean())
        score.gain_se = float(difference.std(ddof=1) / np.sqrt(len(difference)))
    return ranked


def _choose(ranked: list[CandidateScore], space: SearchSpace) -> Candidate:
    """The best CV accuracy among the reference and the candidates clearly better than it."""
    if space.reference is None:
        return max(ranked, key=lambda s: s.cv_accuracy).candidate
    clear = [
        s
        for s in ranked
        if s.candidate == space.reference or s.gain > space.min_gain_se * s.gain_se
    ]
    return max(clear, key=lambda s: s.cv_accuracy).candidate


def _fold_scores(
    candidate: Candidate,
    train_x: sp.csr_matrix,
    labels: np.ndarray,
    held_x: sp.csr_matrix,
    seed: int,
) -> np.ndarray:
    estimator = candidate.estimator(seed).fit(train_x, labels)
    return two_sided(np.asarray(estimator.decision_function(held_x)))


def fit_estimator(
    candidate: Candidate, features: sp.csr_matrix, labels: np.ndarray, seed: int
) -> LinearSVC:
    """The candidate's SVM fitted on ``features``, without warnings reaching the user."""
    estimator = candidate.estimator(seed)
    with warnings.catch_warnings():
        # Rarely liblinear still stops short; the head stays usable and CV measured it as is.
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(features, labels)
    return estimator


def _score(
    candidate: Candidate, scores: np.ndarray, targets: np.ndarray, scored: np.ndarray
) -> CandidateScore:
    from sklearn.metrics import f1_score

    predicted = scores.argmax(axis=1)
    # Rows of classes a fold never saw count as errors: every candidate misses them alike.
    correct = (predicted == targets) & scored
    return CandidateScore(
        candidate,
        cv_accuracy=float(correct.mean()),
        cv_macro_f1=float(f1_score(targets, predicted, average="macro", zero_division=0)),
        rows=len(targets),
    )


def two_sided(scores: np.ndarray) -> np.ndarray:
    """Binary SVM scores as two columns, so every head is softmax over classes."""
    if scores.ndim == 1:
        return np.column_stack([-scores / 2, scores / 2])
    return scores


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


def fit_temperature(scores: np.ndarray, targets: np.ndarray) -> float:
    """The temperature minimising log loss of softmax(scores / T) (one scalar: keeps ranking)."""
    rows = np.arange(len(targets))

    def loss(log_t: float) -> float:
        proba = softmax(scores / np.exp(log_t))
        return float(-np.mean(np.log(np.clip(proba[rows, targets], 1e-12, None))))

    result = minimize_scalar(loss, bounds=(-6.0, 3.0), method="bounded")
    return float(np.exp(result.x))


def matrix_featurize(matrix: sp.csr_matrix) -> Featurize:
    """Folds of an already-built feature matrix (the priority head's cheap path)."""

    def featurize(fit_rows: np.ndarray, held: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        return matrix[fit_rows], matrix[held]

    return featurize
