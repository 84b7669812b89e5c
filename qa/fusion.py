"""Fuse: combining the dense and lexical signals of each candidate into one score, and ranking by it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qa.results import Scores

if TYPE_CHECKING:
    from qa.retrieve import Signals
    from qa.settings import RetrievalSettings

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


@dataclass(frozen=True)
class Candidate:
    """A candidate passage with its raw and fused scores (and, once re-ranked, its late-interaction score)."""

    chunk_id: int
    dense: float
    bm25: float
    fused: float
    best_unit: int = -1
    """The passage's sentence unit closest to the question (the dense score's)."""
    late: float | None = None
    ranking: float | None = None

    @property
    def scores(self) -> Scores:
        return Scores(self.bm25, self.dense, self.fused, self.late, self.ranking)


def fuse_candidates(signals: Signals, mode: str, settings: RetrievalSettings) -> list[Candidate]:
    """The candidates ranked by one fused score, best first (equal scores keep the order they were gathered in).

    dense: the best sentence's cosine; bm25: the passage's BM25, the cosine breaking ties; hybrid with
    rrf: reciprocal rank fusion of those two; hybrid with convex: alpha x min-max(dense) + (1 - alpha) x
    the lexical part, which mixes min-max BM25 of the passage (of its whole document, for a short one)
    with min-max BM25 of its best sentence.
    """
    d, b, ub = signals.dense, signals.bm25, signals.unit_bm25
    if mode == "dense":
        fused = d
    elif mode == "bm25":
        fused = b + 1e-6 * d  # dense breaks ties among equal (often zero) BM25 scores
    elif settings.fusion == "rrf":
        fused = fuse(d, b, "rrf", rrf_k=settings.rrf_k)
    else:
        share = settings.unit_bm25_share
        chunk_part = minmax(b) if signals.short is None else minmax(signals.short)
        lexical = (1.0 - share) * chunk_part + share * minmax(ub)
        if signals.short is not None:  # a short document's passages take its whole score alone
            lexical = np.where(signals.short_whole, chunk_part, lexical)
        fused = settings.alpha * minmax(d) + (1.0 - settings.alpha) * lexical
    order = np.argsort(-fused, kind="stable")
    ids, best = signals.ids, signals.best_units
    return [Candidate(ids[i], float(d[i]), float(b[i]), float(fused[i]), best[i]) for i in order]
