"""Ticket texts tokenised once, then TF-IDF for any subset of them without tokenising again.

Tokenising (word and char n-grams) is most of the cost of fitting a ``TfidfVectorizer``.
The model-selection folds and the final fit each need TF-IDF fitted on a different subset
of the same texts, so the term counts of every text are computed once and each subset's
vocabulary, idf and rows are derived from them. The result equals a vectorizer fitted on
that subset: same terms (in the same sorted order), same idf, same sublinear tf and L2
norm. Settings this shortcut does not reproduce exactly (``max_features``, ``max_df``, a
fixed vocabulary, no idf, another norm, binary counts) fall back to fitting per subset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import normalize


class _CountedBlock:
    """One vectorizer's term counts for every text."""

    def __init__(self, template: TfidfVectorizer, texts: list[str]) -> None:
        self.template = template
        count_params = CountVectorizer().get_params()
        params = {k: v for k, v in template.get_params().items() if k in count_params}
        params.update(min_df=1, dtype=np.float64)
        counter = CountVectorizer(**params)
        self.counts = counter.fit_transform(texts).tocsr()
        self.terms = counter.get_feature_names_out()
        self.min_df = int(template.min_df)

    def fit(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Columns kept and their idf, as a vectorizer fitted on ``rows`` would have them."""
        part = self.counts[rows]
        df = np.bincount(part.indices, minlength=part.shape[1])
        kept = np.flatnonzero(df >= max(1, self.min_df))
        n = len(rows)
        if self.template.smooth_idf:
            idf = np.log((1.0 + n) / (1.0 + df[kept])) + 1.0
        else:
            idf = np.log(n / df[kept]) + 1.0
        return kept, idf

    def transform(self, rows: np.ndarray, kept: np.ndarray, idf: np.ndarray) -> sp.csr_matrix:
        """TF-IDF of ``rows`` over the kept columns (terms outside them are ignored)."""
        part = self.counts[rows][:, kept].tocsr()
        part.sort_indices()
        if self.template.sublinear_tf:
            np.log(part.data, out=part.data)
            part.data += 1.0
        part.data *= idf[part.indices]
        return normalize(part, norm="l2", copy=False).astype(self.template.dtype)

    def fitted(self, kept: np.ndarray, idf: np.ndarray) -> TfidfVectorizer:
        """The template, fitted: vocabulary and idf of the kept columns."""
        vectorizer = clone(self.template)
        vectorizer.vocabulary_ = {str(t): i for i, t in enumerate(self.terms[kept])}
        vectorizer.idf_ = idf.astype(np.float64)
        return vectorizer


def _exact(vectorizer: Any) -> bool:
    """True when counting once reproduces this vectorizer fitted on a subset."""
    return (
        isinstance(vectorizer, TfidfVectorizer)
        and vectorizer.max_features is None
        and vectorizer.max_df == 1.0
        and vectorizer.vocabulary is None
        and vectorizer.use_idf
        and vectorizer.norm == "l2"
        and not vectorizer.binary
        and isinstance(vectorizer.min_df, int)
    )


class CountedTexts:
    """TF-IDF features of subsets of ``texts``, each as if fitted on that subset only."""

    def __init__(self, texts: Sequence[str], features: FeatureUnion) -> None:
        self.texts = [str(t) for t in texts]
        self.features = features
        parts = [t for _, t in features.transformer_list]
        self._blocks = (
            [_CountedBlock(p, self.texts) for p in parts] if all(map(_exact, parts)) else None
        )

    def featurize(
        self, fit_rows: np.ndarray, held: np.ndarray
    ) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """Features fitted on ``fit_rows``: theirs and ``held``'s (a selection fold)."""
        if self._blocks is None:
            union = clone(self.features)
            train_x = union.fit_transform([self.texts[i] for i in fit_rows]).tocsr()
            return train_x, union.transform([self.texts[i] for i in held]).tocsr()
        train_blocks, held_blocks = [], []
        for block in self._blocks:
            kept, idf = block.fit(fit_rows)
            train_blocks.append(block.transform(fit_rows, kept, idf))
            held_blocks.append(block.transform(held, kept, idf))
        return _stack(train_blocks), _stack(held_blocks)

    def fitted(self) -> tuple[FeatureUnion, sp.csr_matrix]:
        """The feature union fitted on every text, and every text's features."""
        if self._blocks is None:
            union = clone(self.features)
            return union, union.fit_transform(self.texts).tocsr()
        every = np.arange(len(self.texts))
        parts, blocks = [], []
        for (name, _), block in zip(self.features.transformer_list, self._blocks, strict=True):
            kept, idf = block.fit(every)
            parts.append((name, block.fitted(kept, idf)))
            blocks.append(block.transform(every, kept, idf))
        return FeatureUnion(parts), _stack(blocks)


def _stack(blocks: list[sp.csr_matrix]) -> sp.csr_matrix:
    return blocks[0] if len(blocks) == 1 else sp.hstack(blocks, format="csr")
