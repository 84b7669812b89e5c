"""The PostgreSQL store's catalog: documents, passages, units and their BM25 postings in schema `qa`.

Passages keep their char/line spans as columns (the page is found from the document's text when a
passage is cited, as in the embedded store). Each passage and unit records its BM25 length (analysed
terms); their postings are written in segments by index/stores/pg_lexical.py.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from index.chunker import Segmentation
from index.lexical import EMPTY_ROW, BM25Settings, analyze
from index.readers import Document
from index.stores import pg_lexical
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
from index.stores.pg_copy import copy_rows
from index.walk import FileStat

SCHEMA = "qa"
TABLES = """
CREATE SCHEMA IF NOT EXISTS qa;
CREATE TABLE IF NOT EXISTS qa.meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS qa.documents (
    id bigserial PRIMARY KEY, source text NOT NULL UNIQUE, path text NOT NULL, sha256 text NOT NULL,
    encoding text NOT NULL, n_chars bigint NOT NULL, indexed_at float8 NOT NULL
);
CREATE TABLE IF NOT EXISTS qa.passages (
    id bigserial PRIMARY KEY, doc_id bigint NOT NULL, ordinal int NOT NULL, char_start bigint NOT NULL,
    char_end bigint NOT NULL, line_start int NOT NULL, line_end int NOT NULL, n_tokens int NOT NULL,
    n_terms int NOT NULL, text text NOT NULL, text_sha256 text
);
CREATE INDEX IF NOT EXISTS passages_doc ON qa.passages (doc_id);
CREATE TABLE IF NOT EXISTS qa.units (
    id bigserial PRIMARY KEY, doc_id bigint NOT NULL, char_start bigint NOT NULL, char_end bigint NOT NULL,
    n_tokens int NOT NULL, n_terms int NOT NULL, text text NOT NULL
);
CREATE INDEX IF NOT EXISTS units_doc ON qa.units (doc_id);
CREATE TABLE IF NOT EXISTS qa.passage_units (
    passage_id bigint NOT NULL, unit_id bigint NOT NULL, doc_id bigint NOT NULL, PRIMARY KEY (passage_id, unit_id)
);
CREATE INDEX IF NOT EXISTS passage_units_unit ON qa.passage_units (unit_id);
CREATE INDEX IF NOT EXISTS passage_units_doc ON qa.passage_units (doc_id);
CREATE TABLE IF NOT EXISTS qa.file_stats (
    source text PRIMARY KEY, size bigint NOT NULL, mtime_ns bigint NOT NULL, ctime_ns bigint NOT NULL,
    inode bigint NOT NULL
);
"""
# qa.unit_vectors (id, doc_id, embedding vector(dim)) is made by the first writer that knows the dimension.
_HAS_HASHES = (
    "SELECT count(*) FROM pg_attribute WHERE attrelid = 'qa.passages'::regclass AND attname = 'text_sha256' "
    "AND NOT attisdropped"
)


def create_tables(conn) -> None:
    """The schema, and the passage hash column on a database written before it was kept. ALTER TABLE
    locks the table even when the column exists, so it runs only when it is missing: an open reader
    would otherwise block every writer."""
    conn.execute(TABLES)
    if not conn.execute(_HAS_HASHES).fetchone()[0]:
        conn.execute("ALTER TABLE qa.passages ADD COLUMN text_sha256 text")
    pg_lexical.create_tables(conn)


_PASSAGES = (
    "SELECT p.id, p.doc_id, d.source, p.ordinal, p.char_start, p.char_end, p.line_start, p.line_end, p.n_tokens, "
    "p.text FROM qa.passages p JOIN qa.documents d ON d.id = p.doc_id"
)
_UNITS = "SELECT id, doc_id, char_start, char_end, n_tokens, text FROM qa.units"
_FLUSH_ROWS = 200_000
"""Passages and units buffered before their rows are sent (bounds the writer's memory on a large build)."""
_SEGMENT_ROWS = 250_000
"""Rows of one kind whose postings make a BM25 segment (more rows: fewer segments, more writer memory)."""
_ID_BLOCK = 4096
"""Ids taken from a sequence at a time (unused ones are skipped: ids are never reused)."""


def row_terms(text: str, settings: BM25Settings) -> Counter:
    """A row's BM25 terms with their counts; a row without terms has EMPTY_ROW, as in the embedded store."""
    return Counter(analyze(text, settings) or [EMPTY_ROW])


class PgCatalog:
    """Reads the catalog on one connection (its transaction decides which version is seen)."""

    def __init__(self, conn) -> None:
        self.conn = conn

    def _rows(self, sql: str, params=None) -> list[tuple]:
        return self.conn.execute(sql, params).fetchall()

    # -- documents --------------------------------------------------------------

    def sources(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT source FROM qa.documents ORDER BY source")]

    def document_ids(self, sources: Sequence[str]) -> dict[str, int]:
        wanted = list(dict.fromkeys(sources))
        return dict(self._rows("SELECT source, id FROM qa.documents WHERE source = ANY(%s)", (wanted,)))

    def documents(self) -> list[DocumentRecord]:
        rows = self._rows("SELECT id, source, path, sha256, encoding, n_chars FROM qa.documents ORDER BY source")
        return [DocumentRecord(*row) for row in rows]

    def count_documents(self) -> int:
        return self._rows("SELECT count(*) FROM qa.documents")[0][0]

    def count_passages(self) -> int:
        return self._rows("SELECT count(*) FROM qa.passages")[0][0]

    def passage_counts(self) -> dict[str, int]:
        return dict(
            self._rows(
                "SELECT d.source, count(p.id) FROM qa.documents d LEFT JOIN qa.passages p ON p.doc_id = d.id "
                "GROUP BY d.source ORDER BY d.source"
            )
        )

    def short_documents(self, max_chars: int) -> list[int]:
        return [r[0] for r in self._rows("SELECT id FROM qa.documents WHERE n_chars <= %s ORDER BY id", (max_chars,))]

    def recorded(self, sources: Sequence[str] | None = None) -> tuple[dict[str, Recorded], dict[str, FileStat]]:
        query = (
            "SELECT d.source, d.id, d.sha256, d.path, s.size, s.mtime_ns, s.ctime_ns, s.inode "
            "FROM qa.documents d LEFT JOIN qa.file_stats s ON s.source = d.source"
        )
        rows = self._rows(query) if sources is None else self._rows(f"{query} WHERE d.source = ANY(%s)", (sources,))
        known = {row[0]: tuple(row[1:4]) for row in rows}
        stats = {row[0]: FileStat(*row[4:]) for row in rows if row[4] is not None}
        return known, stats

    def has_documents_under(self, folder: str) -> bool:
        # sources starting with "folder/": the range ["folder/", "folder0"), "0" being the character after "/"
        return bool(
            self._rows(
                "SELECT 1 FROM qa.documents WHERE source >= %s AND source < %s LIMIT 1",
                (folder + "/", folder + "0"),
            )
        )

    # -- passages and units -----------------------------------------------------

    def passages(self, ids: Sequence[int]) -> dict[int, PassageRecord]:
        rows = self._rows(f"{_PASSAGES} WHERE p.id = ANY(%s)", ([int(i) for i in ids],))
        return {row[0]: PassageRecord(*row) for row in rows}

    def all_passages(self) -> Iterator[PassageRecord]:
        for row in self._rows(f"{_PASSAGES} ORDER BY p.doc_id, p.char_start, p.char_end"):
            yield PassageRecord(*row)

    def units(self, ids: Sequence[int]) -> dict[int, UnitRecord]:
        rows = self._rows(f"{_UNITS} WHERE id = ANY(%s)", ([int(i) for i in ids],))
        return {row[0]: UnitRecord(*row) for row in rows}

    def all_units(self) -> Iterator[UnitRecord]:
        for row in self._rows(f"{_UNITS} ORDER BY id"):
            yield UnitRecord(*row)

    def units_of(self, passage_ids: Sequence[int]) -> list[list[int]]:
        return self._linked("passage_id", "unit_id", passage_ids)

    def passages_of(self, unit_ids: Sequence[int]) -> list[list[int]]:
        return self._linked("unit_id", "passage_id", unit_ids)

    def _linked(self, key: str, other: str, ids: Sequence[int]) -> list[list[int]]:
        wanted = [int(i) for i in ids]
        found: dict[int, list[int]] = {}
        rows = self._rows(
            f"SELECT {key}, {other} FROM qa.passage_units WHERE {key} = ANY(%s) ORDER BY {key}, {other}", (wanted,)
        )
        for k, o in rows:
            found.setdefault(k, []).append(o)
        return [found.get(i, []) for i in wanted]

    def passages_within(self, doc_ids: Within) -> np.ndarray:
        if doc_ids is None:
            rows = self._rows("SELECT id FROM qa.passages ORDER BY id")
        else:
            rows = self._rows("SELECT id FROM qa.passages WHERE doc_id = ANY(%s) ORDER BY id", (sorted(doc_ids),))
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    def sources_of(self, passage_ids: Sequence[int]) -> dict[int, str]:
        return dict(
            self._rows(
                "SELECT p.id, d.source FROM qa.passages p JOIN qa.documents d ON d.id = p.doc_id WHERE p.id = ANY(%s)",
                ([int(i) for i in passage_ids],),
            )
        )

    def passage_hashes(self, passage_ids: Sequence[int]) -> dict[int, str]:
        # a database written before hashes were kept has no column (and a failed query would end the snapshot)
        if not self._rows(_HAS_HASHES)[0][0]:
            return {}
        rows = self._rows(
            "SELECT id, text_sha256 FROM qa.passages WHERE id = ANY(%s) AND text_sha256 IS NOT NULL",
            ([int(i) for i in passage_ids],),
        )
        return dict(rows)

    def segmentation(self, doc_id: int) -> StoredSegmentation:
        units = tuple(UnitRecord(*row) for row in self._rows(f"{_UNITS} WHERE doc_id = %s ORDER BY id", (doc_id,)))
        passages = tuple(
            PassageRecord(*row) for row in self._rows(f"{_PASSAGES} WHERE p.doc_id = %s ORDER BY p.ordinal", (doc_id,))
        )
        members = tuple(tuple(m) for m in self.units_of([p.id for p in passages]))
        return StoredSegmentation(units, passages, members)

    def warm(self) -> None:
        pass


class PgCatalogEditor(PgCatalog):
    """The catalog inside the writer's transaction. New rows get ids from the sequences up front and are
    buffered, then sent with COPY (one round trip per table, not per row) before anything is read."""

    def __init__(self, conn, settings: BM25Settings) -> None:
        super().__init__(conn)
        self.settings = settings
        self.unit_doc: dict[int, int] = {}
        """Document of each unit added in this update (the vectors are stored with it, for filters)."""
        self._pools: dict[str, list[int]] = {}
        self._buffer: dict[str, list[tuple]] = {}
        self._buffered = 0
        vocabulary: dict[str, int] = {}
        terms: list[str] = []
        self._postings = {kind: pg_lexical.SegmentBuffer(vocabulary, terms) for kind in pg_lexical.KINDS}
        self._rows_of = dict.fromkeys(pg_lexical.KINDS, 0)
        self.copy_seconds = 0.0
        """Time spent sending rows (COPY), for the build's timings."""

    _COLUMNS = {
        "documents": "id, source, path, sha256, encoding, n_chars, indexed_at",
        "passages": "id, doc_id, ordinal, char_start, char_end, line_start, line_end, n_tokens, n_terms, text, "
        "text_sha256",
        "units": "id, doc_id, char_start, char_end, n_tokens, n_terms, text",
        "passage_units": "passage_id, unit_id, doc_id",
    }

    _TYPES = {
        "documents": ("int8", "text", "text", "text", "text", "int8", "float8"),
        "passages": ("int8", "int8", "int4", "int8", "int8", "int4", "int4", "int4", "int4", "text", "text"),
        "units": ("int8", "int8", "int8", "int8", "int4", "int4", "text"),
        "passage_units": ("int8", "int8", "int8"),
    }

    def _rows(self, sql: str, params=None) -> list[tuple]:
        self.flush()
        return super()._rows(sql, params)

    def _ids(self, table: str, n: int) -> list[int]:
        pool = self._pools.setdefault(table, [])
        while len(pool) < n:
            more = self.conn.execute(
                f"SELECT nextval('qa.{table}_id_seq') FROM generate_series(1, %s)", (max(n, _ID_BLOCK),)
            ).fetchall()
            pool.extend(sorted(r[0] for r in more))
        taken, self._pools[table] = pool[:n], pool[n:]
        return taken

    def flush(self, segments: bool = False) -> None:
        """Send the buffered rows; segments: also write the buffered postings as BM25 segments (else only
        a kind with _SEGMENT_ROWS rows: an update's segment is written once, at its end)."""
        t = time.perf_counter()
        buffer, self._buffer, self._buffered = self._buffer, {}, 0
        for table, rows in buffer.items():
            if rows:
                copy_rows(self.conn, f"qa.{table} ({self._COLUMNS[table]})", self._TYPES[table], rows)
        for kind, postings in self._postings.items():
            if len(postings) and (segments or self._rows_of[kind] >= _SEGMENT_ROWS):
                pg_lexical.write_segment(self.conn, kind, postings.rows())
                self._rows_of[kind] = 0
        self.copy_seconds += time.perf_counter() - t

    def delete_documents(self, doc_ids: Sequence[int]) -> None:
        ids = [int(i) for i in doc_ids]
        if not ids:
            return
        self.flush()
        pg_lexical.record_removed(self.conn, ids)
        for table in ("passage_units", "passages", "units"):
            self.conn.execute(f"DELETE FROM qa.{table} WHERE doc_id = ANY(%s)", (ids,))
        if self._has_vectors():
            self.conn.execute("DELETE FROM qa.unit_vectors WHERE doc_id = ANY(%s)", (ids,))
        self.conn.execute("DELETE FROM qa.documents WHERE id = ANY(%s)", (ids,))

    def _has_vectors(self) -> bool:
        return self.conn.execute("SELECT to_regclass('qa.unit_vectors')").fetchone()[0] is not None

    def add_document(self, document: Document, segmentation: Segmentation, indexed_at: float) -> AddedDocument:
        doc = document
        (doc_id,) = self._ids("documents", 1)
        buffer = self._buffer
        buffer.setdefault("documents", []).append(
            (doc_id, doc.source, str(doc.path), doc.sha256, doc.encoding, len(doc.text), indexed_at)
        )
        unit_ids = self._ids("units", len(segmentation.units))
        for uid, unit in zip(unit_ids, segmentation.units):
            text = doc.text[unit.char_start : unit.char_end]
            terms = row_terms(text, self.settings)
            n_terms = sum(terms.values())
            buffer.setdefault("units", []).append(
                (uid, doc_id, unit.char_start, unit.char_end, unit.n_tokens, n_terms, text)
            )
            self._postings["unit"].add(uid, terms, n_terms)
            self.unit_doc[uid] = doc_id
        passage_ids = self._ids("passages", len(segmentation.chunks))
        for pid, chunk, members in zip(passage_ids, segmentation.chunks, segmentation.members):
            terms = row_terms(chunk.text, self.settings)
            n_terms = sum(terms.values())
            buffer.setdefault("passages", []).append(
                (
                    pid,
                    doc_id,
                    chunk.ordinal,
                    chunk.char_start,
                    chunk.char_end,
                    chunk.line_start,
                    chunk.line_end,
                    chunk.n_tokens,
                    n_terms,
                    chunk.text,
                    text_hash(chunk.text),
                )
            )
            self._postings["passage"].add(pid, terms, n_terms)
            buffer.setdefault("passage_units", []).extend((pid, unit_ids[m], doc_id) for m in sorted(set(members)))
        self._buffered += len(segmentation.units) + len(segmentation.chunks)
        self._rows_of["unit"] += len(segmentation.units)
        self._rows_of["passage"] += len(segmentation.chunks)
        if self._buffered >= _FLUSH_ROWS:
            self.flush()
        return AddedDocument(doc_id, tuple(unit_ids), tuple(passage_ids))

    def move_documents(self, paths: Mapping[str, str]) -> None:
        self.flush()
        for source, path in paths.items():
            self.conn.execute("UPDATE qa.documents SET path = %s WHERE source = %s", (path, source))

    def record_file_stats(self, stats: Mapping[str, FileStat], forget: Sequence[str]) -> None:
        self.flush()
        gone = list(forget) + list(stats)
        self.conn.execute("DELETE FROM qa.file_stats WHERE source = ANY(%s)", (gone,))
        copy_rows(
            self.conn,
            "qa.file_stats (source, size, mtime_ns, ctime_ns, inode)",
            ("text", "int8", "int8", "int8", "int8"),
            [(source, st.size, st.mtime_ns, st.ctime_ns, st.inode) for source, st in stats.items()],
        )
