"""The embedded store: a folder of generations, each SQLite (catalog) + FAISS (vectors) + BM25 arrays (lexical).

Readers open the live generation and keep it while writers build the next one beside it; one writer
at a time (an OS lock) makes a new generation live by renaming a pointer file (index/store.py).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from index import store
from index.errors import REBUILD_HINT, IndexCorruptError, IndexLockedError, IndexMissingError
from index.lexical import BM25Settings, LexicalIndex, idf_weights
from index.manifest import Manifest
from index.ranking import top_positive
from index.stores.base import Catalog, Hits, Within
from index.stores.embedded_update import GenerationUpdate
from index.stores.sqlite_catalog import SqliteCatalog
from index.vectors import DenseIndex


class FaissVectors:
    """Sentence-unit vectors in FAISS (exact, or IVF-PQ re-ranked exactly: index/vectors.py)."""

    def __init__(self, dense: DenseIndex, units_within: Callable[[frozenset[int]], np.ndarray] | None = None) -> None:
        self.dense = dense
        self._units_within = units_within

    @property
    def dim(self) -> int:
        return self.dense.dim

    @property
    def count(self) -> int:
        return self.dense.ntotal

    def search(self, qvec: np.ndarray, k: int, within: Within = None) -> Hits:
        if within is not None and self._units_within is None:
            raise ValueError("these vectors have no documents to filter by")
        allowed = None if within is None else self._units_within(within)
        ids, scores = self.dense.search(qvec, k, allowed)
        return Hits(np.asarray(ids, dtype=np.int64), np.asarray(scores, dtype=np.float32))

    def score(self, qvec: np.ndarray, ids: Sequence[int]) -> np.ndarray:
        return self.vectors(ids) @ qvec

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        if len(ids) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.dense.vectors(ids)

    def close(self) -> None:
        self.dense.close()


class Bm25Query:
    """A query's BM25 score of every row, computed once (LexicalIndex.scores) and read by top and score."""

    def __init__(self, lexical: Bm25Lexical, scores: np.ndarray) -> None:
        self._lexical = lexical
        self._scores = scores

    def top(self, k: int, within: Within = None) -> Hits:
        allowed = None if within is None else self._lexical.positions(self._lexical.rows_within(within))
        rows = top_positive(self._scores, k, allowed)
        return Hits(self._lexical.ids[rows], self._scores[rows])

    def score(self, ids: Sequence[int]) -> np.ndarray:
        return self._scores[self._lexical.positions(ids)]


class Bm25Lexical:
    """BM25 arrays (bm25s's format, read by index/lexical_column.py) whose row i is the row with id ids[i]."""

    def __init__(
        self,
        index: LexicalIndex,
        ids: np.ndarray,
        rows_within: Callable[[frozenset[int]], np.ndarray] | None = None,
    ) -> None:
        self._index = index
        self.settings: BM25Settings = index.settings
        self.ids = np.asarray(ids, dtype=np.int64)
        self._sorter = None if np.all(self.ids[1:] > self.ids[:-1]) else np.argsort(self.ids, kind="stable")
        self._rows_within = rows_within

    @classmethod
    def over_texts(cls, texts: Sequence[str], settings: BM25Settings) -> Bm25Lexical:
        """BM25 built in memory over texts; row i has id i."""
        return cls(LexicalIndex.build(texts, settings), np.arange(len(texts), dtype=np.int64))

    @property
    def num_docs(self) -> int:
        return self._index.num_docs

    def document_frequency(self, term: str) -> int:
        return self._index.document_frequency(term)

    def idf(self, terms: Sequence[str]) -> dict[str, float]:
        return idf_weights(self._index, terms)

    def query(self, text: str) -> Bm25Query:
        return Bm25Query(self, self._index.scores(text))

    def rows_within(self, doc_ids: frozenset[int]) -> np.ndarray:
        if self._rows_within is None:
            raise ValueError("this BM25 index has no documents to filter by")
        return self._rows_within(doc_ids)

    def positions(self, ids: Sequence[int]) -> np.ndarray:
        """Row of each id (KeyError for an id the index does not hold)."""
        wanted = np.asarray(ids, dtype=np.int64).reshape(-1)
        n = self.ids.shape[0]
        at = np.searchsorted(self.ids, wanted, sorter=self._sorter)
        if self._sorter is not None:
            at = self._sorter[np.minimum(at, n - 1)] if n else at
        if wanted.size and (n == 0 or np.any(at >= n) or np.any(self.ids[np.minimum(at, n - 1)] != wanted)):
            raise KeyError("id not in the BM25 index")
        return at

    def close(self) -> None:
        self._index.close()


