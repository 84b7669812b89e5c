"""The PostgreSQL store's BM25: each term's postings packed in one row per segment, scored in numpy.

A row of qa.lexical_postings holds one term's postings in one segment of one kind (passages or units):
the rows' ids, the term's count in each and each row's length in terms, packed little-endian in bytea
as narrow as they fit (ids as uint32 offsets from the row's id_base, counts and lengths as uint16: 8
bytes a posting; wider when they do not fit, which the byte length tells). A build writes a segment
per batch of rows; an update writes a segment for the rows it adds and records the ids of the rows it
removes in qa.lexical_removed, so neither touches the postings of other rows. A query reads one row
per segment and query term (an index look-up each, not a row per posting) and scores the postings
with index/bm25_scoring.py's term_scores: the embedded store's formula, in the same precision, with
the row count, mean length and document frequencies of the rows as they are. Past MAX_SEGMENTS
segments the writer merges the smaller ones; once removed rows pass REMOVED_SHARE of the rows it
rewrites all of them without the removed rows.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence

import numpy as np

from index.bm25_scoring import ScoredColumns, length_norm, term_scores
from index.lexical import BM25Settings, analyze, robertson_idf
from index.ranking import top_positive
from index.stores.base import Hits, Within
from index.stores.pg_copy import copy_rows

KINDS = {"passage": "passages", "unit": "units"}
"""Each BM25 index's kind and the catalog table of its rows."""
FORMAT = "segments-1"
"""qa.meta's lexical_format: an index written before segments has postings rows instead, and must be rebuilt."""
MAX_SEGMENTS = 8
REMOVED_SHARE = 0.05
CACHE_POSTINGS = 2_000_000
"""Scored postings a snapshot keeps per kind (12 bytes each), least recently used dropped."""
TABLES = """
CREATE TABLE IF NOT EXISTS qa.lexical_postings (
    kind text NOT NULL, segment int NOT NULL, term text NOT NULL, n int NOT NULL, id_base bigint NOT NULL,
    ids bytea NOT NULL, tfs bytea NOT NULL, lens bytea NOT NULL, PRIMARY KEY (kind, term, segment)
);
CREATE TABLE IF NOT EXISTS qa.lexical_segments (
    kind text NOT NULL, segment int NOT NULL, n_postings bigint NOT NULL, PRIMARY KEY (kind, segment)
);
CREATE TABLE IF NOT EXISTS qa.lexical_removed (kind text NOT NULL, id bigint NOT NULL, PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS qa.lexical_stats (
    kind text PRIMARY KEY, n_rows bigint NOT NULL, total_length bigint NOT NULL
);
"""
_UNCOMPRESSED = (
    "SELECT count(*) FROM pg_attribute WHERE attrelid = 'qa.lexical_postings'::regclass "
    "AND attname IN ('ids', 'tfs', 'lens') AND attstorage <> 'e'"
)


def create_tables(conn) -> None:
    """The tables, with the packed columns stored uncompressed (a query reads them whole; decompressing
    megabytes per term would cost more than the disk saved). ALTER TABLE runs only on a new table."""
    conn.execute(TABLES)
    if conn.execute(_UNCOMPRESSED).fetchone()[0]:
        for column in ("ids", "tfs", "lens"):
            conn.execute(f"ALTER TABLE qa.lexical_postings ALTER COLUMN {column} SET STORAGE EXTERNAL")


def clear(conn) -> None:
    """Every segment, removal and statistic (a full rebuild); DELETE, so open readers keep theirs."""
    for table in ("lexical_postings", "lexical_segments", "lexical_removed", "lexical_stats"):
        conn.execute(f"DELETE FROM qa.{table}")


Packed = tuple[str, int, int, bytes, bytes, bytes]
"""A term's postings as stored: (term, n, id_base, ids, tfs, lens)."""


def _narrow(values: np.ndarray) -> bytes:
    return values.astype("<u2" if values.max(initial=0) < 1 << 16 else "<i4").tobytes()


def _pack(term: str, ids: np.ndarray, tfs: np.ndarray, lens: np.ndarray) -> Packed:
    base = int(ids.min())
    offsets = ids - base
    packed = offsets.astype("<u4") if offsets.max() < 1 << 32 else ids.astype("<i8")
    return term, int(ids.shape[0]), base, packed.tobytes(), _narrow(tfs), _narrow(lens)


def _widened(data: bytes, n: int) -> np.ndarray:
    return np.frombuffer(data, "<u2" if len(data) == 2 * n else "<i4")


