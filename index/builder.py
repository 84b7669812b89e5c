"""Builds or incrementally updates an index: stat files (reading only changed ones), re-embed what changed, swap in atomically."""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from index import store
from index.chunker import ChunkSettings, Segmentation, segment_texts
from index.documents import (
    DEFAULT_MAX_FILE_BYTES,
    EXTRACTORS,
    Document,
    FileStat,
    Hint,
    Scan,
    Skipped,
    changed_files,
    corpus_root,
    extractor_of,
    scan_files,
)
from index.embedder import Embedder
from index.errors import CancelledError, EmptyCorpusError
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
from index.vectors import build_dense, update_dense

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): stage is 'scan', 'embed' or 'save'."""


@dataclass(frozen=True)
class BuildReport:
    """What an index run did, for the one-line summary."""

    index_dir: Path
    new: int
    changed: int
    unchanged: int
    removed: int
    skipped: tuple[Skipped, ...]
    n_documents: int
    n_chunks: int
    embedded_chunks: int
    seconds: float
    rebuilt_because: str | None = None
    timings: dict = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.new} new, {self.changed} changed, {self.unchanged} unchanged, "
            f"{self.removed} removed, {len(self.skipped)} skipped"
        )


_POINT_AT_DOCUMENTS = "Point qa at a folder with .txt, .md, .rst, .org, .adoc, .html, .pdf or .docx files."
_SEGMENT_BATCH = 256
"""Documents whose sentences are tokenised in one call (the tokenizer's per-call cost dominates for short texts)."""


def _noop(stage: str, done: int, total: int) -> None:
    return None


def scan_corpus(
    paths: Sequence[Path], max_bytes: int = DEFAULT_MAX_FILE_BYTES, progress: Progress = _noop
) -> tuple[Path, list[Document], list[Skipped]]:
    """Read every supported file under paths; unreadable ones are skipped with a reason."""
    paths = [Path(p) for p in paths]
    scan = scan_files(paths, corpus_root(paths), {}, max_bytes, progress)
    return scan.root, scan.documents, scan.skipped


@dataclass(frozen=True)
class Changes:
    """What an incremental `qa index` would do now: files to embed and documents to drop."""

    new: int
    changed: int
    removed: int

    def __bool__(self) -> bool:
        return bool(self.new or self.changed or self.removed)

    def summary(self) -> str:
        return f"{self.new} new, {self.changed} changed, {self.removed} removed"


def pending_changes(
    paths: Sequence[Path],
    conn,
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
    manifest: store.Manifest | None = None,
    changed_paths: Collection[str] | None = None,
) -> Changes:
    """Compare the files under paths with an index's documents (conn: its SQLite, open), writing nothing.

    Files whose stat equals the recorded one are not read; others are read and hashed, so a file
    touched with the same bytes is not counted as changed. With the index's manifest, files whose
    extractor's version differs from the one recorded there count as changed. changed_paths: only
    those are compared, as in build_index.
    """
    paths = [Path(p) for p in paths]
    root = corpus_root(paths)
    outdated = outdated_extractors(manifest)
    hint = changed_files(paths, root, changed_paths) if changed_paths is not None and not outdated else None
    recorded, recorded_stats, hint, _ = _recorded(conn, hint)
    known, stats = _forget_outdated(recorded, recorded_stats, outdated)
    new, changed, removed = _classify(
        known, scan_files(paths, root, stats, max_bytes, only=hint.files if hint else None)
    )
    return Changes(len(new), len(changed), len(removed))


def changes_since(
    generation: Path,
    paths: Sequence[Path],
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
    changed_paths: Collection[str] | None = None,
) -> Changes:
    """pending_changes against one generation folder, on a read-only connection of its own (the
    watches of the chat and of `qa index --watch`)."""
    with contextlib.closing(store.connect(generation / store.SQLITE, readonly=True)) as conn:
        return pending_changes(
            paths, conn, max_bytes, store.Manifest.from_path(generation / store.MANIFEST), changed_paths
        )


def _recorded(conn, hint: Hint | None) -> tuple[dict[str, tuple[int, str, str]], dict[str, FileStat], Hint | None, int]:
    """store.read_documents, of the hinted sources alone when there is a hint, plus the hint still
    usable (None when a path it says is gone held documents: a folder deleted or moved away, which
    only a walk can follow) and how many documents it leaves unlooked-at."""
    if hint is not None:
        recorded, stats = store.read_documents(conn, hint.sources)
        if not any(store.has_documents_under(conn, gone) for gone in hint.missing if gone not in recorded):
            return recorded, stats, hint, conn.execute("SELECT count(*) FROM documents").fetchone()[0] - len(recorded)
    return (*store.read_documents(conn), None, 0)


def outdated_extractors(manifest: store.Manifest | None) -> frozenset[str]:
    """The kinds of file whose extractor changed since the index was built (documents.EXTRACTORS)."""
    if manifest is None:
        return frozenset()
    return frozenset(kind for kind, version in EXTRACTORS.items() if manifest.extractors.get(kind, 1) != version)


def _forget_outdated(known: dict[str, tuple[int, str, str]], stats: dict[str, FileStat], outdated: frozenset[str]):
    """known and stats with the documents of outdated extractors marked for reading again: no stat
    (so the scan reads them) and no hash (so they count as changed)."""
    if not outdated:
        return known, stats
    stale = {src for src in known if extractor_of(src) in outdated}
    return (
        {src: (row[0], "" if src in stale else row[1], row[2]) for src, row in known.items()},
        {src: st for src, st in stats.items() if src not in stale},
    )


def _classify(known: dict[str, tuple[int, str, str]], found: Scan) -> tuple[list[Document], list[Document], list[str]]:
    """The documents read that are new, those whose bytes changed, and the known sources now gone
    (known: store.read_documents's source -> (id, sha256, path))."""
    new = [d for d in found.documents if d.source not in known]
    changed = [d for d in found.documents if d.source in known and known[d.source][1] != d.sha256]
    read = {d.source for d in found.documents}
    removed = [src for src in known if src not in found.unchanged and src not in read]
    return new, changed, removed


def build_index(
    paths: Sequence[Path],
    index_dir: Path,
    embedder: Embedder,
    chunking: ChunkSettings = ChunkSettings(),
    bm25: BM25Settings = BM25Settings(),
    *,
    rebuild: bool = False,
    wait: bool = False,
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
    progress: Progress = _noop,
    cancelled: Callable[[], bool] = lambda: False,
    documents: tuple[Path, list[Document], list[Skipped]] | None = None,
    changed_paths: Collection[str] | None = None,
    remove_replaced: bool = True,
) -> BuildReport:
    """Index paths into index_dir; only new or changed files are embedded unless rebuild is set.

    changed_paths: the paths that changed since the index was last brought up to date, from the
    operating system's change notifications (index/changes.py). An update then looks at those
    files alone and trusts the index for every other file; when they name something only a walk
    can judge (a folder moved, a symbolic link) every file is compared as without them.

    The previous generation stays live until the new one is complete, so a crash or Ctrl-C
    at any point leaves the old index loadable. It is then removed, unless remove_replaced is
    False: the caller removes it later (store.clean_up_in_background), or the next run does.
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    with store.write_lock(index_dir, wait=wait):
        store.clean_leftovers(index_dir)
        root = documents[0] if documents is not None else corpus_root([Path(p) for p in paths])
        previous = store.read_manifest(index_dir)
        reason = None
        if previous is not None and not rebuild:
            reason = store.expected_mismatch(
                previous, fingerprint=embedder.fingerprint(), chunking=chunking, backend=embedder.backend
            )
            if reason is None and previous.bm25 != asdict(bm25):
                reason = "BM25 settings changed"
            if reason is None and previous.root != str(root):
                reason = f"corpus root moved from {previous.root}"
        incremental = previous is not None and not rebuild and reason is None
        outdated = outdated_extractors(previous) if incremental else frozenset()
        hint = None
        if changed_paths is not None and incremental and not outdated and documents is None:
            hint = changed_files([Path(p) for p in paths], root, changed_paths)

        def scan(known: dict[str, FileStat], only: list[str] | None = None) -> Scan:
            # Files whose stat equals the one recorded by the previous run are not read again.
            if documents is not None:
                return Scan(root, documents[1], {}, {}, documents[2])
            return scan_files([Path(p) for p in paths], root, known, max_bytes, progress, only)

        tmp = store.new_generation_dir(index_dir)
        flush = EarlyFlush()
        try:
            report = _write_generation(
                tmp,
                index_dir,
                paths,
                scan,
                embedder,
                chunking,
                bm25,
                incremental=incremental,
                outdated=outdated,
                hint=hint,
                progress=progress,
                cancelled=cancelled,
                timings=timings,
                flush=flush,
            )
            if cancelled():
                raise CancelledError("Indexing cancelled; the previous index is unchanged.")
            t = time.perf_counter()
            flush.wait()
            store.commit_generation(index_dir, tmp, flush.durable)
            t_clean = time.perf_counter()
            if remove_replaced:
                store.clean_leftovers(index_dir)
            timings["commit"] = time.perf_counter() - t
            timings["commit_cleanup"] = time.perf_counter() - t_clean  # removing the replaced generation
        except BaseException:
            flush.wait()
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return BuildReport(
        index_dir=index_dir,
        seconds=time.perf_counter() - started,
        rebuilt_because=reason if previous is not None and not incremental else None,
        timings=timings,
        **report,
    )


def _write_generation(
    tmp: Path,
    index_dir: Path,
    paths: Sequence[Path],
    scan: Callable[[dict[str, FileStat], list[str] | None], Scan],
    embedder: Embedder,
    chunking: ChunkSettings,
    bm25: BM25Settings,
    *,
    incremental: bool,
    outdated: frozenset[str],
    progress: Progress,
    cancelled: Callable[[], bool],
    timings: dict[str, float],
    flush: EarlyFlush,
    hint: Hint | None = None,
) -> dict:
    db_path = tmp / store.SQLITE
    live = None
    others = 0  # documents a hinted update trusts without looking at them
    t = time.perf_counter()
    if incremental:
        live = store.current_generation(index_dir)
        copying = BackgroundCopy(live / store.SQLITE, db_path)
        try:  # the live generation never changes under the write lock: read it while it is copied
            with contextlib.closing(store.connect(live / store.SQLITE, readonly=True)) as previous:
                recorded, recorded_stats, hint, others = _recorded(previous, hint)
                known, stats = _forget_outdated(recorded, recorded_stats, outdated)
            found = scan(stats, hint.files if hint is not None else None)
        finally:
            copying.join()
        flush.start(db_path)  # the copy reaches the disk while we embed
    else:
        known, found = {}, scan({}, None)
        recorded = known
    timings["scan"] = time.perf_counter() - t  # with the copy of meta.sqlite beside it
    conn = store.connect(db_path, readonly=False)
    try:
        if not found.documents and not found.unchanged and not others:
            raise EmptyCorpusError(
                f"No indexable documents under {', '.join(str(p) for p in paths)} ({len(found.skipped)} skipped).",
                _POINT_AT_DOCUMENTS,
            )
        docs = found.documents
        new, changed, removed = _classify(known, found)
        if outdated:  # same bytes, read again by a newer extractor or splitter: kept if they index the same
            again = [d for d in changed if recorded[d.source][1] == d.sha256]
            kept = _indexed_the_same(conn, again, recorded, embedder, chunking, progress, cancelled)
            changed = [d for d in changed if d.source not in kept]
        unchanged = len(docs) - len(new) - len(changed) + len(found.unchanged) + others
        # Paths may have moved (same source, new absolute path): keep them current.
        paths_now = {**{d.source: str(d.path) for d in docs}, **{src: str(p) for src, p in found.unchanged.items()}}
        conn.executemany(
            "UPDATE documents SET path = ? WHERE source = ?",
            [(p, src) for src, p in paths_now.items() if src in known and known[src][2] != p],
        )
        drop_docs = [known[s][0] for s in removed] + [known[d.source][0] for d in changed]
        dropped_ids: list[int] = []
        dropped_chunks: list[int] = []
        for doc_id in drop_docs:
            dropped_ids.extend(r[0] for r in conn.execute("SELECT id FROM units WHERE doc_id = ?", (doc_id,)))
            dropped_chunks.extend(r[0] for r in conn.execute("SELECT id FROM chunks WHERE doc_id = ?", (doc_id,)))
        conn.executemany(
            "DELETE FROM chunk_units WHERE chunk_id IN (SELECT id FROM chunks WHERE doc_id = ?)",
            [(i,) for i in drop_docs],
        )
        conn.executemany("DELETE FROM units WHERE doc_id = ?", [(i,) for i in drop_docs])
        conn.executemany("DELETE FROM chunks WHERE doc_id = ?", [(i,) for i in drop_docs])
        conn.executemany("DELETE FROM documents WHERE id = ?", [(i,) for i in drop_docs])

        t = time.perf_counter()
        to_embed: list[tuple[Document, Segmentation]] = []
        pending = new + changed
        for start in range(0, len(pending), _SEGMENT_BATCH):
            if cancelled():
                raise CancelledError("Indexing cancelled; the previous index is unchanged.")
            batch = pending[start : start + _SEGMENT_BATCH]
            to_embed.extend(
                zip(batch, segment_texts([doc.text for doc in batch], embedder, chunking, embedder.max_tokens))
            )
        timings["chunk"] = time.perf_counter() - t

        unit_rows: list[tuple[int, str]] = []
        chunk_rows: list[tuple[int, str]] = []
        now = time.time()
        for doc, seg in to_embed:
            cur = conn.execute(
                "INSERT INTO documents(source, path, sha256, encoding, n_chars, indexed_at) VALUES (?,?,?,?,?,?)",
                (doc.source, str(doc.path), doc.sha256, doc.encoding, len(doc.text), now),
            )
            doc_id = cur.lastrowid
            unit_ids = []
            for unit in seg.units:
                text = doc.text[unit.char_start : unit.char_end]
                u = conn.execute(
                    "INSERT INTO units(doc_id, char_start, char_end, n_tokens, text) VALUES (?,?,?,?,?)",
                    (doc_id, unit.char_start, unit.char_end, unit.n_tokens, text),
                )
                unit_ids.append(u.lastrowid)
                unit_rows.append((u.lastrowid, text))
            for chunk, members in zip(seg.chunks, seg.members):
                c = conn.execute(
                    "INSERT INTO chunks(doc_id, ordinal, char_start, char_end, line_start, line_end, n_tokens, text) VALUES (?,?,?,?,?,?,?,?)",
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
                chunk_rows.append((c.lastrowid, chunk.text))

        new_ids = np.asarray([uid for uid, _ in unit_rows], dtype=np.int64)
        ids = _row_ids(conn, "chunks", live, store.BM25_IDS, dropped_chunks, [cid for cid, _ in chunk_rows])
        if not ids.shape[0]:  # e.g. files of zero-width spaces: readable, but nothing the model sees
            raise EmptyCorpusError(
                f"No indexable text under {', '.join(str(p) for p in paths)}: the readable files contain no visible words.",
                _POINT_AT_DOCUMENTS,
            )
        unit_ids = _row_ids(conn, "units", live, store.UNIT_IDS, dropped_ids, new_ids.tolist())
        lexical = [
            _LexicalJob("chunks", ids, store.BM25_DIR, store.BM25_IDS, dict(chunk_rows)),
            _LexicalJob("units", unit_ids, store.UNIT_BM25_DIR, store.UNIT_IDS, dict(unit_rows)),
        ]
        # BM25 needs no vectors: it runs in a thread beside the embedding (onnxruntime releases the
        # GIL), from the new rows' texts in memory (and, for an update, the live postings).
        background = _BackgroundBM25(tmp, live, lexical, bm25, flush)
        try:
            t = time.perf_counter()
            vectors = _embed_in_batches([text for _, text in unit_rows], embedder, progress, cancelled)
            timings["embed"] = time.perf_counter() - t

            t = time.perf_counter()
            progress("save", 0, 1)
            # Exact FAISS for small corpora, IVF-PQ beyond index.vectors.FLAT_MAX (chosen by size).
            if live is not None:
                old_kind = store.Manifest.from_path(live / store.MANIFEST).faiss_kind
                faiss_kind = update_dense(
                    live, old_kind, tmp, np.asarray(dropped_ids, dtype=np.int64), new_ids, vectors
                )
            else:
                faiss_kind = build_dense(vectors, new_ids, tmp)
            flush.start(tmp / store.FAISS, final=True)

            t_bm25 = time.perf_counter()
            done = background.join()
            timings["save_bm25_wait"] = time.perf_counter() - t_bm25
            for job in lexical:
                if job.table not in done:  # a live index without saved postings that fit
                    shutil.rmtree(tmp / job.bm25_dir, ignore_errors=True)  # never write into linked files
                    _write_lexical(conn, job.table, job.ids, tmp, live, job.bm25_dir, job.ids_file, bm25)
            timings["save_bm25"] = background.seconds + time.perf_counter() - t_bm25 - timings["save_bm25_wait"]
        finally:
            background.join(quiet=True)
        store.write_file_stats(
            conn, found.stats, forget=removed + [d.source for d in docs if d.source not in found.stats]
        )
        conn.commit()
        n_docs = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
    finally:
        conn.close()
    manifest = store.Manifest(
        format_version=store.DELTA_FORMAT_VERSION
        if has_delta(tmp / store.BM25_DIR) or has_delta(tmp / store.UNIT_BM25_DIR)
        else store.FORMAT_VERSION,
        model=embedder.name,
        model_fingerprint=embedder.fingerprint(),
        dim=embedder.dim,
        backend=embedder.backend,
        chunking=asdict(chunking),
        bm25=asdict(bm25),
        roots=[str(Path(p).resolve()) for p in paths],
        root=str(found.root),
        created_at=time.time(),
        n_documents=int(n_docs),
        n_chunks=int(ids.shape[0]),
        faiss_kind=faiss_kind,
        files=store.list_files(tmp),
        extractors=dict(EXTRACTORS),
    )
    (tmp / store.MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    progress("save", 1, 1)
    timings["save"] = time.perf_counter() - t
    return {
        "skipped": tuple(found.skipped),
        "new": len(new),
        "changed": len(changed),
        "unchanged": unchanged,
        "removed": len(removed),
        "n_documents": int(n_docs),
        "n_chunks": int(ids.shape[0]),
        "embedded_chunks": len(unit_rows),
    }


def _indexed_the_same(
    conn,
    docs: list[Document],
    recorded: dict[str, tuple[int, str, str]],
    embedder: Embedder,
    chunking: ChunkSettings,
    progress: Progress,
    cancelled: Callable[[], bool],
) -> set[str]:
    """Sources of the documents whose stored passages are what segmenting their text now makes (5,183
    SciFact abstracts: 12 s, against minutes to embed them again)."""
    kept: set[str] = set()
    for start in range(0, len(docs), _SEGMENT_BATCH):
        if cancelled():
            raise CancelledError("Indexing cancelled; the previous index is unchanged.")
        progress("recheck", start, len(docs))
        batch = docs[start : start + _SEGMENT_BATCH]
        segments = segment_texts([d.text for d in batch], embedder, chunking, embedder.max_tokens)
        kept.update(
            d.source for d, seg in zip(batch, segments) if _indexed_as(conn, recorded[d.source][0], d.text, seg)
        )
    progress("recheck", len(docs), len(docs))
    return kept


def _indexed_as(conn, doc_id: int, text: str, seg: Segmentation) -> bool:
    """Whether a document's stored units and chunks are exactly what this segmentation of its text makes."""
    units = conn.execute(
        "SELECT id, char_start, char_end, n_tokens, text FROM units WHERE doc_id = ? ORDER BY id", (doc_id,)
    ).fetchall()
    if [row[1:] for row in units] != [
        (u.char_start, u.char_end, u.n_tokens, text[u.char_start : u.char_end]) for u in seg.units
    ]:
        return False
    chunks = conn.execute(
        "SELECT id, ordinal, char_start, char_end, line_start, line_end, n_tokens, text FROM chunks WHERE doc_id = ? ORDER BY ordinal",
        (doc_id,),
    ).fetchall()
    if [row[1:] for row in chunks] != [
        (c.ordinal, c.char_start, c.char_end, c.line_start, c.line_end, c.n_tokens, c.text) for c in seg.chunks
    ]:
        return False
    position = {row[0]: i for i, row in enumerate(units)}
    members = [
        sorted(position[u] for (u,) in conn.execute("SELECT unit_id FROM chunk_units WHERE chunk_id = ?", (row[0],)))
        for row in chunks
    ]
    return members == [sorted(m) for m in seg.members]


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


def _row_ids(conn, table: str, live: Path | None, ids_file: str, dropped: list[int], inserted: list[int]) -> np.ndarray:
    """Ascending ids of the table's rows after this run: the live generation's minus dropped plus
    inserted (inserted ids are new AUTOINCREMENT values), without reading every id from SQLite."""
    if live is None:
        return np.asarray([r[0] for r in conn.execute(f"SELECT id FROM {table} ORDER BY id")], dtype=np.int64)
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
    conn,
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
            return [conn.execute(f"SELECT text FROM {table} WHERE id = ?", (int(i),)).fetchone()[0] for i in wanted]

        if _write_from_postings(tmp, live, bm25_dir, ids_file, ids, texts_of, bm25):
            return
        previous_ids = np.load(live / ids_file, allow_pickle=False)
        previous = load_row_terms(live / bm25_dir, previous_ids.shape[0])
        if previous is not None:
            rows = update_row_terms(previous, previous_ids, ids, texts_of, bm25)
    if rows is None:
        rows = row_terms(analyze_rows([r[0] for r in conn.execute(f"SELECT text FROM {table} ORDER BY id")], bm25))
    _save_bm25(tmp, bm25_dir, ids_file, ids, rows, bm25)


def _embed_in_batches(
    texts: list[str], embedder: Embedder, progress: Progress, cancelled: Callable[[], bool], batch: int = 256
) -> np.ndarray:
    """Embed longest-first in batches (less padding), reporting progress and honouring cancel."""
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    for start in range(0, len(order), batch):
        if cancelled():
            raise CancelledError("Indexing cancelled; the previous index is unchanged.")
        progress("embed", start, len(texts))
        idx = order[start : start + batch]
        out[idx] = embedder.embed([texts[i] for i in idx])
    progress("embed", len(texts), len(texts))
    return out
