"""The ticket classifier: TF-IDF features, linear heads, temperature-calibrated probabilities.

One feature extractor feeds a category head and, when the data has priority, a priority
head. Each head is a linear SVM whose decision scores are turned into probabilities by
temperature scaling fitted on out-of-fold scores, so the confidence the auto-apply
threshold reads is calibrated. Every fitted part is a stock scikit-learn object saved
with skops (no pickle); the temperatures and class names are plain JSON.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC
from skops import io as skops_io

from boltit.training.counted import CountedTexts
from boltit.training.selection import (
    Candidate,
    SearchSpace,
    Selection,
    fit_estimator,
    matrix_featurize,
    select,
    softmax,
)

FORMAT_VERSION = 1
FEATURES_FILE = "features.skops"
CATEGORY_FILE = "category_head.skops"
PRIORITY_FILE = "priority_head.skops"
META_FILE = "classifier.json"
PREDICTION_COLUMNS = ("category", "confidence", "priority")
VOCABULARY_FILE = "vocabulary.json"


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of the classifier; logged as run params."""

    word_ngram_max: int = 2
    # Char n-grams bought +0.001 accuracy on the real data for 4x the fit time and
    # 3x the single-ticket latency, so they are off by default (see bench/).
    char_features: bool = False
    char_ngram_min: int = 2
    char_ngram_max: int = 5
    min_df: int = 1
    max_features: int | None = None
    c: float = 0.3
    priority_c: float = 0.3
    class_weight: str | None = "balanced"
    calibration_folds: int = 3
    n_jobs: int = 2
    seed: int = 42

    def as_params(self) -> dict[str, Any]:
        """Flat params for MLflow."""
        return {f"model_{k}": v for k, v in asdict(self).items()}


def build_features(config: ModelConfig) -> FeatureUnion:
    """Word 1..n-gram TF-IDF, unioned with char_wb n-gram TF-IDF when enabled."""
    parts: list[tuple[str, Any]] = [
        (
            "words",
            TfidfVectorizer(
                ngram_range=(1, config.word_ngram_max),
                sublinear_tf=True,
                min_df=config.min_df,
                max_features=config.max_features,
                dtype=np.float32,
            ),
        )
    ]
    if config.char_features:
        parts.append(
            (
                "chars",
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=(config.char_ngram_min, config.char_ngram_max),
                    sublinear_tf=True,
                    min_df=config.min_df,
                    max_features=config.max_features,
                    dtype=np.float32,
                ),
            )
        )
    return FeatureUnion(parts)


