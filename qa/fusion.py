"""Combining dense and lexical rankings into one score per candidate."""

from __future__ import annotations

import numpy as np

FUSION_METHODS = ("convex", "rrf")


def minmax(scores: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] over the candidates; a constant vector maps to zeros."""
    if scores.size == 0:
        return scores.astype(np.float32)
    lo, hi = float(scores.min()), float(scores.max())
    if hi - lo < 1e-12:
        return np.zeros_like(scores, dtype=np.float32)
    return ((scores - lo) / (hi - lo)).astype(np.float32)


def convex(dense: np.ndarray, bm25: np.ndarray, alpha: float) -> np.ndarray:
    """alpha * minmax(dense) + (1 - alpha) * minmax(bm25), over the same candidates."""
    return alpha * minmax(dense) + (1.0 - alpha) * minmax(bm25)


def rrf(dense: np.ndarray, bm25: np.ndarray, k: int = 60) -> np.ndarray:
    """Reciprocal rank fusion: sum of 1 / (k + rank) over both rankings."""
    out = np.zeros(dense.shape[0], dtype=np.float64)
    for scores in (dense, bm25):
        order = np.argsort(-scores, kind="stable")
        ranks = np.empty_like(order)
        ranks[order] = np.arange(1, len(order) + 1)
        out += 1.0 / (k + ranks)
    return out.astype(np.float32)


def fuse(
    dense: np.ndarray, bm25: np.ndarray, method: str = "convex", alpha: float = 0.5, rrf_k: int = 60
) -> np.ndarray:
    if method == "convex":
        return convex(dense, bm25, alpha)
    if method == "rrf":
        return rrf(dense, bm25, rrf_k)
    raise ValueError(f"unknown fusion method {method!r}; use one of {FUSION_METHODS}")
