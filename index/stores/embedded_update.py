"""Writing a new generation of the embedded store: SQLite copied or made anew, FAISS and BM25 updated beside it.

An update copies the live SQLite (in a thread, while the files are compared), edits the copy, writes
the vectors as a delta beside the live FAISS base or a new index (index/vectors.py), writes BM25 in a
thread beside the embedding (index/lexical_delta.py, lexical_build.py), then renames the folder into
place and repoints CURRENT (store.commit_generation). Until then readers see the live generation only.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from index import store
from index.files import BackgroundCopy, EarlyFlush
from index.lexical import BM25Settings
from index.lexical_build import (
    RowTerms,
    analyze_rows,
    has_delta,
    load_row_terms,
    row_terms,
    update_postings,
    update_row_terms,
    write_bm25,
)
from index.lexical_delta import write_delta
from index.manifest import BuildInfo, Manifest
from index.stores.sqlite_catalog import SqliteCatalog, SqliteCatalogEditor
from index.vectors import build_dense, update_dense


class GenerationUpdate:
    """One writer's new generation (index/stores/base.py StoreUpdate), made under the folder's write lock."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self.previous: Manifest | None = store.read_manifest(index_dir)
        self.timings: dict[str, float] = {}
        self._tmp: Path | None = None
        self._live: Path | None = None
        self._bm25 = BM25Settings()
        self._copying: BackgroundCopy | None = None
        self._flush = EarlyFlush()
        self._conn = None
        self._editor: SqliteCatalogEditor | None = None
        self._jobs: list[_LexicalJob] = []
        self._background: _BackgroundBM25 | None = None
        self._vector_ids: list[np.ndarray] = []
        self._vectors: list[np.ndarray] = []
        self._committed = False

    def start(self, keep: bool, bm25: BM25Settings) -> None:
        self._bm25 = bm25
        self._tmp = store.new_generation_dir(self.index_dir)
        if keep:
            self._live = store.current_generation(self.index_dir)
            self._copying = BackgroundCopy(self._live / store.SQLITE, self._tmp / store.SQLITE)

    @contextlib.contextmanager
    def read_previous(self) -> Iterator[SqliteCatalog]:
        # the live generation never changes under the write lock: it is read while it is copied
        with contextlib.closing(store.connect(self._live / store.SQLITE, readonly=True)) as conn:
            yield SqliteCatalog(conn, cache_links=False)

    def catalog(self) -> SqliteCatalogEditor:
        if self._editor is None:
            if self._copying is not None:
                self._copying.join()
                self._copying = None
                self._flush.start(self._tmp / store.SQLITE)  # the copy reaches the disk while we embed
            self._conn = store.connect(self._tmp / store.SQLITE, readonly=False)
            self._editor = SqliteCatalogEditor(self._conn)
        return self._editor

    def texts_written(self) -> None:
        """BM25 needs no vectors: it runs in a thread beside the embedding (onnxruntime releases the
        GIL), from the new rows' texts in memory (and, for an update, the live postings)."""
        editor = self.catalog()
        live = self._live
        ids = _row_ids(editor, "chunks", live, store.BM25_IDS, editor.dropped_passages, list(editor.fresh_passages))
        unit_ids = _row_ids(editor, "units", live, store.UNIT_IDS, editor.dropped_units, list(editor.fresh_units))
        self._jobs = [
            _LexicalJob("chunks", ids, store.BM25_DIR, store.BM25_IDS, editor.fresh_passages),
            _LexicalJob("units", unit_ids, store.UNIT_BM25_DIR, store.UNIT_IDS, editor.fresh_units),
        ]
        self._background = _BackgroundBM25(self._tmp, live, self._jobs, self._bm25, self._flush)

    def add_vectors(self, unit_ids: np.ndarray, vectors: np.ndarray) -> None:
        self._vector_ids.append(np.asarray(unit_ids, dtype=np.int64))
        self._vectors.append(vectors)

    def finish(self, built: BuildInfo) -> Manifest:
        tmp, live, editor = self._tmp, self._live, self.catalog()
        if self._background is None:
            self.texts_written()
        new_ids = self._vector_ids[0] if len(self._vector_ids) == 1 else np.concatenate(self._vector_ids or [[]])
        vectors = self._vectors[0] if len(self._vectors) == 1 else _stack(self._vectors, built.dim)
        # Exact FAISS for small corpora, IVF-PQ beyond index.vectors.FLAT_MAX (chosen by size).
        if live is not None:
            old_kind = Manifest.from_path(live / store.MANIFEST).faiss_kind
            dropped = np.asarray(editor.dropped_units, dtype=np.int64)
            faiss_kind = update_dense(live, old_kind, tmp, dropped, new_ids.astype(np.int64), vectors)
        else:
            faiss_kind = build_dense(vectors, new_ids.astype(np.int64), tmp)
        self._flush.start(tmp / store.FAISS, final=True)

        t_bm25 = time.perf_counter()
        done = self._background.join()
        self.timings["save_bm25_wait"] = time.perf_counter() - t_bm25
        for job in self._jobs:
            if job.table not in done:  # a live index without saved postings that fit
                shutil.rmtree(tmp / job.bm25_dir, ignore_errors=True)  # never write into linked files
                _write_lexical(editor, job.table, job.ids, tmp, live, job.bm25_dir, job.ids_file, self._bm25)
        self.timings["save_bm25"] = (
            self._background.seconds + time.perf_counter() - t_bm25 - self.timings["save_bm25_wait"]
        )
        self._conn.commit()
        n_docs = editor.count_documents()
        self._conn.close()
        self._conn = None
        delta = has_delta(tmp / store.BM25_DIR) or has_delta(tmp / store.UNIT_BM25_DIR)
        manifest = Manifest(
            **asdict(built),
            format_version=store.DELTA_FORMAT_VERSION if delta else store.FORMAT_VERSION,
            created_at=time.time(),
            n_documents=int(n_docs),
            n_chunks=int(self._jobs[0].ids.shape[0]),
            faiss_kind=faiss_kind,
            files=store.list_files(tmp),
        )
        (tmp / store.MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        return manifest

    def commit(self, remove_replaced: bool = True) -> None:
        t = time.perf_counter()
        self._flush.wait()
        store.commit_generation(self.index_dir, self._tmp, self._flush.durable)
        self._committed = True
        t_clean = time.perf_counter()
        if remove_replaced:
            store.clean_leftovers(self.index_dir)
        self.timings["commit"] = time.perf_counter() - t
        self.timings["commit_cleanup"] = time.perf_counter() - t_clean  # removing the replaced generation

    def close(self) -> None:
        """Release everything; an uncommitted generation is removed (the live one stays as it was)."""
        if self._copying is not None:
            self._copying.join()
            self._copying = None
        if self._background is not None:
            self._background.join(quiet=True)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if not self._committed and self._tmp is not None:
            self._flush.wait()
            shutil.rmtree(self._tmp, ignore_errors=True)


def _stack(parts: list[np.ndarray], dim: int) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros((0, dim), dtype=np.float32)


@dataclass(frozen=True)
class _LexicalJob:
    """One BM25 index to write: its rows and where they go."""

    table: str
    ids: np.ndarray
    bm25_dir: str
    ids_file: str
    fresh: dict[int, str]
    """Texts of the rows inserted this run, by id."""


class _BackgroundBM25:
    """Writes BM25 indexes in a background thread: a first build's from the new rows' texts, an update's
    from the live generation's postings plus the new rows."""

    def __init__(
        self, tmp: Path, live: Path | None, jobs: list[_LexicalJob], bm25: BM25Settings, flush: EarlyFlush
    ) -> None:
        self.done: set[str] = set()
        self.seconds = 0.0
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(tmp, live, jobs, bm25, flush), name="qa-bm25", daemon=True
        )
        self._thread.start()

    def _run(
        self, tmp: Path, live: Path | None, jobs: list[_LexicalJob], bm25: BM25Settings, flush: EarlyFlush
    ) -> None:
        started = time.perf_counter()
        try:
            for job in jobs:

                def texts_of(wanted: np.ndarray, fresh: dict[int, str] = job.fresh) -> list[str]:
                    return [fresh[int(i)] for i in wanted]

                try:
                    if live is None:  # a first build: every row was inserted this run
                        _save_bm25(
                            tmp,
                            job.bm25_dir,
                            job.ids_file,
                            job.ids,
                            row_terms(analyze_rows(texts_of(job.ids), bm25)),
                            bm25,
                        )
                        written = True
                    else:
                        written = _write_from_postings(tmp, live, job.bm25_dir, job.ids_file, job.ids, texts_of, bm25)
                except KeyError:  # a new row that was not inserted this run: leave it to the SQLite path
                    written = False
                if written:
                    flush.start(tmp / job.bm25_dir, final=True)
                    self.done.add(job.table)
        except BaseException as exc:  # re-raised in the building thread by join()
            self._error = exc
        self.seconds = time.perf_counter() - started

    def join(self, quiet: bool = False) -> set[str]:
        self._thread.join()
        if self._error is not None and not quiet:
            error, self._error = self._error, None
            raise error
        return self.done


