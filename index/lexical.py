"""BM25 over chunks with bm25s: our own analyzer (fold, lowercase, stopwords, Snowball stemming)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from index.normalize import fold

_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)


@dataclass(frozen=True)
class BM25Settings:
    """BM25 parameters; recorded in the manifest."""

    k1: float = 0.9
    b: float = 0.4
    method: str = "lucene"
    stemmer: str = "english"
    stopwords: str = "en"


@lru_cache(maxsize=4)
def _stemmer(language: str):
    import Stemmer  # deferred: loads only when text is analysed (start-up time)

    return Stemmer.Stemmer(language)


STOPWORDS_EN = (
    "a",
    "an",
    "and",
    "are",
    "as",
    "at",
    "be",
    "but",
    "by",
    "for",
    "if",
    "in",
    "into",
    "is",
    "it",
    "no",
    "not",
    "of",
    "on",
    "or",
    "such",
    "that",
    "the",
    "their",
    "then",
    "there",
    "these",
    "they",
    "this",
    "to",
    "was",
    "will",
    "with",
)
"""bm25s.stopwords.STOPWORDS_EN (MIT), copied: importing bm25s pulls in scipy, a large share of a cold
`qa ask` that only needs these words. tests/test_store.py checks the copy against bm25s."""


@lru_cache(maxsize=2)
def _stopwords(name: str) -> frozenset[str]:
    return frozenset(STOPWORDS_EN) if name == "en" else frozenset()


def analyze(text: str, settings: BM25Settings = BM25Settings()) -> list[str]:
    """Terms of a text as BM25 sees them."""
    stop = _stopwords(settings.stopwords)
    words = [w for w in _TOKEN.findall(fold(text).lower()) if w not in stop]
    words = [w[:-2] if w.endswith("'s") else w for w in words]
    if not settings.stemmer:
        return words
    return _stemmer(settings.stemmer).stemWords(words)


EMPTY_ROW = "\u2205"
"""The term of a row with no terms, so that every row has a length."""


def column_length(indptr: np.ndarray, tid: int | None) -> int:
    """Postings in a term's column of a CSC index (0 for a term not in the vocabulary)."""
    return int(indptr[tid + 1] - indptr[tid]) if tid is not None and tid + 1 < len(indptr) else 0


class LexicalIndex:
    """A bm25s index whose rows line up with an array of chunk ids."""

    FILES = (
        "params.index.json",
        "vocab.index.json",
        "data.csc.index.npy",
        "indices.csc.index.npy",
        "indptr.csc.index.npy",
        "nonoccurrence_array.index.npy",
    )

    def __init__(self, retriever, settings: BM25Settings) -> None:
        self._retriever = retriever
        self.settings = settings

    @classmethod
    def build(cls, texts: Sequence[str], settings: BM25Settings) -> LexicalIndex:
        import bm25s  # deferred: bm25s imports scipy (start-up time)

        corpus = [analyze(t, settings) or [EMPTY_ROW] for t in texts]
        retriever = bm25s.BM25(k1=settings.k1, b=settings.b, method=settings.method)
        retriever.index(corpus, show_progress=False)
        return cls(retriever, settings)

    def save(self, folder: Path) -> None:
        self._retriever.save(str(folder), show_progress=False, allow_pickle=False)

    @property
    def num_docs(self) -> int:
        return int(self._retriever.scores["num_docs"])

    def document_frequency(self, term: str) -> int:
        """How many rows contain the (analyzed) term."""
        return column_length(self._retriever.scores["indptr"], self._retriever.vocab_dict.get(term))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for the query (zeros when no query term is known)."""
        terms = [t for t in analyze(query, self.settings) if t in self._retriever.vocab_dict]
        n = self._retriever.scores["num_docs"]
        if not terms:
            return np.zeros(n, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(terms), dtype=np.float32)

    def close(self) -> None:
        pass


def robertson_idf(n: int, df: int) -> float:
    """log(1 + (N - df + 0.5) / (df + 0.5)): the IDF of BM25's lucene variant, never negative."""
    return float(np.log(1.0 + (n - df + 0.5) / (df + 0.5)))


def idf_weights(index: LexicalIndex, terms: Sequence[str]) -> dict[str, float]:
    """Robertson IDF of each term from the index's document frequencies (unknown terms: df = 0)."""
    n = index.num_docs
    return {term: robertson_idf(n, index.document_frequency(term)) for term in terms}
