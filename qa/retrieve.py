"""Retrieve: gather candidate passages from every signal (vectors, BM25 of passages and of sentences, BM25 of
short documents) through the store, with each candidate's raw scores for fusion (qa/fusion.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index.stores.base import Snapshot, Within
from qa.doc_lexical import ShortDocuments
from qa.settings import RetrievalSettings


@dataclass(frozen=True)
class Signals:
    """The candidates of one question with their raw scores, in the order they were gathered."""

    ids: list[int]
    """Passage ids."""
    best_units: list[int]
    """Each passage's sentence unit closest to the question (-1: it has none)."""
    dense: np.ndarray
    """Cosine of the question with the best unit (-1 without one)."""
    bm25: np.ndarray
    """BM25 of the passage (never negative)."""
    unit_bm25: np.ndarray
    """The best BM25 of the passage's units."""
    short: np.ndarray | None = None
    """BM25 of the passage's whole document where it is short, else of the passage (None: not used)."""
    short_whole: np.ndarray | None = None
    """Whether each passage's `short` score is its whole document's."""


class Retriever:
    """Candidates of one index snapshot; keeps the short-document BM25 it builds on first use."""

    def __init__(self, index: Snapshot) -> None:
        self.index = index
        self._short: ShortDocuments | None = None
        self._short_for: int | None = None

    def short_documents(self, limit: int) -> ShortDocuments | None:
        """The short-document BM25 (qa/doc_lexical.py), or None when no document is short."""
        if limit <= 0:
            return None
        if self._short_for != limit:
            ids = self.index.catalog.short_documents(limit)
            self._short = ShortDocuments(self.index.catalog, ids, self.index.passage_lexical.settings) if ids else None
            self._short_for = limit
        return self._short

    def retrieve(
        self, question: str, qvec: np.ndarray, mode: str, settings: RetrievalSettings, within: Within = None
    ) -> Signals:
        """Candidate passages of every signal, with raw scores.

        A passage's dense score is the cosine of its best sentence; its lexical scores are BM25 of the
        whole passage and of its best sentence (so a passage that answers in one sentence wins).
        """
        catalog, n = self.index.catalog, settings.candidates
        passage_bm25 = self.index.passage_lexical.query(question)
        unit_bm25 = self.index.unit_lexical.query(question)
        short = (
            self.short_documents(settings.short_document_chars)
            if mode == "hybrid" and settings.fusion == "convex"
            else None
        )
        short_bm25 = short.query(question) if short is not None else None
        pool: dict[int, None] = {}
        if short_bm25 is not None:
            pool.update(dict.fromkeys(short_bm25.top(3 * n, within).ids.tolist()))  # a short document has ~3 passages
        for passages in catalog.passages_of(self.index.vectors.search(qvec, n, within).ids.tolist()):
            pool.update(dict.fromkeys(passages))
        for passages in catalog.passages_of(unit_bm25.top(n, within).ids.tolist()):
            pool.update(dict.fromkeys(passages))
        pool.update(dict.fromkeys(passage_bm25.top(n, within).ids.tolist()))
        ids = list(pool)
        if not ids:
            empty = np.zeros(0, dtype=np.float32)
            return Signals([], [], empty, empty, empty)
        members = catalog.units_of(ids)
        flat = [u for m in members for u in m]
        sims = dict(zip(flat, self.index.vectors.score(qvec, flat)))
        best_units = [max(m, key=lambda u: float(sims[u])) if m else -1 for m in members]
        unit_scores = dict(zip(flat, unit_bm25.score(flat)))
        return Signals(
            ids=ids,
            best_units=best_units,
            dense=np.asarray([float(sims[u]) if u >= 0 else -1.0 for u in best_units], dtype=np.float32),
            bm25=np.asarray([max(0.0, float(s)) for s in passage_bm25.score(ids)], dtype=np.float32),
            unit_bm25=np.asarray(
                [max((float(unit_scores[u]) for u in m), default=0.0) for m in members], dtype=np.float32
            ),
            short=None if short_bm25 is None else np.asarray(short_bm25.score(ids), dtype=np.float32),
            short_whole=None if short_bm25 is None else short.whole_of(ids),
        )
