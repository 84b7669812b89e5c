"""BM25 read from a saved folder: column by column with pread (lucene-style methods), else bm25s's loader."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from index.errors import REBUILD_HINT, IndexCorruptError
from index.lexical import BM25Settings, LexicalIndex, analyze, column_length
from index.lexical_build import TERM_FREQS, has_delta, read_delta
from index.lexical_delta import METHODS, DeltaScorer


def load_lexical(folder: Path, settings: BM25Settings) -> LexicalIndex:
    """A saved index; lucene-style BM25 is read column by column from disk (ColumnLexical)."""
    if settings.method in ColumnLexical.METHODS and hasattr(os, "pread"):
        return ColumnLexical(folder, settings)
    if has_delta(folder):  # written only for the methods above, on systems with pread
        raise ValueError(f"the BM25 folder {folder.name} has a delta that only the column reader applies")
    import bm25s  # deferred: bm25s imports scipy (start-up time)

    retriever = bm25s.BM25.load(str(folder), allow_pickle=False, show_progress=False, mmap=False)
    return LexicalIndex(retriever, settings)


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

    METHODS = METHODS

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
        if has_delta(folder):  # an updated index: base + delta, scored from the term counts
            try:
                self._open_delta(folder, settings)
            except BaseException:
                self.close()
                raise

    def _open_delta(self, folder: Path, settings: BM25Settings) -> None:
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
        return column_length(self.indptr, self.vocab.get(term))

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
