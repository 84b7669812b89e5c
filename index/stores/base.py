"""The store seam: what the builder, the engine, the CLI and the benchmarks may ask of an index.

An index holds documents, their passages (chunks) and sentence units in a catalog, the units' vectors
in a vector store, and BM25 over passages and over units in two lexical stores. A store keeps them
together and versioned: readers open one version (a Snapshot) and never see half an update; one
writer at a time builds the next version (a StoreUpdate) and makes it live at once. Store
implementations (index/stores/embedded.py, the folder of generations) are chosen by
index.stores.open_store; nothing else touches their files, SQL or arrays.

Filters are plain values: `within` is a frozenset of document ids (Catalog.document_ids turns
sources into them), None for the whole index.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from index.chunker import Segmentation
    from index.lexical import BM25Settings
    from index.manifest import BuildInfo, Manifest
    from index.readers import Document
    from index.walk import FileStat


def text_hash(text: str) -> str:
    """sha256 of a passage's text (UTF-8; a lone surrogate from a decoding is kept as it is)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


Within = frozenset[int] | None
"""Document ids a search is restricted to; None: every document."""

Recorded = tuple[int, str, str]
"""What the catalog recorded of a document for the change check: (document id, sha256, path)."""


@dataclass(frozen=True)
class DocumentRecord:
    """One indexed document."""

    id: int
    source: str
    """Path relative to the corpus root, with forward slashes; what citations name."""
    path: str
    """Absolute path of the file when it was indexed."""
    sha256: str
    encoding: str
    n_chars: int


@dataclass(frozen=True)
class PassageRecord:
    """One passage (chunk): the text a citation quotes, with its span in the document's text."""

    id: int
    doc_id: int
    source: str
    ordinal: int
    char_start: int
    char_end: int
    line_start: int
    """1-based first line; the page is found from the document's text when the passage is cited."""
    line_end: int
    n_tokens: int
    text: str


@dataclass(frozen=True)
class UnitRecord:
    """One sentence unit: what is embedded, and what an answer quotes."""

    id: int
    doc_id: int
    char_start: int
    char_end: int
    n_tokens: int
    text: str


@dataclass(frozen=True)
class StoredSegmentation:
    """A document's units and passages as stored, for comparing with a fresh segmentation."""

    units: tuple[UnitRecord, ...]
    """By id."""
    passages: tuple[PassageRecord, ...]
    """By ordinal."""
    members: tuple[tuple[int, ...], ...]
    """members[i]: the unit ids of passages[i]."""


@dataclass(frozen=True)
class AddedDocument:
    """The ids a document received when added."""

    doc_id: int
    unit_ids: tuple[int, ...]
    """In the order of the segmentation's units."""
    passage_ids: tuple[int, ...]
    """In the order of the segmentation's chunks."""


@dataclass(frozen=True)
class Hits:
    """Ids with their scores, best first (equal scores: lower id first)."""

    ids: np.ndarray
    """int64."""
    scores: np.ndarray
    """float32."""

    @classmethod
    def empty(cls) -> Hits:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))


@runtime_checkable
class Catalog(Protocol):
    """Documents, passages and sentence units: text, spans and hashes. Ids are never reused for other text."""

    def sources(self) -> list[str]:
        """Every document's source, sorted."""
        ...

    def document_ids(self, sources: Sequence[str]) -> dict[str, int]:
        """source -> document id of those sources that are indexed."""
        ...

    def documents(self) -> list[DocumentRecord]:
        """Every document, by source."""
        ...

    def count_documents(self) -> int: ...

    def count_passages(self) -> int: ...

    def passage_counts(self) -> dict[str, int]:
        """source -> number of passages, every document."""
        ...

    def short_documents(self, max_chars: int) -> list[int]:
        """Ids of the documents of at most max_chars characters, ascending."""
        ...

    def recorded(self, sources: Sequence[str] | None = None) -> tuple[dict[str, Recorded], dict[str, FileStat]]:
        """source -> Recorded of every document (or of those among sources), and source -> the stat its
        file had when last read, for those that have one."""
        ...

    def has_documents_under(self, folder: str) -> bool:
        """Whether any document's source lies inside folder (a source, relative like them)."""
        ...

    def passages(self, ids: Sequence[int]) -> dict[int, PassageRecord]: ...

    def all_passages(self) -> Iterator[PassageRecord]:
        """Every passage, by document id, then char_start, then char_end."""
        ...

    def units(self, ids: Sequence[int]) -> dict[int, UnitRecord]: ...

    def all_units(self) -> Iterator[UnitRecord]:
        """Every unit, by id."""
        ...

    def units_of(self, passage_ids: Sequence[int]) -> list[list[int]]:
        """Each passage's unit ids, ascending ([] for an unknown passage)."""
        ...

    def passages_of(self, unit_ids: Sequence[int]) -> list[list[int]]:
        """Each unit's passage ids, ascending ([] for an unknown unit)."""
        ...

    def passages_within(self, doc_ids: Within) -> np.ndarray:
        """Ascending passage ids of those documents."""
        ...

    def sources_of(self, passage_ids: Sequence[int]) -> dict[int, str]:
        """passage id -> its document's source."""
        ...

    def passage_hashes(self, passage_ids: Sequence[int]) -> dict[int, str]:
        """passage id -> text_hash of its text as indexed (none for a passage indexed before hashes were kept):
        what a citation is checked against when its file is not reachable."""
        ...

    def segmentation(self, doc_id: int) -> StoredSegmentation: ...


