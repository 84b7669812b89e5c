"""BM25 scores from term counts, as bm25s computes them, for both stores (the embedded store's delta,
index/lexical_delta.py, and the PostgreSQL store's segments, index/stores/pg_lexical.py)."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

import numpy as np

METHODS = ("lucene", "robertson", "atire")
"""Methods whose score of a row without the term is zero: the ones scored column by column
(index/lexical_column.py)."""


def idf(method: str, df: int, n: int) -> float:
    """bm25s's IDF (bm25s/scoring.py, _score_idf_*), for the column-scored methods."""
    if method == "lucene":
        return math.log(1 + (n - df + 0.5) / (df + 0.5))
    if method == "atire":
        return math.log(n / df)
    inner = (n - df + 0.5) / (df + 0.5)  # robertson, negative IDFs clipped as bm25s does by default
    return math.log(inner if inner >= 1 else 1)


def length_norm(l_d: np.ndarray, l_avg, k1: float, b: float) -> np.ndarray:
    """k1 * ((1 - b) + b * l_d / l_avg) per row (l_d int64, l_avg float64): the part of bm25s's
    term-frequency component that depends on the row alone, computed once per row."""
    return k1 * ((1 - b) + b * l_d / l_avg)


def term_scores(method: str, tf: np.ndarray, norm: np.ndarray, df: int, n: int, k1: float) -> np.ndarray:
    """float32 scores of one term's postings (norm: length_norm of each posting's row): what
    bm25_arrays stores for them, by the same operations on the same dtypes. bm25s/scoring.py's
    _score_tfc_* without importing bm25s, which imports scipy (slow) on the query path; the
    denominators group as there (1 - b + x is (1 - b) + x)."""
    weight = float(np.float32(idf(method, df, n)))  # bm25s keeps IDFs as float32
    if method == "atire":
        tf_array = tf.astype(np.float32)
        tfc = (tf_array * (k1 + 1)) / (tf_array + norm)  # the numerator is a float32 product there
    else:  # robertson; lucene uses robertson's. Counts are small integers: as float64 they are the
        # float32 values bm25s upcasts, so the same operations run in place, with fewer passes.
        tf_array = tf.astype(np.float64)
        tfc = norm + tf_array
        np.divide(tf_array, tfc, out=tfc)
    tfc *= weight
    return tfc.astype(np.float32)


class ScoredColumns:
    """Scored columns of recent terms, term -> (rows, scores), least recently used dropped past `limit`
    postings (a question's words recur). Thread-safe: the chat's workers may search at the same time."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._columns: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    @property
    def held(self) -> int:
        """Postings held now."""
        return self._held

    def __len__(self) -> int:
        return len(self._columns)

    def get(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        with self._lock:
            column = self._columns.get(term)
            if column is not None:
                self._columns.move_to_end(term)
            return column

    def put(self, term: str, column: tuple[np.ndarray, np.ndarray]) -> None:
        with self._lock:
            if term in self._columns:
                return
            self._columns[term] = column
            self._held += column[0].shape[0]
            while self._held > self._limit and len(self._columns) > 1:
                _, (rows, _) = self._columns.popitem(last=False)
                self._held -= rows.shape[0]