class LinearHead:
    """A fitted linear SVM plus the temperature that calibrates its scores."""

    def __init__(self, estimator: LinearSVC, temperature: float) -> None:
        self.estimator = estimator
        self.temperature = float(temperature)
        self.classes: list[str] = [str(c) for c in estimator.classes_]
        coef = np.asarray(estimator.coef_, dtype=np.float64)
        intercept = np.asarray(estimator.intercept_, dtype=np.float64)
        if len(self.classes) == 2:
            # Binary SVMs keep one score for the positive class; make it two-sided.
            coef = np.vstack([-coef[0] / 2, coef[0] / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
        # CSR times a dense (features x classes) matrix is the fastest path for one ticket.
        self._weights = np.ascontiguousarray(coef.T)
        self._intercept = intercept

    @classmethod
    def fit(
        cls,
        features: sp.csr_matrix,
        labels: np.ndarray,
        *,
        c: float,
        config: ModelConfig,
        selection: Selection | None = None,
    ) -> LinearHead:
        """Fit the SVM on all rows; its temperature comes from pooled out-of-fold scores.

        ``selection`` (a search already run on per-fold features) supplies the candidate and
        temperature; without it the head cross-validates ``c`` on ``features`` itself.
        """
        if selection is None:
            candidate = Candidate(c, config.class_weight)
            selection = select(
                labels,
                matrix_featurize(features),
                SearchSpace.single(candidate, config.calibration_folds),
                seed=config.seed,
                n_jobs=config.n_jobs,
            )
        estimator = fit_estimator(selection.chosen, features, labels, config.seed)
        return cls(estimator, selection.temperature)

    def scores(self, features: sp.csr_matrix) -> np.ndarray:
        """Raw decision scores, one column per class."""
        return np.asarray(features @ self._weights) + self._intercept

    def probabilities(self, features: sp.csr_matrix) -> np.ndarray:
        """Calibrated class probabilities."""
        return softmax(self.scores(features) / self.temperature)


class TicketClassifier:
    """Category (and optional priority) classifier for help-desk tickets.

    ``predict_frame`` is the one prediction path: the MLflow pyfunc wrapper and the
    serving layer (which unwraps this object) both call it.
    """

    def __init__(
        self,
        features: FeatureUnion,
        category_head: LinearHead,
        priority_head: LinearHead | None = None,
    ) -> None:
        self.features = features
        self.category_head = category_head
        self.priority_head = priority_head
        self._vectorizers = [t for _, t in features.transformer_list]
        self._blocks = _FastBlocks(self._vectorizers)
        # How the category head was chosen and calibrated; None for a loaded model.
        self.selection: Selection | None = None

    @property
    def categories(self) -> list[str]:
        """Category labels, in probability-column order."""
        return self.category_head.classes

    @property
    def priorities(self) -> list[str] | None:
        """Priority labels, or None without a priority head."""
        return self.priority_head.classes if self.priority_head else None

    @classmethod
    def fit(
        cls,
        texts: Sequence[str] | pd.Series,
        categories: Sequence[str] | pd.Series,
        priorities: Sequence[str | None] | pd.Series | None = None,
        *,
        config: ModelConfig | None = None,
        search: SearchSpace | None = None,
    ) -> TicketClassifier:
        """Fit features and heads; the priority head only when ``priorities`` is given.

        With ``search`` the category head's class weighting and C are chosen by
        cross-validation on these rows (features refitted per fold); otherwise ``config``'s
        are used. Either way the chosen head is then fitted on every row.
        """
        config = config or ModelConfig()
        labels = np.asarray([str(c) for c in categories], dtype=object)
        items = [str(t) for t in texts]
        space = search or SearchSpace.single(
            Candidate(config.c, config.class_weight), config.calibration_folds
        )
        # Tokenised once: the folds and the final fit derive their TF-IDF from the counts.
        counted = CountedTexts(items, build_features(config))
        selection = select(labels, counted.featurize, space, seed=config.seed, n_jobs=config.n_jobs)
        features, matrix = counted.fitted()
        category_head = LinearHead.fit(
            matrix, labels, c=selection.chosen.c, config=config, selection=selection
        )
        priority_head = None
        if priorities is not None:
            # Only rows that carry a priority teach the priority head.
            priority_labels = np.asarray(priorities, dtype=object)
            known = pd.notna(priority_labels)
            if len(set(priority_labels[known])) >= 2:
                priority_head = LinearHead.fit(
                    matrix[np.flatnonzero(known)],
                    priority_labels[known].astype(str),
                    c=config.priority_c,
                    config=config,
                )
        fitted = cls(features, category_head, priority_head)
        fitted.selection = selection
        return fitted

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """TF-IDF features of ``texts``."""
        items = list(texts)
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            blocks = [v.transform(items) for v in self._vectorizers]
        return blocks[0].tocsr() if len(blocks) == 1 else sp.hstack(blocks, format="csr")

    def predict_one(self, text: str) -> dict[str, Any]:
        """One ticket without pandas or scipy: ``category``, ``confidence``, ``priority``.

        The serving hot path; gives the same answer as ``predict_frame``.
        """
        indices, values = self._blocks.row(text)
        head = self.category_head
        logits = (values @ head._weights[indices] + head._intercept) / head.temperature
        best = int(logits.argmax())
        # The softmax of the best class alone: exp(0) over the shifted sum.
        confidence = 1.0 / float(np.exp(logits - logits[best]).sum())
        priority = None
        if self.priority_head is not None:
            scores = values @ self.priority_head._weights[indices] + self.priority_head._intercept
            priority = self.priority_head.classes[int(scores.argmax())]
        return {"category": self.categories[best], "confidence": confidence, "priority": priority}

    def predict_frame(self, texts: Sequence[str], *, probabilities: bool = False) -> pd.DataFrame:
        """Predict ``category``, ``confidence``, ``priority`` (None without a priority head).

        Args:
            texts: Ticket texts.
            probabilities: Also return one ``proba_<category>`` column per category.
        """
        items = [str(t) for t in texts]
        if not probabilities and len(items) <= _FAST_PATH_MAX_ROWS:
            # The serving hot path: plain dicts, then one small frame.
            answers = [self.predict_one(t) for t in items]
            return pd.DataFrame({c: [a[c] for a in answers] for c in PREDICTION_COLUMNS})
        if len(items) <= _FAST_PATH_MAX_ROWS:
            # Per-row dict scoring beats building sparse matrices for a handful of tickets.
            rows = [self._blocks.row(t) for t in items]
            category_scores = (
                np.array([v @ self.category_head._weights[i] for i, v in rows]).reshape(
                    len(items), -1
                )
                + self.category_head._intercept
            )
            priority_scores = (
                np.array([v @ self.priority_head._weights[i] for i, v in rows]).reshape(
                    len(items), -1
                )
                + self.priority_head._intercept
                if self.priority_head is not None
                else None
            )
        else:
            matrix = self.transform(items)
            category_scores = self.category_head.scores(matrix)
            priority_scores = (
                self.priority_head.scores(matrix) if self.priority_head is not None else None
            )
        proba = softmax(category_scores / self.category_head.temperature)
        best = proba.argmax(axis=1)
        columns: dict[str, Any] = {
            "category": np.asarray(self.categories, dtype=object)[best],
            "confidence": proba[np.arange(len(best)), best],
            "priority": np.asarray(self.priority_head.classes, dtype=object)[
                priority_scores.argmax(axis=1)
            ]
            if self.priority_head is not None and priority_scores is not None
            else np.full(len(items), None, dtype=object),
        }
        if probabilities:
            for i, name in enumerate(self.categories):
                columns[f"proba_{name}"] = proba[:, i]
        return pd.DataFrame(columns)

    def save(self, directory: Path) -> dict[str, Path]:
        """Write the classifier into ``directory``; returns its files by role.

        The fitted vectorizers go to skops without their vocabularies, which are written as
        plain JSON: skops stores a dict entry by entry, which made a 500k-term vocabulary a
        200 MB file taking 30 s to write and read back.
        """
        directory.mkdir(parents=True, exist_ok=True)
        files = {
            "features": directory / FEATURES_FILE,
            "vocabulary": directory / VOCABULARY_FILE,
            "category": directory / CATEGORY_FILE,
            "meta": directory / META_FILE,
        }
        stripped = copy.copy(self.features)
        stripped.transformer_list = []
        vocabularies: dict[str, list[str]] = {}
        for name, vectorizer in self.features.transformer_list:
            bare = copy.copy(vectorizer)
            del bare.vocabulary_
            stripped.transformer_list.append((name, bare))
            terms = [""] * len(vectorizer.vocabulary_)
            for term, index in vectorizer.vocabulary_.items():
                terms[index] = term
            vocabularies[name] = terms
        skops_io.dump(stripped, files["features"])
        files["vocabulary"].write_text(json.dumps(vocabularies), encoding="utf-8")
        skops_io.dump(self.category_head.estimator, files["category"])
        if self.priority_head is not None:
            files["priority"] = directory / PRIORITY_FILE
            skops_io.dump(self.priority_head.estimator, files["priority"])
        meta: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "categories": self.categories,
            "category_temperature": self.category_head.temperature,
            "priorities": self.priorities,
            "priority_temperature": self.priority_head.temperature if self.priority_head else None,
        }
        files["meta"].write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return files

    @classmethod
    def load(cls, directory: Path) -> TicketClassifier:
        """Read a classifier written by ``save``; only stock scikit-learn types are trusted."""
        directory = Path(directory)
        info = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        if info.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported classifier format {info.get('format')!r}")
        union = _load_trusted(directory / FEATURES_FILE)
        vocabularies = json.loads((directory / VOCABULARY_FILE).read_text(encoding="utf-8"))
        for name, vectorizer in union.transformer_list:
            terms = vocabularies[name]
            if len(terms) != len(vectorizer.idf_):
                raise ValueError(f"vocabulary of {name!r} does not match its idf weights")
            vectorizer.vocabulary_ = {term: index for index, term in enumerate(terms)}
        category_head = LinearHead(
            _load_trusted(directory / CATEGORY_FILE), info["category_temperature"]
        )
        priority_head = None
        if (directory / PRIORITY_FILE).exists():
            priority_head = LinearHead(
                _load_trusted(directory / PRIORITY_FILE), info["priority_temperature"]
            )
        return cls(union, category_head, priority_head)


_FAST_PATH_MAX_ROWS = 16


class _FastBlocks:
    """TF-IDF of one text with plain dicts and numpy, equal to the vectorizers' output."""

    def __init__(self, vectorizers: Sequence[TfidfVectorizer]) -> None:
        self._parts = []
        offset = 0
        for vectorizer in vectorizers:
            idf = np.asarray(vectorizer.idf_, dtype=np.float64)
            self._parts.append(
                (
                    vectorizer.build_analyzer(),
                    vectorizer.vocabulary_,
                    idf,
                    offset,
                    bool(vectorizer.sublinear_tf),
                )
            )
            offset += len(idf)

    def row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Column indices and TF-IDF values of ``text`` (each block L2-normalised)."""
        all_indices: list[np.ndarray] = []
        all_values: list[np.ndarray] = []
        for analyzer, vocabulary, idf, offset, sublinear in self._parts:
            # Counter counts in C; np.unique would sort, which costs more for a few dozen terms.
            found = Counter(map(vocabulary.get, analyzer(text)))
            found.pop(None, None)
            if not found:
                continue
            size = len(found)
            indices = np.fromiter(found.keys(), dtype=np.int64, count=size)
            counts = np.fromiter(found.values(), dtype=np.float64, count=size)
            tf = np.log(counts) + 1.0 if sublinear else counts
            values = tf * idf[indices]
            values /= np.sqrt(values @ values)
            all_indices.append(indices + offset)
            all_values.append(values)
        if not all_indices:
            return np.empty(0, dtype=np.int64), np.empty(0)
        return np.concatenate(all_indices), np.concatenate(all_values)


# Beyond skops' default trust (scikit-learn estimators and numpy), the vectorizers keep
# their dtype and a builtin as attributes; nothing else is accepted.
TRUSTED_TYPES = ["numpy.float32", "builtins.str"]


def _load_trusted(path: Path) -> Any:
    untrusted = skops_io.get_untrusted_types(file=path)
    unexpected = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if unexpected:
        raise ValueError(f"{Path(path).name} contains untrusted types: {unexpected}")
    return skops_io.load(path, trusted=untrusted)
