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
import os
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from index.errors import IndexCorruptError, IndexLockedError, IndexMissingError, StoreUnavailableError
from index.lexical import BM25Settings
from index.manifest import FORMAT_VERSION, BuildInfo, Manifest
from index.stores import pg_lexical
from index.stores.base import Catalog, Hits, Within
from index.stores.pg_catalog import PgCatalog, PgCatalogEditor, create_tables
from index.stores.pg_copy import copy_rows
from index.stores.pg_lexical import PgLexical

EF_SEARCH = 400
"""HNSW candidates per query (raised to k when a query asks for more): benchmarks/bench_postgres.py
measures recall@10 against exact search at 1M vectors: 0.913 at 200, 0.96 at 400."""
_LOCK_KEY = zlib.crc32(b"qa-store-writer")
"""The advisory lock a writer holds (per database)."""
_MISSING_HINT = "Build it: qa index PATH --store URL"
_OLD_FORMAT = "The index in this database keeps its BM25 postings in an older layout."
_REBUILD_HINT = "Rebuild it: qa index --rebuild PATH --store URL"
MAINTENANCE_WORK_MEM = "1GB"
"""Memory for building the HNSW index (QA_PG_MAINTENANCE_WORK_MEM): a graph larger than this is built
much more slowly, partly on disk. About 2 KB per vector with the default m = 16."""


def maintenance_work_mem() -> str:
    return os.environ.get("QA_PG_MAINTENANCE_WORK_MEM") or MAINTENANCE_WORK_MEM


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
        self._recent: dict[int, np.ndarray] = {}
        """The last search's vectors by id: the engine scores those units next (a snapshot's rows never change)."""

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
        arrays = [_array(v) for v in vectors]
        self._recent = dict(zip(ids, arrays))
        scores = np.stack(arrays) @ q
        ids_arr = np.asarray(ids, dtype=np.int64)
        order = np.lexsort((ids_arr, -scores))
        return Hits(ids_arr[order], scores[order].astype(np.float32))

    def score(self, qvec: np.ndarray, ids: Sequence[int]) -> np.ndarray:
        return self.vectors(ids) @ np.asarray(qvec, dtype=np.float32)

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        wanted = [int(i) for i in ids]
        if not wanted:
            return np.zeros((0, self.dim), dtype=np.float32)
        recent = self._recent
        found = {i: recent[i] for i in wanted if i in recent}
        rest = [i for i in wanted if i not in found]
        if rest:
            rows = self.conn.execute(
                "SELECT id, embedding FROM qa.unit_vectors WHERE id = ANY(%s)", (rest,), binary=True
            ).fetchall()
            found.update((i, _array(v)) for i, v in rows)
        missing = [i for i in wanted if i not in found]
        if missing:
            raise KeyError(f"no vector for unit {missing[0]}")
        return np.stack([found[i] for i in wanted])

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
        self.passage_lexical = PgLexical(conn, "passage", settings)
        self.unit_lexical = PgLexical(conn, "unit", settings)

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
        self.merged: dict[str, str] = {}
        """What finish merged of the BM25 segments, per kind."""

    def start(self, keep: bool, bm25: BM25Settings) -> None:
        self._bm25 = bm25
        self.conn.execute("BEGIN")
        if not keep:  # DELETE, not TRUNCATE: readers keep seeing the old rows until commit (MVCC)
            for table in ("documents", "passages", "units", "passage_units", "file_stats"):
                self.conn.execute(f"DELETE FROM qa.{table}")
            if _has_table(self.conn, "qa.unit_vectors"):
                self.conn.execute("DELETE FROM qa.unit_vectors")
            pg_lexical.clear(self.conn)
            # BM25 postings as rows, before segments: nothing reads them any more
            self.conn.execute("DROP TABLE IF EXISTS qa.passage_postings, qa.unit_postings")
        elif self.previous is not None and not pg_lexical.check_format(self.conn):
            raise IndexCorruptError(_OLD_FORMAT, _REBUILD_HINT)

    @contextlib.contextmanager
    def read_previous(self) -> Iterator[Catalog]:
        yield PgCatalog(self.conn)  # the transaction has changed nothing yet

    def catalog(self) -> PgCatalogEditor:
        if self._editor is None:
            self._editor = PgCatalogEditor(self.conn, self._bm25)
        return self._editor

    def texts_written(self) -> None:
        self.catalog().flush(segments=True)
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
        editor.flush(segments=True)
        t = time.perf_counter()
        merged = pg_lexical.finish(self.conn)
        self.timings["bm25_segments"] = time.perf_counter() - t
        self.merged = merged
        self._vector_table(built.dim)
        t = time.perf_counter()
        # built once the first rows are in (faster than row by row), then kept up to date by inserts
        self.conn.execute("SELECT set_config('maintenance_work_mem', %s, true)", (maintenance_work_mem(),))
        self.conn.execute(
            "CREATE INDEX IF NOT EXISTS unit_vectors_hnsw ON qa.unit_vectors USING hnsw (embedding vector_ip_ops)"
        )
        self.timings["hnsw"] = time.perf_counter() - t
        t = time.perf_counter()
        # fresh statistics, so the planner uses the indexes from the first query on
        self.conn.execute("ANALYZE qa.lexical_postings, qa.passages, qa.units, qa.passage_units")
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
            if not pg_lexical.check_format(conn):
                raise IndexCorruptError(_OLD_FORMAT, _REBUILD_HINT)
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