def _unpack(n: int, base: int, ids: bytes, tfs: bytes, lens: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids int64, term counts, row lengths) of a stored row."""
    row_ids = np.frombuffer(ids, "<u4").astype(np.int64) + base if len(ids) == 4 * n else np.frombuffer(ids, "<i8")
    return row_ids, _widened(tfs, n), _widened(lens, n)


class SegmentBuffer:
    """A writer's postings of one kind, held compactly (4 arrays) until they are written as a segment."""

    def __init__(self, vocabulary: dict[str, int], terms: list[str]) -> None:
        self._vocabulary = vocabulary  # shared by both kinds of one writer
        self._terms = terms
        self._term = array("i")
        self._id = array("q")
        self._tf = array("i")
        self._len = array("i")

    def __len__(self) -> int:
        return len(self._id)

    def add(self, row_id: int, counts: dict[str, int], length: int) -> None:
        vocabulary, terms = self._vocabulary, self._terms
        for term, tf in counts.items():
            index = vocabulary.get(term)
            if index is None:
                index = vocabulary[term] = len(terms)
                terms.append(term)
            self._term.append(index)
            self._tf.append(tf)
        n = len(counts)
        self._id.extend([row_id] * n)
        self._len.extend([length] * n)

    def rows(self) -> Iterable[Packed]:
        """Each term's packed postings, in term order (the primary key's), then emptied."""
        term = np.frombuffer(self._term, np.int32)
        order = np.argsort(term, kind="stable")
        term, ids = term[order], np.frombuffer(self._id, np.int64)[order]
        tfs, lens = np.frombuffer(self._tf, np.int32)[order], np.frombuffer(self._len, np.int32)[order]
        self._term, self._id, self._tf, self._len = array("i"), array("q"), array("i"), array("i")
        starts = np.flatnonzero(np.r_[True, term[1:] != term[:-1]]) if term.size else np.zeros(0, np.int64)
        ends = np.r_[starts[1:], term.size]
        named = sorted(zip((self._terms[t] for t in term[starts]), starts.tolist(), ends.tolist()))
        for name, start, end in named:
            yield _pack(name, ids[start:end], tfs[start:end], lens[start:end])


def write_segment(conn, kind: str, rows: Iterable[Packed]) -> None:
    """A new segment of kind from packed rows."""
    segment = _next_segment(conn, kind)
    _record_segment(conn, kind, segment, _copy_segment_rows(conn, kind, segment, rows))


def _next_segment(conn, kind: str) -> int:
    return conn.execute(
        "SELECT coalesce(max(segment), 0) + 1 FROM qa.lexical_segments WHERE kind = %s", (kind,)
    ).fetchone()[0]


def _copy_segment_rows(conn, kind: str, segment: int, rows: Iterable[Packed]) -> int:
    """COPY rows into the segment; the number of postings they hold."""
    n = 0

    def tagged():
        nonlocal n
        for row in rows:
            n += row[1]
            yield kind, segment, *row

    copy_rows(
        conn,
        "qa.lexical_postings (kind, segment, term, n, id_base, ids, tfs, lens)",
        ("text", "int4", "text", "int4", "int8", "bytea", "bytea", "bytea"),
        tagged(),
    )
    return n


def _record_segment(conn, kind: str, segment: int, n_postings: int) -> None:
    if n_postings:
        conn.execute("INSERT INTO qa.lexical_segments VALUES (%s, %s, %s)", (kind, segment, n_postings))


def record_removed(conn, doc_ids: Sequence[int]) -> None:
    """Remember the rows of these documents as removed, before the catalog forgets them."""
    for kind, table in KINDS.items():
        conn.execute(
            f"INSERT INTO qa.lexical_removed (kind, id) SELECT %s, id FROM qa.{table} WHERE doc_id = ANY(%s) "
            "ON CONFLICT DO NOTHING",
            (kind, list(doc_ids)),
        )


def finish(conn) -> dict[str, str]:
    """After an update's writes: each kind's statistics, and its segments merged when there are too many
    or too many removed rows. Returns what was merged, per kind ("" when nothing)."""
    done = {}
    for kind, table in KINDS.items():
        n_rows, total = conn.execute(f"SELECT count(*), coalesce(sum(n_terms), 0) FROM qa.{table}").fetchone()
        conn.execute(
            "INSERT INTO qa.lexical_stats VALUES (%s, %s, %s) "
            "ON CONFLICT (kind) DO UPDATE SET n_rows = excluded.n_rows, total_length = excluded.total_length",
            (kind, n_rows, total),
        )
        segments = conn.execute(
            "SELECT segment, n_postings FROM qa.lexical_segments WHERE kind = %s ORDER BY n_postings DESC, segment",
            (kind,),
        ).fetchall()
        removed = conn.execute("SELECT count(*) FROM qa.lexical_removed WHERE kind = %s", (kind,)).fetchone()[0]
        if removed and removed > REMOVED_SHARE * max(n_rows, 1):
            _merge(conn, kind, [s for s, _ in segments], purge=True)
            done[kind] = f"all {len(segments)} segments, {removed} removed rows dropped"
        elif len(segments) > MAX_SEGMENTS:
            _merge(conn, kind, [s for s, _ in segments[1:]], purge=False)
            done[kind] = f"{len(segments) - 1} smaller segments"
        else:
            done[kind] = ""
    conn.execute(
        "INSERT INTO qa.meta (key, value) VALUES ('lexical_format', %s) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (FORMAT,),
    )
    return done