class EmbeddedSnapshot:
    """One generation, open for reading (index/store.py LoadedIndex underneath)."""

    def __init__(self, loaded: store.LoadedIndex) -> None:
        self.loaded = loaded
        self.manifest: Manifest = loaded.manifest
        self.folder: Path = loaded.folder
        """The generation's folder."""
        self.catalog = SqliteCatalog(loaded.conn)
        self.vectors = FaissVectors(loaded.dense, self._units_within)
        self.passage_lexical = Bm25Lexical(loaded.lexical, loaded.bm25_ids, self.catalog.passages_within)
        self.unit_lexical = Bm25Lexical(loaded.unit_lexical, loaded.unit_ids, self._units_within)

    @property
    def root(self) -> Path:
        return self.loaded.root

    @property
    def n_chunks(self) -> int:
        return self.loaded.n_chunks

    def _units_within(self, doc_ids: frozenset[int]) -> np.ndarray:
        passages = self.catalog.passages_within(doc_ids)
        return np.asarray(sorted({u for units in self.catalog.units_of(passages) for u in units}), dtype=np.int64)

    def warm(self) -> None:
        self.catalog.warm()

    def read_catalog(self) -> contextlib.AbstractContextManager[tuple[Catalog, Manifest]]:
        return _reading_catalog(self.folder, self.manifest)

    def close(self) -> None:
        self.loaded.close()


@contextlib.contextmanager
def _reading_catalog(generation: Path, manifest: Manifest) -> Iterator[tuple[Catalog, Manifest]]:
    """A generation's catalog on a read-only connection of its own; SQLite's errors become IndexCorruptError."""
    try:
        with contextlib.closing(store.connect(generation / store.SQLITE, readonly=True)) as conn:
            yield SqliteCatalog(conn, cache_links=False), manifest
    except sqlite3.Error as exc:
        raise IndexCorruptError(
            f"The index at {generation} cannot be read ({type(exc).__name__}: {str(exc)[:120]}).", REBUILD_HINT
        ) from exc


class EmbeddedStore:
    """An index folder (the default store)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.location = str(self.folder)

    def manifest(self) -> Manifest | None:
        return store.read_manifest(self.folder)

    def open(self) -> EmbeddedSnapshot:
        return EmbeddedSnapshot(store.load_index(self.folder))

    @contextlib.contextmanager
    def read_catalog(self) -> Iterator[tuple[Catalog, Manifest]]:
        generation = store.current_generation(self.folder) if self.folder.is_dir() else None
        if generation is None:
            raise IndexMissingError(f"No index at {self.folder}.", "Build it: qa index PATH")
        with _reading_catalog(generation, Manifest.from_path(generation / store.MANIFEST)) as both:
            yield both

    @contextlib.contextmanager
    def update(self, wait: bool = False) -> Iterator:
        with store.write_lock(self.folder, wait=wait):
            store.clean_leftovers(self.folder)
            update = GenerationUpdate(self.folder)
            try:
                yield update
            finally:
                update.close()

    def clean_up(self, background: bool = False) -> threading.Thread | None:
        """Remove half-written and replaced generations; background: in a thread (skipped when a
        writer holds the lock: it cleans up itself). Returns the thread, if any."""
        if background:
            return store.clean_up_in_background(self.folder)
        try:
            with store.write_lock(self.folder):
                store.clean_leftovers(self.folder)
        except IndexLockedError:
            pass
        return None
