"""BM25 over chunks with bm25s: our own analyzer (fold, lowercase, stopwords, Snowball stemming)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

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
    import Stemmer

    return Stemmer.Stemmer(language)


@lru_cache(maxsize=2)
def _stopwords(name: str) -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN) if name == "en" else frozenset()


def analyze(text: str, settings: BM25Settings = BM25Settings()) -> list[str]:
    """Terms of a text as BM25 sees them."""
    stop = _stopwords(settings.stopwords)
    words = [w for w in _TOKEN.findall(fold(text).lower()) if w not in stop]
    words = [w[:-2] if w.endswith("'s") else w for w in words]
    if not settings.stemmer:
        return words
    return _stemmer(settings.stemmer).stemWords(words)


class LexicalIndex:
    """A bm25s index whose rows line up with an array of chunk ids."""

    FILES = ("params.index.json", "vocab.index.json", "data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy", "nonoccurrence_array.index.npy")

    def __init__(self, retriever, settings: BM25Settings) -> None:
        self._retriever = retriever
        self.settings = settings

    @classmethod
    def build(cls, texts: Sequence[str], settings: BM25Settings) -> "LexicalIndex":
        import bm25s

        corpus = [analyze(t, settings) or ["\u2205"] for t in texts]
        retriever = bm25s.BM25(k1=settings.k1, b=settings.b, method=settings.method)
        retriever.index(corpus, show_progress=False)
        return cls(retriever, settings)

    def save(self, folder: Path) -> None:
        self._retriever.save(str(folder), show_progress=False, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, settings: BM25Settings) -> "LexicalIndex":
        import bm25s

        retriever = bm25s.BM25.load(str(folder), allow_pickle=False, show_progress=False, mmap=False)
        return cls(retriever, settings)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for the query (zeros when no query term is known)."""
        terms = [t for t in analyze(query, self.settings) if t in self._retriever.vocab_dict]
        n = self._retriever.scores["num_docs"]
        if not terms:
            return np.zeros(n, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(terms), dtype=np.float32)


def idf_weights(index: LexicalIndex, terms: Sequence[str]) -> dict[str, float]:
    """Robertson IDF of each term from the index's document frequencies (unknown terms: df = 0)."""
    retriever = index._retriever
    n = retriever.scores["num_docs"]
    indptr = retriever.scores["indptr"]
    out = {}
    for term in terms:
        tid = retriever.vocab_dict.get(term)
        df = int(indptr[tid + 1] - indptr[tid]) if tid is not None and tid + 1 < len(indptr) else 0
        out[term] = float(np.log(1.0 + (n - df + 0.5) / (df + 0.5)))
    return out