_MERGE_TERMS = 2000
"""Terms read (with all their segments' postings) per round of a merge: bounds the writer's memory."""


def _merge(conn, kind: str, segments: list[int], purge: bool) -> None:
    """Rewrite these segments as one, without the removed rows; purge (all segments): forget the removals."""
    if len(segments) < 2 and not purge:
        return
    removed = np.sort(
        np.asarray(
            [r[0] for r in conn.execute("SELECT id FROM qa.lexical_removed WHERE kind = %s", (kind,)).fetchall()],
            dtype=np.int64,
        )
    )
    terms = [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT term FROM qa.lexical_postings WHERE kind = %s AND segment = ANY(%s) ORDER BY term",
            (kind, segments),
        ).fetchall()
    ]
    merged, n_postings = _next_segment(conn, kind), 0  # numbered past every segment, old ones included
    for start in range(0, len(terms), _MERGE_TERMS):
        batch = terms[start : start + _MERGE_TERMS]
        columns: dict[str, list] = {}
        for term, *stored in conn.execute(
            "SELECT term, n, id_base, ids, tfs, lens FROM qa.lexical_postings WHERE kind = %s AND segment = ANY(%s) "
            "AND term = ANY(%s) ORDER BY term, segment",
            (kind, segments, batch),
            binary=True,
        ):
            columns.setdefault(term, []).append(_unpack(*stored))
        rows = []
        for term in batch:
            ids, tfs, lens = (np.concatenate(part) for part in zip(*columns[term]))
            if removed.size:
                keep = ~np.isin(ids, removed)
                if not keep.any():
                    continue
                ids, tfs, lens = ids[keep], tfs[keep], lens[keep]
            rows.append(_pack(term, ids, tfs, lens))
        n_postings += _copy_segment_rows(conn, kind, merged, rows)  # a batch at a time: bounded memory
    conn.execute("DELETE FROM qa.lexical_postings WHERE kind = %s AND segment = ANY(%s)", (kind, segments))
    conn.execute("DELETE FROM qa.lexical_segments WHERE kind = %s AND segment = ANY(%s)", (kind, segments))
    if purge:
        conn.execute("DELETE FROM qa.lexical_removed WHERE kind = %s", (kind,))
    _record_segment(conn, kind, merged, n_postings)


def check_format(conn) -> bool:
    """Whether the index's BM25 is in segments (False: written by an older qa, to be rebuilt)."""
    row = conn.execute("SELECT value FROM qa.meta WHERE key = 'lexical_format'").fetchone()
    return row is not None and row[0] == FORMAT


class PgLexicalQuery:
    """A query's BM25 score of every row (one float32 array over the rows' id range), computed once."""

    def __init__(self, lexical: PgLexical, text: str) -> None:
        self._lexical = lexical
        self._scores = lexical.scores(analyze(text, lexical.settings))

    def top(self, k: int, within: Within = None) -> Hits:
        lex = self._lexical
        if k <= 0 or self._scores.size == 0:
            return Hits.empty()
        allowed = None if within is None else lex.positions_within(within)
        rows = top_positive(self._scores, k, allowed)
        return Hits(rows.astype(np.int64) + lex.low, self._scores[rows])

    def score(self, ids: Sequence[int]) -> np.ndarray:
        lex = self._lexical
        at = np.asarray(ids, dtype=np.int64).reshape(-1) - lex.low
        inside = (at >= 0) & (at < self._scores.size)
        out = np.zeros(at.shape[0], dtype=np.float32)
        out[inside] = self._scores[at[inside]]
        return out