def _row_ids(
    catalog: SqliteCatalogEditor, table: str, live: Path | None, ids_file: str, dropped: list[int], inserted: list[int]
) -> np.ndarray:
    """Ascending ids of the table's rows after this run: the live generation's minus dropped plus
    inserted (inserted ids are new AUTOINCREMENT values), without reading every id from SQLite."""
    if live is None:
        return catalog.all_ids(table)
    previous = np.load(live / ids_file, allow_pickle=False)
    ids = np.concatenate(
        [previous[~np.isin(previous, np.asarray(dropped, dtype=np.int64))], np.asarray(inserted, dtype=np.int64)]
    )
    return ids if np.all(ids[1:] > ids[:-1]) else np.unique(ids)


def _write_from_postings(
    tmp: Path,
    live: Path,
    bm25_dir: str,
    ids_file: str,
    ids: np.ndarray,
    texts_of: Callable[[np.ndarray], list[str]],
    bm25: BM25Settings,
) -> bool:
    """Write one BM25 index (rows = ids, ascending) from the live generation's saved postings, analysing
    only the new rows (texts_of(their ids)); False, writing nothing, when the live folder has none that fit.
    A small change is written as a delta beside the live base (index/lexical_delta.py), which is linked:
    no posting is rescored."""
    previous_ids = np.load(live / ids_file, allow_pickle=False)
    if write_delta(live / bm25_dir, tmp / bm25_dir, previous_ids, ids, texts_of, bm25):
        np.save(tmp / ids_file, ids, allow_pickle=False)
        return True
    updated = update_postings(live / bm25_dir, previous_ids, ids, texts_of, bm25)
    if updated is None:
        return False
    _save_bm25(
        tmp,
        bm25_dir,
        ids_file,
        ids,
        updated.rows,
        bm25,
        vocab_from=live / bm25_dir if updated.same_vocab else None,
        postings=updated.postings,
    )
    return True


