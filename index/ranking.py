"""Top rows of a score array, best first, without sorting every row."""

from __future__ import annotations

import numpy as np


def top_rows(scores: np.ndarray, n: int, stride: int = 16) -> np.ndarray:
    """Rows of the n highest scores, best first (ties by row), without sorting every row.

    np.partition over 1M BM25 scores, most of them equal (zero), took 20-35 ms, so for a large
    array a threshold t is read off a strided sample first. If n rows score above t, only those
    can be in the top n and only they are partitioned; otherwise the n-th score is t itself and
    the top n are the rows above t plus the lowest rows scoring exactly t.
    """
    m = scores.shape[0]
    if n <= 0 or m == 0:
        return np.zeros(0, dtype=np.int64)
    if m <= n:
        part = np.arange(m)
    else:
        part = None
        if m >= 8 * n * stride:
            sample = scores[::stride]
            k = 2 * n // stride + 1
            t = np.partition(sample, sample.shape[0] - k)[sample.shape[0] - k]
            above = np.flatnonzero(scores > t)
            if above.shape[0] >= n:
                part = above[_top_unordered(scores[above], n)]
            else:
                ties = np.flatnonzero(scores == t)
                if above.shape[0] + ties.shape[0] >= n:
                    part = np.concatenate([above, ties[: n - above.shape[0]]])
        if part is None:
            part = _top_unordered(scores, n)
    return part[np.lexsort((part, -scores[part]))]


def _top_unordered(scores: np.ndarray, n: int) -> np.ndarray:
    """Positions of the n highest scores (ties: lowest positions), in no particular order."""
    m = scores.shape[0]
    if m <= n:
        return np.arange(m)
    kth = np.partition(scores, m - n)[m - n]
    above = np.flatnonzero(scores > kth)
    return np.concatenate([above, np.flatnonzero(scores == kth)[: n - above.shape[0]]])


def top_positive(scores: np.ndarray, n: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Rows of the n highest positive scores, best first (ties by row); allowed: only these rows count."""
    if allowed is not None:
        mask = np.zeros(scores.shape[0], dtype=bool)
        mask[allowed] = True
        scores = np.where(mask, scores, 0.0)
    rows = top_rows(scores, n)
    return rows[scores[rows] > 0]
