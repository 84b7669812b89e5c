"""The embedded store's catalog: documents, passages (chunks) and sentence units in one generation's SQLite file."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from index import store
from index.chunker import Segmentation
from index.readers import Document
from index.stores.base import (
    AddedDocument,
    DocumentRecord,
    PassageRecord,
    Recorded,
    StoredSegmentation,
    UnitRecord,
    Within,
    text_hash,
)
from index.walk import FileStat

_BATCH = 500
"""Ids bound to one `IN (...)` at a time."""
_PASSAGE_COLUMNS = (
    "chunks.id, chunks.doc_id, documents.source, chunks.ordinal, chunks.char_start, chunks.char_end, "
    "chunks.line_start, chunks.line_end, chunks.n_tokens, chunks.text"
)
_PASSAGES = f"SELECT {_PASSAGE_COLUMNS} FROM chunks JOIN documents ON documents.id = chunks.doc_id"
_UNITS = "SELECT id, doc_id, char_start, char_end, n_tokens, text FROM units"


def _batches(ids: Sequence[int]) -> Iterator[list[int]]:
    ids = [int(i) for i in ids]
    for start in range(0, len(ids), _BATCH):
        yield ids[start : start + _BATCH]


def _marks(batch: Sequence) -> str:
    return ",".join("?" * len(batch))


class SqliteCatalog:
    """Reads a generation's SQLite. cache_links: keep which units each passage holds in memory (a
    snapshot answering questions); otherwise each look-up asks SQLite (a catalog being written)."""

    def __init__(self, conn: sqlite3.Connection, cache_links: bool = True) -> None:
        self.conn = conn
        self._cache_links = cache_links
        self._units_of: dict[int, list[int]] | None = None
        self._passages_of: dict[int, list[int]] | None = None
        self._links_lock = threading.Lock()

    # -- documents --------------------------------------------------------------

    def sources(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT source FROM documents ORDER BY source")]

    def document_ids(self, sources: Sequence[str]) -> dict[str, int]:
        wanted = list(dict.fromkeys(sources))
        out: dict[str, int] = {}
        for start in range(0, len(wanted), _BATCH):
            batch = wanted[start : start + _BATCH]
            out.update(self.conn.execute(f"SELECT source, id FROM documents WHERE source IN ({_marks(batch)})", batch))
        return out

    def documents(self) -> list[DocumentRecord]:
        rows = self.conn.execute(
            "SELECT id, source, path, sha256, encoding, n_chars FROM documents ORDER BY source"
        ).fetchall()
        return [DocumentRecord(*row) for row in rows]

    def count_documents(self) -> int:
        return self.conn.execute("SELECT count(*) FROM documents").fetchone()[0]

    def count_passages(self) -> int:
        return self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]

    def passage_counts(self) -> dict[str, int]:
        return dict(
            self.conn.execute(
                "SELECT source, (SELECT count(*) FROM chunks WHERE doc_id = documents.id) "
                "FROM documents ORDER BY source"
            )
        )

    def short_documents(self, max_chars: int) -> list[int]:
        return [
            r[0] for r in self.conn.execute("SELECT id FROM documents WHERE n_chars <= ? ORDER BY id", (max_chars,))
        ]

    def recorded(self, sources: Sequence[str] | None = None) -> tuple[dict[str, Recorded], dict[str, FileStat]]:
        return store.read_documents(self.conn, sources)

    def has_documents_under(self, folder: str) -> bool:
        return store.has_documents_under(self.conn, folder)

    # -- passages and units ----------------------------------------------------------

    def passages(self, ids: Sequence[int]) -> dict[int, PassageRecord]:
        out: dict[int, PassageRecord] = {}
        for batch in _batches(ids):
            for row in self.conn.execute(f"{_PASSAGES} WHERE chunks.id IN ({_marks(batch)})", batch):
                out[row[0]] = PassageRecord(*row)
        return out

    def all_passages(self) -> Iterator[PassageRecord]:
        for row in self.conn.execute(f"{_PASSAGES} ORDER BY chunks.doc_id, chunks.char_start, chunks.char_end"):
            yield PassageRecord(*row)

    def units(self, ids: Sequence[int]) -> dict[int, UnitRecord]:
        out: dict[int, UnitRecord] = {}
        for batch in _batches(ids):
            for row in self.conn.execute(f"{_UNITS} WHERE id IN ({_marks(batch)})", batch):
                out[row[0]] = UnitRecord(*row)
        return out

    def all_units(self) -> Iterator[UnitRecord]:
        for row in self.conn.execute(f"{_UNITS} ORDER BY id"):
            yield UnitRecord(*row)

    def units_of(self, passage_ids: Sequence[int]) -> list[list[int]]:
        if self._cache_links:
            units_of = self._links()[0]
            return [units_of.get(int(c), []) for c in passage_ids]
        return self._linked("SELECT chunk_id, unit_id FROM chunk_units WHERE chunk_id IN", passage_ids)

    def passages_of(self, unit_ids: Sequence[int]) -> list[list[int]]:
        if self._cache_links:
            passages_of = self._links()[1]
            return [passages_of.get(int(u), []) for u in unit_ids]
        return self._linked("SELECT unit_id, chunk_id FROM chunk_units WHERE unit_id IN", unit_ids)

    def _linked(self, query: str, ids: Sequence[int]) -> list[list[int]]:
        found: dict[int, list[int]] = {}
        for batch in _batches(ids):
            for key, other in self.conn.execute(f"{query} ({_marks(batch)})", batch):
                found.setdefault(key, []).append(other)
        return [sorted(found.get(int(i), [])) for i in ids]

    def _links(self) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
        """passage -> units and unit -> passages, read once (every question needs them)."""
        with self._links_lock:
            if self._units_of is None:
                pairs = self.conn.execute("SELECT chunk_id, unit_id FROM chunk_units ORDER BY chunk_id, unit_id")
                units_of: dict[int, list[int]] = {}
                passages_of: dict[int, list[int]] = {}
                for cid, uid in pairs:
                    units_of.setdefault(cid, []).append(uid)
                    passages_of.setdefault(uid, []).append(cid)
                self._units_of, self._passages_of = units_of, passages_of
            return self._units_of, self._passages_of

    def warm(self) -> None:
        if self._cache_links:
            self._links()

    def passages_within(self, doc_ids: Within) -> np.ndarray:
        if doc_ids is None:
            return np.asarray([r[0] for r in self.conn.execute("SELECT id FROM chunks ORDER BY id")], dtype=np.int64)
        found: list[int] = []
        for batch in _batches(sorted(doc_ids)):
            found.extend(
                r[0] for r in self.conn.execute(f"SELECT id FROM chunks WHERE doc_id IN ({_marks(batch)})", batch)
            )
        return np.asarray(sorted(found), dtype=np.int64)

    def sources_of(self, passage_ids: Sequence[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        for batch in _batches(passage_ids):
            out.update(
                self.conn.execute(
                    "SELECT chunks.id, documents.source FROM chunks JOIN documents ON documents.id = chunks.doc_id "
                    f"WHERE chunks.id IN ({_marks(batch)})",
                    batch,
                )
            )
        return out

    def passage_hashes(self, passage_ids: Sequence[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        try:
            for batch in _batches(passage_ids):
                out.update(
                    self.conn.execute(
                        f"SELECT chunk_id, sha256 FROM chunk_hashes WHERE chunk_id IN ({_marks(batch)})", batch
                    )
                )
        except sqlite3.OperationalError as exc:  # an index written before hashes were kept has no such table
            if "no such table" not in str(exc):
                raise
        return out

    def segmentation(self, doc_id: int) -> StoredSegmentation:
        units = tuple(
            UnitRecord(*row) for row in self.conn.execute(f"{_UNITS} WHERE doc_id = ? ORDER BY id", (doc_id,))
        )
        passages = tuple(
            PassageRecord(*row)
            for row in self.conn.execute(f"{_PASSAGES} WHERE chunks.doc_id = ? ORDER BY chunks.ordinal", (doc_id,))
        )
        members = tuple(
            tuple(r[0] for r in self.conn.execute("SELECT unit_id FROM chunk_units WHERE chunk_id = ?", (p.id,)))
            for p in passages
        )
        return StoredSegmentation(units, passages, members)


class SqliteCatalogEditor(SqliteCatalog):
    """The catalog of a generation being written; remembers what changed for the vector and BM25 files."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn, cache_links=False)
        self.dropped_units: list[int] = []
        self.dropped_passages: list[int] = []
        self.fresh_units: dict[int, str] = {}
        """Texts of the units added, by id, in the order they were added."""
        self.fresh_passages: dict[int, str] = {}

    def delete_documents(self, doc_ids: Sequence[int]) -> None:
        conn = self.conn
        for doc_id in doc_ids:
            self.dropped_units.extend(r[0] for r in conn.execute("SELECT id FROM units WHERE doc_id = ?", (doc_id,)))
            self.dropped_passages.extend(
                r[0] for r in conn.execute("SELECT id FROM chunks WHERE doc_id = ?", (doc_id,))
            )
        conn.executemany(
            "DELETE FROM chunk_units WHERE chunk_id IN (SELECT id FROM chunks WHERE doc_id = ?)",
            [(i,) for i in doc_ids],
        )
        conn.executemany(
            "DELETE FROM chunk_hashes WHERE chunk_id IN (SELECT id FROM chunks WHERE doc_id = ?)",
            [(i,) for i in doc_ids],
        )
        conn.executemany("DELETE FROM units WHERE doc_id = ?", [(i,) for i in doc_ids])
        conn.executemany("DELETE FROM chunks WHERE doc_id = ?", [(i,) for i in doc_ids])
        conn.executemany("DELETE FROM documents WHERE id = ?", [(i,) for i in doc_ids])

    def add_document(self, document: Document, segmentation: Segmentation, indexed_at: float) -> AddedDocument:
        conn, doc = self.conn, document
        cur = conn.execute(
            "INSERT INTO documents(source, path, sha256, encoding, n_chars, indexed_at) VALUES (?,?,?,?,?,?)",
            (doc.source, str(doc.path), doc.sha256, doc.encoding, len(doc.text), indexed_at),
        )
        doc_id = cur.lastrowid
        unit_ids = []
        for unit in segmentation.units:
            text = doc.text[unit.char_start : unit.char_end]
            u = conn.execute(
                "INSERT INTO units(doc_id, char_start, char_end, n_tokens, text) VALUES (?,?,?,?,?)",
                (doc_id, unit.char_start, unit.char_end, unit.n_tokens, text),
            )
            unit_ids.append(u.lastrowid)
            self.fresh_units[u.lastrowid] = text
        passage_ids = []
        for chunk, members in zip(segmentation.chunks, segmentation.members):
            c = conn.execute(
                "INSERT INTO chunks(doc_id, ordinal, char_start, char_end, line_start, line_end, n_tokens, text) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (
                    doc_id,
                    chunk.ordinal,
                    chunk.char_start,
                    chunk.char_end,
                    chunk.line_start,
                    chunk.line_end,
                    chunk.n_tokens,
                    chunk.text,
                ),
            )
            conn.executemany(
                "INSERT INTO chunk_units(chunk_id, unit_id) VALUES (?, ?)",
                [(c.lastrowid, unit_ids[m]) for m in members],
            )
            conn.execute(
                "INSERT INTO chunk_hashes(chunk_id, sha256) VALUES (?, ?)", (c.lastrowid, text_hash(chunk.text))
            )
            passage_ids.append(c.lastrowid)
            self.fresh_passages[c.lastrowid] = chunk.text
        return AddedDocument(doc_id, tuple(unit_ids), tuple(passage_ids))

    def move_documents(self, paths: Mapping[str, str]) -> None:
        self.conn.executemany("UPDATE documents SET path = ? WHERE source = ?", [(p, src) for src, p in paths.items()])

    def record_file_stats(self, stats: Mapping[str, FileStat], forget: Sequence[str]) -> None:
        store.write_file_stats(self.conn, dict(stats), forget)

    def texts(self, table: str, ids: Sequence[int]) -> list[str]:
        """Texts of rows of 'chunks' or 'units', in the order of ids."""
        return [self.conn.execute(f"SELECT text FROM {table} WHERE id = ?", (int(i),)).fetchone()[0] for i in ids]

    def all_texts(self, table: str) -> list[str]:
        """Texts of every row of 'chunks' or 'units', by id."""
        return [r[0] for r in self.conn.execute(f"SELECT text FROM {table} ORDER BY id")]

    def all_ids(self, table: str) -> np.ndarray:
        return np.asarray([r[0] for r in self.conn.execute(f"SELECT id FROM {table} ORDER BY id")], dtype=np.int64)