def _save_bm25(
    tmp: Path, bm25_dir: str, ids_file: str, ids: np.ndarray, rows: RowTerms, bm25: BM25Settings, **options
) -> None:
    """One BM25 folder and the ids of its rows, written together (options: write_bm25's)."""
    write_bm25(tmp / bm25_dir, rows, bm25, **options)
    np.save(tmp / ids_file, ids, allow_pickle=False)


def _write_lexical(
    catalog: SqliteCatalogEditor,
    table: str,
    ids: np.ndarray,
    tmp: Path,
    live: Path | None,
    bm25_dir: str,
    ids_file: str,
    bm25: BM25Settings,
) -> None:
    """Write one BM25 index (rows = ids, ascending). Rows the live generation has keep their postings
    (or, in a folder written before term counts, their terms) from it, so an update analyses only the
    new rows (index/lexical_build.py)."""
    rows = None
    if live is not None:

        def texts_of(wanted: np.ndarray) -> list[str]:
            return catalog.texts(table, wanted)

        if _write_from_postings(tmp, live, bm25_dir, ids_file, ids, texts_of, bm25):
            return
        previous_ids = np.load(live / ids_file, allow_pickle=False)
        previous = load_row_terms(live / bm25_dir, previous_ids.shape[0])
        if previous is not None:
            rows = update_row_terms(previous, previous_ids, ids, texts_of, bm25)
    if rows is None:
        rows = row_terms(analyze_rows(catalog.all_texts(table), bm25))
    _save_bm25(tmp, bm25_dir, ids_file, ids, rows, bm25)
