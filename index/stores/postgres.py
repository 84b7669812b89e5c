"""The PostgreSQL + pgvector store: one database holds the catalog, the vectors (HNSW) and BM25 postings.

A Snapshot is one REPEATABLE READ, READ ONLY transaction: every query of a reader sees the version that
was live when it opened, whatever writers commit meanwhile (MVCC). A writer holds a session advisory
lock (two writers are serialised) and writes one transaction: readers see all of it at commit, or
nothing (a crash or an exception rolls it back). The manifest is a row of qa.meta, read in the same
transaction as the data it describes.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from index.errors import IndexCorruptError, IndexLockedError, IndexMissingError, StoreUnavailableError
from index.lexical import BM25Settings, analyze, robertson_idf
from index.manifest import FORMAT_VERSION, BuildInfo, Manifest
from index.stores.base import Catalog, Hits, Within
from index.stores.pg_catalog import PgCatalog, PgCatalogEditor, copy_rows, create_tables

EF_SEARCH = 200
"""HNSW candidates per query (raised to k when a query asks for more): benchmarks/bench_postgres.py
measures recall@10 against exact search at this value."""
_LOCK_KEY = zlib.crc32(b"qa-store-writer")
"""The advisory lock a writer holds (per database)."""
_MISSING_HINT = "Build it: qa index PATH --store URL"


def _connect(url: str, **options):
    import psycopg  # deferred: the client library loads only for this store

    try:
        conn = psycopg.connect(url, **options)
    except psycopg.OperationalError as exc:
        detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise StoreUnavailableError(
            f"Cannot connect to the PostgreSQL store {_safe(url)} ({detail}).",
            "Check that the server runs and the URL (user, host, port, database) is right.",
        ) from exc
    return conn


def _safe(url: str) -> str:
    """The URL without a password."""
    scheme, _, rest = url.partition("://")
    auth, at, host = rest.rpartition("@")
    return f"{scheme}://{auth.split(':')[0]}@{host}" if at else url


def _register_vector(conn) -> None:
    from pgvector.psycopg import register_vector  # deferred: with the client library

    register_vector(conn)


def _array(vector) -> np.ndarray:
    """A pgvector value as float32 (pgvector.Vector, or an array on connections that return those)."""
    return np.asarray(vector.to_numpy() if hasattr(vector, "to_numpy") else vector, dtype=np.float32)


def _has_table(conn, name: str) -> bool:
    return conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None


def _read_manifest(conn) -> Manifest | None:
    if not _has_table(conn, "qa.meta"):
        return None
    row = conn.execute("SELECT value FROM qa.meta WHERE key = 'manifest'").fetchone()
    if row is None:
        return None
    try:
        return Manifest(**json.loads(row[0]))
    except (ValueError, TypeError) as exc:
        raise IndexCorruptError(f"The index manifest in the database is unreadable ({exc}).", _MISSING_HINT) from exc


class PgVectors:
    """Unit vectors in qa.unit_vectors (pgvector `vector`, HNSW with inner product); scores are recomputed
    in float32 from the stored vectors, so search and score agree exactly."""

    def __init__(self, conn, dim: int) -> None:
        self.conn = conn
        self._dim = dim
        self._ef = None

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM qa.unit_vectors").fetchone()[0]

    def search(self, qvec: np.ndarray, k: int, within: Within = None) -> Hits:
        if k <= 0:
            return Hits.empty()
        ef = max(EF_SEARCH, k)
        if ef != self._ef:  # iterative scans keep a filtered search going until k rows pass the filter
            self.conn.execute(f"SET hnsw.ef_search = {int(ef)}; SET hnsw.iterative_scan = relaxed_order")
            self._ef = ef
        q = np.asarray(qvec, dtype=np.float32)
        if within is None:
            rows = self.conn.execute(
                "SELECT id, embedding FROM qa.unit_vectors ORDER BY embedding <#> %s LIMIT %s", (q, k), binary=True
            ).fetchall()
        else:
            rows = self.conn.execute(
                "SELECT id, embedding FROM qa.unit_vectors WHERE doc_id = ANY(%s) ORDER BY embedding <#> %s LIMIT %s",
                (sorted(within), q, k),
                binary=True,
            ).fetchall()
        return self._ranked([r[0] for r in rows], [r[1] for r in rows], q)

    def _ranked(self, ids: list[int], vectors: list, q: np.ndarray) -> Hits:
        if not ids:
            return Hits.empty()
        scores = np.stack([_array(v) for v in vectors]) @ q
        ids_arr = np.asarray(ids, dtype=np.int64)
        order = np.lexsort((ids_arr, -scores))
        return Hits(ids_arr[order], scores[order].astype(np.float32))

    def score(self, qvec: np.ndarray, ids: Sequence[int]) -> np.ndarray:
        return self.vectors(ids) @ np.asarray(qvec, dtype=np.float32)

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        wanted = [int(i) for i in ids]
        if not wanted:
            return np.zeros((0, self.dim), dtype=np.float32)
        found = dict(
            self.conn.execute("SELECT id, embedding FROM qa.unit_vectors WHERE id = ANY(%s)", (wanted,), binary=True)
        )
        missing = [i for i in wanted if i not in found]
        if missing:
            raise KeyError(f"no vector for unit {missing[0]}")
        return np.stack([_array(found[i]) for i in wanted])

    def close(self) -> None:
        pass


class PgLexicalQuery:
    """BM25 of one query, scored in SQL from the postings: each term's posting scores are bm25s's lucene
    formula in float32 (as index/lexical_delta.py term_scores), summed per row."""

    def __init__(self, lexical: PgLexical, text: str) -> None:
        self._lexical = lexical
        terms = analyze(text, lexical.settings)
        df = lexical.frequencies(terms)
        n = lexical.num_docs
        # duplicated query terms count again, as in the embedded store
        self._terms = [t for t in terms if df.get(t, 0) > 0]
        self._weights = [float(np.float32(robertson_idf(n, df[t]))) for t in self._terms]

    def _select(self, where: str, params: dict, tail: str = "") -> list[tuple]:
        lex = self._lexical
        k1, b = lex.settings.k1, lex.settings.b
        sql = (
            "SELECT p.id, sum(((q.w * (p.tf::float8 / ((%(k1)s * (%(one_b)s + %(b)s * p.len::float8 / %(avg)s)) "
            "+ p.tf::float8)))::float4)::float8)::float4 AS s "
            f"FROM unnest(%(terms)s::text[], %(w)s::float8[]) AS q(term, w) JOIN qa.{lex.table} p ON p.term = q.term "
            f"WHERE p.term = ANY(%(terms)s) {where} GROUP BY p.id {tail}"
        )
        values = dict(params, k1=k1, b=b, one_b=1 - b, avg=lex.avg_length, terms=self._terms, w=self._weights)
        return lex.conn.execute(sql, values).fetchall()

    def top(self, k: int, within: Within = None) -> Hits:
        if not self._terms or k <= 0:
            return Hits.empty()
        where, params = ("AND p.doc_id = ANY(%(docs)s)", {"docs": sorted(within)}) if within is not None else ("", {})
        rows = self._select(where, dict(params, k=k), "ORDER BY s DESC, p.id LIMIT %(k)s")
        rows = [r for r in rows if r[1] > 0]
        return Hits(np.asarray([r[0] for r in rows], dtype=np.int64), np.asarray([r[1] for r in rows], np.float32))

    def score(self, ids: Sequence[int]) -> np.ndarray:
        wanted = [int(i) for i in ids]
        out = np.zeros(len(wanted), dtype=np.float32)
        if not self._terms or not wanted:
            return out
        found = dict(self._select("AND p.id = ANY(%(ids)s)", {"ids": wanted}))
        for i, row_id in enumerate(wanted):
            out[i] = found.get(row_id, 0.0)
        return out


class PgLexical:
    """BM25 over qa.passages or qa.units (their postings table), N and the mean length read once per snapshot."""

    def __init__(self, conn, table: str, rows: str, settings: BM25Settings) -> None:
        self.conn = conn
        self.table = table
        self.settings = settings
        n, total = conn.execute(f"SELECT count(*), coalesce(sum(n_terms), 0) FROM qa.{rows}").fetchone()
        self._n = int(n)
        self.avg_length = total / n if n else math.nan

    @property
    def num_docs(self) -> int:
        return self._n

    def frequencies(self, terms: Sequence[str]) -> dict[str, int]:
        unique = sorted(set(terms))
        if not unique:
            return {}
        return dict(
            self.conn.execute(
                f"SELECT term, count(*) FROM qa.{self.table} WHERE term = ANY(%s) GROUP BY term", (unique,)
            ).fetchall()
        )

    def document_frequency(self, term: str) -> int:
        return self.frequencies([term]).get(term, 0)

    def idf(self, terms: Sequence[str]) -> dict[str, float]:
        df = self.frequencies(terms)
        return {t: robertson_idf(self._n, df.get(t, 0)) for t in terms}

    def query(self, text: str) -> PgLexicalQuery:
        return PgLexicalQuery(self, text)

    def close(self) -> None:
        pass


def _begin_snapshot(conn) -> None:
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")


class PgSnapshot:
    """The version live when it opened, on a connection of its own (one transaction until close)."""

    def __init__(self, url: str, conn, manifest: Manifest) -> None:
        self.url = url
        self.conn = conn
        self.manifest = manifest
        self.catalog = PgCatalog(conn)
        self.vectors = PgVectors(conn, manifest.dim)
        settings = manifest.bm25_settings()
        self.passage_lexical = PgLexical(conn, "passage_postings", "passages", settings)
        self.unit_lexical = PgLexical(conn, "unit_postings", "units", settings)

    @property
    def root(self) -> Path:
        return Path(self.manifest.root)

    @property
    def n_chunks(self) -> int:
        return self.manifest.n_chunks

    def warm(self) -> None:
        pass

    @contextlib.contextmanager
    def read_catalog(self) -> Iterator[tuple[Catalog, Manifest]]:
        """The same version on another connection (pg_export_snapshot), for another thread."""
        exported = self.conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        with contextlib.closing(_connect(self.url, autocommit=True)) as conn:
            _begin_snapshot(conn)
            conn.execute(f"SET TRANSACTION SNAPSHOT '{exported}'")
            yield PgCatalog(conn), self.manifest

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


class PgUpdate:
    """One writer's transaction (index/stores/base.py StoreUpdate)."""

    def __init__(self, conn, previous: Manifest | None) -> None:
        self.conn = conn
        self.previous = previous
        self.timings: dict[str, float] = {}
        self._editor: PgCatalogEditor | None = None
        self._bm25 = BM25Settings()
        self._committed = False

    def start(self, keep: bool, bm25: BM25Settings) -> None:
        self._bm25 = bm25
        self.conn.execute("BEGIN")
        if not keep:  # DELETE, not TRUNCATE: readers keep seeing the old rows until commit (MVCC)
            for table in ("documents", "passages", "units", "passage_units", "file_stats"):
                self.conn.execute(f"DELETE FROM qa.{table}")
            for table in ("passage_postings", "unit_postings", "unit_vectors"):
                if _has_table(self.conn, f"qa.{table}"):
                    self.conn.execute(f"DELETE FROM qa.{table}")

    @contextlib.contextmanager
    def read_previous(self) -> Iterator[Catalog]:
        yield PgCatalog(self.conn)  # the transaction has changed nothing yet

    def catalog(self) -> PgCatalogEditor:
        if self._editor is None:
            self._editor = PgCatalogEditor(self.conn, self._bm25)
        return self._editor

    def texts_written(self) -> None:
        self.catalog().flush()
        self.timings["copy_texts"] = self.catalog().copy_seconds

    def add_vectors(self, unit_ids: np.ndarray, vectors: np.ndarray) -> None:
        t = time.perf_counter()
        editor = self.catalog()
        editor.flush()
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(unit_ids):
            self._vector_table(vectors.shape[1])
            ids = np.asarray(unit_ids).tolist()
            rows = ((uid, editor.unit_doc[uid], vec) for uid, vec in zip(ids, vectors))
            copy_rows(self.conn, "qa.unit_vectors (id, doc_id, embedding)", ("int8", "int8", "vector"), rows)
        self.timings["save_vectors"] = self.timings.get("save_vectors", 0.0) + time.perf_counter() - t

    def _vector_table(self, dim: int) -> None:
        """qa.unit_vectors with vector(dim); a rebuild with another model's dimension makes it anew."""
        if _has_table(self.conn, "qa.unit_vectors"):
            current = self.conn.execute(
                "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'qa.unit_vectors'::regclass "
                "AND attname = 'embedding'"
            ).fetchone()[0]
            if current == dim:
                return
            self.conn.execute("DROP TABLE qa.unit_vectors")
        self.conn.execute(
            f"CREATE TABLE qa.unit_vectors (id bigint PRIMARY KEY, doc_id bigint NOT NULL, embedding vector({dim}))"
        )
        self.conn.execute("CREATE INDEX unit_vectors_doc ON qa.unit_vectors (doc_id)")

    def finish(self, built: BuildInfo) -> Manifest:
        editor = self.catalog()
        editor.flush()
        self._vector_table(built.dim)
        t = time.perf_counter()
        # built once the first rows are in (faster than row by row), then kept up to date by inserts
        self.conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
        self.conn.execute(
            "CREATE INDEX IF NOT EXISTS unit_vectors_hnsw ON qa.unit_vectors USING hnsw (embedding vector_ip_ops)"
        )
        self.timings["hnsw"] = time.perf_counter() - t
        t = time.perf_counter()
        # fresh statistics, so the planner reads the postings by term (not a scan) from the first query on
        self.conn.execute("ANALYZE qa.passage_postings, qa.unit_postings, qa.passages, qa.units, qa.passage_units")
        self.timings["analyze"] = time.perf_counter() - t
        manifest = Manifest(
            **asdict(built),
            format_version=FORMAT_VERSION,
            created_at=time.time(),
            n_documents=int(editor.count_documents()),
            n_chunks=int(editor.count_passages()),
            faiss_kind="pgvector-hnsw",
            files={},
        )
        self.conn.execute(
            "INSERT INTO qa.meta (key, value) VALUES ('manifest', %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (manifest.to_json(),),
        )
        return manifest

    def commit(self, remove_replaced: bool = True) -> None:
        t = time.perf_counter()
        self.conn.execute("COMMIT")
        self._committed = True
        self.timings["commit"] = time.perf_counter() - t

    def close(self) -> None:
        if not self._committed:
            with contextlib.suppress(Exception):
                self.conn.execute("ROLLBACK")