@runtime_checkable
class CatalogEditor(Catalog, Protocol):
    """The catalog of a version being written: documents are deleted and added whole."""

    def delete_documents(self, doc_ids: Sequence[int]) -> None:
        """Delete documents with their passages and units, here and in the vector and lexical stores."""
        ...

    def add_document(self, document: Document, segmentation: Segmentation, indexed_at: float) -> AddedDocument:
        """Add a document with its passages and units (their vectors come with StoreUpdate.add_vectors)."""
        ...

    def move_documents(self, paths: Mapping[str, str]) -> None:
        """source -> the absolute path it is found at now."""
        ...

    def record_file_stats(self, stats: Mapping[str, FileStat], forget: Sequence[str]) -> None:
        """Remember the stats of files read this run; forget those of removed files and untrusted stats."""
        ...


@runtime_checkable
class VectorStore(Protocol):
    """Sentence-unit vectors (L2-normalised: inner product is cosine), keyed by unit id."""

    @property
    def dim(self) -> int: ...

    @property
    def count(self) -> int: ...

    def search(self, qvec: np.ndarray, k: int, within: Within = None) -> Hits:
        """The k units most similar to qvec (only units of those documents, when within is given)."""
        ...

    def score(self, qvec: np.ndarray, ids: Sequence[int]) -> np.ndarray:
        """float32 inner product of qvec with each stored vector, exactly (fusion stays exact over any union)."""
        ...

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors, float32, one row per id."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class LexicalQuery(Protocol):
    """One query against a lexical store; its terms are analysed once for both questions below."""

    def top(self, k: int, within: Within = None) -> Hits:
        """Up to k rows with a positive BM25 score, best first (only rows of those documents, when given)."""
        ...

    def score(self, ids: Sequence[int]) -> np.ndarray:
        """float32 BM25 score of each row (0 where no query term occurs)."""
        ...


@runtime_checkable
class LexicalStore(Protocol):
    """BM25 over rows (passages or units) keyed by their id, with the analyzer of `settings`."""

    settings: BM25Settings

    @property
    def num_docs(self) -> int:
        """Rows in the store (BM25's N)."""
        ...

    def document_frequency(self, term: str) -> int:
        """How many rows hold the (analysed) term."""
        ...

    def idf(self, terms: Sequence[str]) -> dict[str, float]:
        """The IDF of each (analysed) term; unknown terms have df = 0."""
        ...

    def query(self, text: str) -> LexicalQuery: ...

    def close(self) -> None: ...


@runtime_checkable
class Snapshot(Protocol):
    """One version of an index, open for reading; it stays as it is while newer versions are written."""

    manifest: Manifest
    catalog: Catalog
    vectors: VectorStore
    """Vectors of sentence units."""
    passage_lexical: LexicalStore
    """BM25 over passages."""
    unit_lexical: LexicalStore
    """BM25 over sentence units."""

    @property
    def root(self) -> Path:
        """The corpus root the sources are relative to."""
        ...

    @property
    def n_chunks(self) -> int: ...

    def read_catalog(self) -> contextlib.AbstractContextManager[tuple[Catalog, Manifest]]:
        """This version's catalog on a connection of its own (for another thread), with its manifest."""
        ...

    def warm(self) -> None:
        """Load now what answering needs (the engine calls it when it opens), not at the first question."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class StoreUpdate(Protocol):
    """One writer's update: nothing is visible to readers until commit(); leaving the `with` block
    without commit() discards it, and the live version stays as it was."""

    previous: Manifest | None
    """What built the live version (None: there is none)."""
    timings: dict[str, float]
    """Seconds spent in the store's own steps."""

    def start(self, keep: bool, bm25: BM25Settings) -> None:
        """Start from the live contents (an incremental update) or from nothing; bm25: the analyzer and
        parameters of the lexical stores."""
        ...

    def read_previous(self) -> contextlib.AbstractContextManager[Catalog]:
        """The live version's catalog (after start(keep=True)), to compare files with."""
        ...

    def catalog(self) -> CatalogEditor:
        """The catalog being written."""
        ...

    def texts_written(self) -> None:
        """Every document is added or deleted: work that needs only their text (BM25) may begin."""
        ...

    def add_vectors(self, unit_ids: np.ndarray, vectors: np.ndarray) -> None:
        """The vectors of the units added in this update (every one of them, once)."""
        ...

    def finish(self, built: BuildInfo) -> Manifest:
        """Write everything, recording what built it; returns the new version's manifest."""
        ...

    def commit(self, remove_replaced: bool = True) -> None:
        """Make the new version live at once; remove_replaced: drop the replaced one now (else later)."""
        ...


@runtime_checkable
class Store(Protocol):
    """An index location: versions of one index, read by many and written by one at a time."""

    location: str

    def manifest(self) -> Manifest | None:
        """What built the live version, None when there is no index yet."""
        ...

    def open(self) -> Snapshot:
        """The live version, checked (IndexMissingError, IndexCorruptError, IndexMismatchError)."""
        ...

    def read_catalog(self) -> contextlib.AbstractContextManager[tuple[Catalog, Manifest]]:
        """The live version's catalog alone, with its manifest (cheaper than open())."""
        ...

    def update(self, wait: bool = False) -> contextlib.AbstractContextManager[StoreUpdate]:
        """Become the one writer (IndexLockedError when another is, unless wait)."""
        ...

    def clean_up(self, background: bool = False) -> None:
        """Remove what replaced or failed updates left behind."""
        ...