class PgLexical:
    """BM25 over the passages or units of one snapshot: statistics and removals read once, postings per term."""

    def __init__(self, conn, kind: str, settings: BM25Settings) -> None:
        self.conn = conn
        self.kind = kind
        self.table = KINDS[kind]
        self.settings = settings
        stats = conn.execute("SELECT n_rows, total_length FROM qa.lexical_stats WHERE kind = %s", (kind,)).fetchone()
        self._n, total = (int(stats[0]), int(stats[1])) if stats else (0, 0)
        self.avg_length = total / self._n if self._n else math.nan  # as lengths.mean(): exact sum, one division
        low, high = conn.execute(f"SELECT min(id), max(id) FROM qa.{self.table}").fetchone()
        self.low, self.size = (int(low), int(high) - int(low) + 1) if low is not None else (0, 0)
        removed = [r[0] for r in conn.execute("SELECT id FROM qa.lexical_removed WHERE kind = %s", (kind,))]
        self._dead = None
        """Rows (by position in the id range) whose postings are still stored but that were removed."""
        if removed:
            at = np.asarray(removed, dtype=np.int64) - self.low
            self._dead = np.zeros(self.size, dtype=bool)
            self._dead[at[(at >= 0) & (at < self.size)]] = True
        self._cache = ScoredColumns(CACHE_POSTINGS)
        """term -> (positions, scores) of its live postings."""
        self._norm_table = np.zeros(0, dtype=np.float64)

    @property
    def num_docs(self) -> int:
        return self._n

    def _columns(self, terms: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(positions, scores) of each term's live postings, from the cache or read in one statement."""
        out, missing = {}, []
        for term in dict.fromkeys(terms):
            column = self._cache.get(term)
            if column is None:
                missing.append(term)
            else:
                out[term] = column
        if not missing:
            return out
        parts: dict[str, list] = {t: [] for t in missing}
        for term, *stored in self.conn.execute(
            "SELECT term, n, id_base, ids, tfs, lens FROM qa.lexical_postings WHERE kind = %s AND term = ANY(%s) "
            "ORDER BY segment",
            (self.kind, missing),
            binary=True,
        ):
            parts[term].append(_unpack(*stored))
        s = self.settings
        for term, found in parts.items():
            column = self._score(found, s)
            out[term] = column
            self._cache.put(term, column)
        return out

    def _score(self, found: list, s: BM25Settings) -> tuple[np.ndarray, np.ndarray]:
        if not found:
            return np.zeros(0, np.intp), np.zeros(0, np.float32)
        ids, tfs, lens = (np.concatenate(p) if len(p) > 1 else p[0] for p in zip(*found))
        at = ids - self.low
        live = (at >= 0) & (at < self.size)  # rows outside the live id range were removed
        if self._dead is not None:
            live[live] = ~self._dead[at[live]]
        if not live.all():
            at, tfs, lens = at[live], tfs[live], lens[live]
        df = int(at.shape[0])
        if df == 0:
            return np.zeros(0, np.intp), np.zeros(0, np.float32)
        return at.astype(np.intp), term_scores(s.method, tfs, self._norms(int(lens.max()))[lens], df, self._n, s.k1)

    def _norms(self, longest: int) -> np.ndarray:
        """length_norm of every row length up to longest, by length: a gather per posting instead of the
        arithmetic (the same values: each is computed from the same length the same way)."""
        norms = self._norm_table
        if norms.shape[0] <= longest:
            s = self.settings
            norms = length_norm(np.arange(max(longest + 1, 256), dtype=np.int64), self.avg_length, s.k1, s.b)
            self._norm_table = norms
        return norms

    def scores(self, terms: Sequence[str]) -> np.ndarray:
        """Every row's score (by position in the id range); a repeated query term counts again, as in
        the embedded store, and terms are added in the query's order, in float32, as there."""
        scores = np.zeros(self.size, dtype=np.float32)
        columns = self._columns(terms)
        for term in terms:
            at, values = columns[term]
            scores[at] += values  # a row appears once per term
        return scores

    def positions_within(self, doc_ids: Within) -> np.ndarray:
        ids = self.conn.execute(
            f"SELECT id FROM qa.{self.table} WHERE doc_id = ANY(%s)", (sorted(int(d) for d in doc_ids),)
        ).fetchall()
        return np.asarray([r[0] for r in ids], dtype=np.int64) - self.low

    def frequencies(self, terms: Sequence[str]) -> dict[str, int]:
        return {term: int(column[0].shape[0]) for term, column in self._columns(terms).items()}

    def document_frequency(self, term: str) -> int:
        return self.frequencies([term])[term]

    def idf(self, terms: Sequence[str]) -> dict[str, float]:
        df = self.frequencies(terms)
        return {t: robertson_idf(self._n, df.get(t, 0)) for t in terms}

    def query(self, text: str) -> PgLexicalQuery:
        return PgLexicalQuery(self, text)

    def close(self) -> None:
        pass