class PostgresStore:
    """An index in a PostgreSQL database (schema qa), chosen by a postgresql:// URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.location = url

    def manifest(self) -> Manifest | None:
        with contextlib.closing(_connect(self.url, autocommit=True)) as conn:
            return _read_manifest(conn)

    def open(self) -> PgSnapshot:
        conn = _connect(self.url, autocommit=True)
        try:
            _begin_snapshot(conn)
            manifest = _read_manifest(conn)
            if manifest is None:
                raise IndexMissingError(f"No index at {_safe(self.url)}.", _MISSING_HINT)
            if not _has_table(conn, "qa.unit_vectors"):
                raise IndexCorruptError(f"The index at {_safe(self.url)} has no vectors table.", _MISSING_HINT)
            _register_vector(conn)
            return PgSnapshot(self.url, conn, manifest)
        except BaseException:
            conn.close()
            raise

    @contextlib.contextmanager
    def read_catalog(self) -> Iterator[tuple[Catalog, Manifest]]:
        with contextlib.closing(_connect(self.url, autocommit=True)) as conn:
            _begin_snapshot(conn)
            manifest = _read_manifest(conn)
            if manifest is None:
                raise IndexMissingError(f"No index at {_safe(self.url)}.", _MISSING_HINT)
            yield PgCatalog(conn), manifest

    @contextlib.contextmanager
    def update(self, wait: bool = False) -> Iterator[PgUpdate]:
        conn = _connect(self.url, autocommit=True)
        try:
            if wait:
                conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
            elif not conn.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_KEY,)).fetchone()[0]:
                raise IndexLockedError(
                    f"Another process is writing the index at {_safe(self.url)}.", "Wait for it to finish."
                )
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            create_tables(conn)
            _register_vector(conn)
            update = PgUpdate(conn, _read_manifest(conn))
            try:
                yield update
            finally:
                update.close()
        finally:
            conn.close()  # ends the session: its advisory lock goes with it

    def clean_up(self, background: bool = False) -> None:
        """Nothing to remove: a failed update was rolled back, and autovacuum reclaims replaced rows."""
        return None
