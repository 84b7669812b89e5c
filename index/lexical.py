"""BM25 over chunks with bm25s: our own analyzer (fold, lowercase, stopwords, Snowball stemming)."""

from __future__ import annotations

import json
import os
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
    import Stemmer

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
"""bm25s.stopwords.STOPWORDS_EN (MIT), copied: importing bm25s pulls in scipy, ~0.28 s of a cold
`qa ask` that only needs these 33 words. tests/test_store.py checks the copy against bm25s."""


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


def _column_length(indptr: np.ndarray, tid: int | None) -> int:
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
        import bm25s

        corpus = [analyze(t, settings) or [EMPTY_ROW] for t in texts]
        retriever = bm25s.BM25(k1=settings.k1, b=settings.b, method=settings.method)
        retriever.index(corpus, show_progress=False)
        return cls(retriever, settings)

    def save(self, folder: Path) -> None:
        self._retriever.save(str(folder), show_progress=False, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, settings: BM25Settings) -> LexicalIndex:
        """A saved index; lucene-style BM25 is read column by column from disk (ColumnLexical)."""
        if settings.method in ColumnLexical.METHODS and hasattr(os, "pread"):
            return ColumnLexical(folder, settings)
        from index.lexical_delta import has_delta

        if has_delta(folder):  # written only for the methods above, on systems with pread
            raise ValueError(f"the BM25 folder {folder.name} has a delta that only the column reader applies")
        import bm25s

        retriever = bm25s.BM25.load(str(folder), allow_pickle=False, show_progress=False, mmap=False)
        return cls(retriever, settings)

    @property
    def num_docs(self) -> int:
        return int(self._retriever.scores["num_docs"])

    def document_frequency(self, term: str) -> int:
        """How many rows contain the (analyzed) term."""
        return _column_length(self._retriever.scores["indptr"], self._retriever.vocab_dict.get(term))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for the query (zeros when no query term is known)."""
        terms = [t for t in analyze(query, self.settings) if t in self._retriever.vocab_dict]
        n = self._retriever.scores["num_docs"]
        if not terms:
            return np.zeros(n, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(terms), dtype=np.float32)

    def close(self) -> None:
        pass


class ColumnLexical(LexicalIndex):
    """A saved bm25s index scored by reading each query term's column with pread.

    bm25s keeps every posting in RAM (8 bytes each: 370 MB at 1M chunks), and memory-mapping the
    files does not help, because the pages a query touches stay resident. Here only the column
    offsets and the vocabulary stay in the process; a query reads its few columns from the OS page
    cache. For methods whose score of a row without the term is zero (lucene, robertson, atire)
    the sum of the columns is bm25s's own score (tests/test_store.py checks it bit for bit).
    An updated folder may hold a delta beside its base (index/lexical_delta.py); then each
    column's scores are computed from its term counts, with the statistics of the rows as they are.
    """

    METHODS = ("lucene", "robertson", "atire")

    def __init__(self, folder: Path, settings: BM25Settings) -> None:
        self.settings = settings
        params = json.loads((folder / "params.index.json").read_text(encoding="utf-8"))
        self._num_docs = int(params["num_docs"])
        self.vocab: dict[str, int] = json.loads((folder / "vocab.index.json").read_text(encoding="utf-8"))
        self.indptr = np.load(folder / "indptr.csc.index.npy", allow_pickle=False)
        self._files: dict[str, tuple[int, int, np.dtype]] = {}
        for key in ("data", "indices"):
            path = folder / f"{key}.csc.index.npy"
            header = np.load(path, mmap_mode="r", allow_pickle=False)  # reads the .npy header only
            offset, dtype = header.offset, header.dtype
            del header
            self._files[key] = (os.open(path, os.O_RDONLY), offset, dtype)
        self._delta = None
        from index.lexical_delta import has_delta

        if has_delta(folder):  # an updated index: base + delta, scored from the term counts
            try:
                self._open_delta(folder, settings)
            except BaseException:
                self.close()
                raise

    def _open_delta(self, folder: Path, settings: BM25Settings) -> None:
        from index.lexical_build import TERM_FREQS
        from index.lexical_delta import DeltaScorer, read_delta

        path = folder / TERM_FREQS
        header = np.load(path, mmap_mode="r", allow_pickle=False)
        offset, dtype = header.offset, header.dtype
        del header
        self._files["tf"] = (os.open(path, os.O_RDONLY), offset, dtype)
        self._delta = DeltaScorer(folder, self._num_docs, read_delta(folder, self._num_docs), settings)

    @property
    def num_docs(self) -> int:
        return self._delta.num_docs if self._delta is not None else self._num_docs

    def document_frequency(self, term: str) -> int:
        if self._delta is not None:
            return self._delta.document_frequency(term, lambda: self._base_column(term))
        return _column_length(self.indptr, self.vocab.get(term))

    def _base_column(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(rows, term counts) of the term's postings in the base, None if the base lacks it."""
        tid = self.vocab.get(term)
        if tid is None:
            return None
        start, end = int(self.indptr[tid]), int(self.indptr[tid + 1])
        return self._column("indices", start, end), self._column("tf", start, end)

    def _column(self, key: str, start: int, end: int) -> np.ndarray:
        fd, offset, dtype = self._files[key]
        size = (end - start) * dtype.itemsize
        data = os.pread(fd, size, offset + start * dtype.itemsize)
        if len(data) != size:
            from index.errors import REBUILD_HINT, IndexCorruptError

            raise IndexCorruptError(f"The BM25 file {key}.csc.index.npy is shorter than its index says.", REBUILD_HINT)
        return np.frombuffer(data, dtype=dtype)

    def scores(self, query: str) -> np.ndarray:
        if self._delta is not None:
            scores = np.zeros(self._delta.num_docs + 1, dtype=np.float32)
            for term in analyze(query, self.settings):
                self._delta.add_scores(scores, term, lambda term=term: self._base_column(term))
            return scores[:-1]
        scores = np.zeros(self._num_docs, dtype=np.float32)
        for term in analyze(query, self.settings):
            tid = self.vocab.get(term)
            if tid is None:
                continue
            start, end = int(self.indptr[tid]), int(self.indptr[tid + 1])
            np.add.at(scores, self._column("indices", start, end), self._column("data", start, end))
        return scores

    def close(self) -> None:
        files, self._files = self._files, {}
        for fd, _, _ in files.values():
            os.close(fd)


def idf_weights(index: LexicalIndex, terms: Sequence[str]) -> dict[str, float]:
    """Robertson IDF of each term from the index's document frequencies (unknown terms: df = 0)."""
    n = index.num_docs
    out = {}
    for term in terms:
        df = index.document_frequency(term)
        out[term] = float(np.log(1.0 + (n - df + 0.5) / (df + 0.5)))
    return out
