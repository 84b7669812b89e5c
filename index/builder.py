"""Builds or incrementally updates an index: hash files, re-embed only what changed, swap in atomically."""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from index.chunker import ChunkSettings, Segmentation, segment_text
from index.documents import (
    DEFAULT_MAX_FILE_BYTES,
    Document,
    Skipped,
    UndecodableError,
    corpus_root,
    describe_os_error,
    iter_candidate_files,
    load_document,
)
from index.embedder import Embedder
from index.errors import CancelledError, EmptyCorpusError
from index import store
from index.lexical import BM25Settings
from index.lexical_build import analyze_rows, load_row_terms, row_terms, update_row_terms, write_bm25
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


def _noop(stage: str, done: int, total: int) -> None:
    return None


def scan_corpus(paths: Sequence[Path], max_bytes: int = DEFAULT_MAX_FILE_BYTES, progress: Progress = _noop) -> tuple[Path, list[Document], list[Skipped]]:
    """Read every supported file under paths; unreadable ones are skipped with a reason."""
    paths = [Path(p) for p in paths]
    root = corpus_root(paths)
    files, skipped = iter_candidate_files(paths)
    documents: list[Document] = []
    for i, path in enumerate(files):
        progress("scan", i, len(files))
        try:
            doc = load_document(path, root, max_bytes)
        except UndecodableError as exc:
            skipped.append(Skipped(str(path), str(exc)))
            continue
        except OSError as exc:
            skipped.append(Skipped(str(path), describe_os_error(exc)))
            continue
        if not doc.text.strip():
            skipped.append(Skipped(str(path), "empty (no text to index)"))
            continue
        documents.append(doc)
    progress("scan", len(files), len(files))
    return root, documents, skipped


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
) -> BuildReport:
    """Index paths into index_dir; only new or changed files are embedded unless rebuild is set.

    The previous generation stays live until the new one is complete, so a crash or Ctrl-C
    at any point leaves the old index loadable.
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    with store.write_lock(index_dir, wait=wait):
        store.clean_leftovers(index_dir)
        t = time.perf_counter()
        root, docs, skipped = documents if documents is not None else scan_corpus(paths, max_bytes, progress)
        timings["scan"] = time.perf_counter() - t
        if not docs:
            raise EmptyCorpusError(
                f"No indexable documents under {', '.join(str(p) for p in paths)} ({len(skipped)} skipped).",
                "Point qa at a folder with .txt, .md or .html files.",
            )
        previous = store.read_manifest(index_dir)
        reason = None
        if previous is not None and not rebuild:
            reason = store.expected_mismatch(previous, fingerprint=embedder.fingerprint(), chunking=chunking, backend=embedder.backend)
            if reason is None and previous.bm25 != asdict(bm25):
                reason = "BM25 settings changed"
            if reason is None and previous.root != str(root):
                reason = f"corpus root moved from {previous.root}"
        incremental = previous is not None and not rebuild and reason is None
        tmp = store.new_generation_dir(index_dir)
        try:
            report = _write_generation(
                tmp, index_dir, root, paths, docs, skipped, embedder, chunking, bm25,
                incremental=incremental, progress=progress, cancelled=cancelled, timings=timings,
            )
            if cancelled():
                raise CancelledError("Indexing cancelled; the previous index is unchanged.")
            t = time.perf_counter()
            store.commit_generation(index_dir, tmp)
            store.clean_leftovers(index_dir)
            timings["commit"] = time.perf_counter() - t
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return BuildReport(
        index_dir=index_dir,
        skipped=tuple(skipped),
        seconds=time.perf_counter() - started,
        rebuilt_because=reason if previous is not None and not incremental else None,
        timings=timings,
        **report,
    )


def _write_generation(
    tmp: Path, index_dir: Path, root: Path, paths: Sequence[Path], docs: list[Document], skipped: list[Skipped],
    embedder: Embedder, chunking: ChunkSettings, bm25: BM25Settings, *, incremental: bool,
    progress: Progress, cancelled: Callable[[], bool], timings: dict[str, float],
) -> dict:
    db_path = tmp / store.SQLITE
    live = None
    if incremental:
        live = store.current_generation(index_dir)
        shutil.copyfile(live / store.SQLITE, db_path)
    conn = store.connect(db_path, readonly=False)
    try:
        known = {row[0]: (row[1], row[2]) for row in conn.execute("SELECT source, id, sha256 FROM documents")}
        current = {doc.source: doc for doc in docs}
        new = [d for d in docs if d.source not in known]
        changed = [d for d in docs if d.source in known and known[d.source][1] != d.sha256]
        unchanged = len(docs) - len(new) - len(changed)
        removed = [src for src in known if src not in current]
        # Paths may have moved (same source, new absolute path): keep them current.
        conn.executemany("UPDATE documents SET path = ? WHERE source = ?", [(str(d.path), d.source) for d in docs if d.source in known])
        drop_docs = [known[s][0] for s in removed] + [known[d.source][0] for d in changed]
        dropped_ids: list[int] = []
        for doc_id in drop_docs:
            dropped_ids.extend(r[0] for r in conn.execute("SELECT id FROM units WHERE doc_id = ?", (doc_id,)))
        conn.executemany("DELETE FROM chunk_units WHERE chunk_id IN (SELECT id FROM chunks WHERE doc_id = ?)", [(i,) for i in drop_docs])
        conn.executemany("DELETE FROM units WHERE doc_id = ?", [(i,) for i in drop_docs])
        conn.executemany("DELETE FROM chunks WHERE doc_id = ?", [(i,) for i in drop_docs])
        conn.executemany("DELETE FROM documents WHERE id = ?", [(i,) for i in drop_docs])

        t = time.perf_counter()
        to_embed: list[tuple[Document, Segmentation]] = []
        for doc in new + changed:
            if cancelled():
                raise CancelledError("Indexing cancelled; the previous index is unchanged.")
            to_embed.append((doc, segment_text(doc.text, embedder, chunking, embedder.max_tokens)))
        timings["chunk"] = time.perf_counter() - t

        unit_rows: list[tuple[int, str]] = []
        now = time.time()
        for doc, seg in to_embed:
            cur = conn.execute(
                "INSERT INTO documents(source, path, sha256, encoding, n_chars, indexed_at) VALUES (?,?,?,?,?,?)",
                (doc.source, str(doc.path), doc.sha256, doc.encoding, len(doc.text), now),
            )
            doc_id = cur.lastrowid
            unit_ids = []
            for unit in seg.units:
                text = doc.text[unit.char_start:unit.char_end]
                u = conn.execute(
                    "INSERT INTO units(doc_id, char_start, char_end, n_tokens, text) VALUES (?,?,?,?,?)",
                    (doc_id, unit.char_start, unit.char_end, unit.n_tokens, text),
                )
                unit_ids.append(u.lastrowid)
                unit_rows.append((u.lastrowid, text))
            for chunk, members in zip(seg.chunks, seg.members):
                c = conn.execute(
                    "INSERT INTO chunks(doc_id, ordinal, char_start, char_end, line_start, line_end, n_tokens, text) VALUES (?,?,?,?,?,?,?,?)",
                    (doc_id, chunk.ordinal, chunk.char_start, chunk.char_end, chunk.line_start, chunk.line_end, chunk.n_tokens, chunk.text),
                )
                conn.executemany("INSERT INTO chunk_units(chunk_id, unit_id) VALUES (?, ?)", [(c.lastrowid, unit_ids[m]) for m in members])

        t = time.perf_counter()
        vectors = _embed_in_batches([text for _, text in unit_rows], embedder, progress, cancelled)
        timings["embed"] = time.perf_counter() - t

        t = time.perf_counter()
        progress("save", 0, 1)
        # Exact FAISS for small corpora, IVF-PQ beyond index.vectors.FLAT_MAX (chosen by size).
        new_ids = np.asarray([uid for uid, _ in unit_rows], dtype=np.int64)
        if live is not None:
            old_kind = store.Manifest.from_path(live / store.MANIFEST).faiss_kind
            faiss_kind = update_dense(live, old_kind, tmp, np.asarray(dropped_ids, dtype=np.int64), new_ids, vectors)
        else:
            faiss_kind = build_dense(vectors, new_ids, tmp)

        ids = np.asarray([r[0] for r in conn.execute("SELECT id FROM chunks ORDER BY id")], dtype=np.int64)
        if not ids.shape[0]:  # e.g. files of zero-width spaces: readable, but nothing the model sees
            raise EmptyCorpusError(
                f"No indexable text under {', '.join(str(p) for p in paths)}: the readable files contain no visible words.",
                "Point qa at a folder with .txt, .md or .html files.",
            )
        t_bm25 = time.perf_counter()
        _write_lexical(conn, "chunks", ids, tmp, live, store.BM25_DIR, store.BM25_IDS, bm25)
        unit_ids = np.asarray([r[0] for r in conn.execute("SELECT id FROM units ORDER BY id")], dtype=np.int64)
        _write_lexical(conn, "units", unit_ids, tmp, live, store.UNIT_BM25_DIR, store.UNIT_IDS, bm25)
        timings["save_bm25"] = time.perf_counter() - t_bm25
        conn.commit()
        n_docs = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
    finally:
        conn.close()
    manifest = store.Manifest(
        format_version=store.FORMAT_VERSION,
        model=embedder.name,
        model_fingerprint=embedder.fingerprint(),
        dim=embedder.dim,
        backend=embedder.backend,
        chunking=asdict(chunking),
        bm25=asdict(bm25),
        roots=[str(Path(p).resolve()) for p in paths],
        root=str(root),
        created_at=time.time(),
        n_documents=int(n_docs),
        n_chunks=int(ids.shape[0]),
        faiss_kind=faiss_kind,
        files=store.list_files(tmp),
    )
    (tmp / store.MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    progress("save", 1, 1)
    timings["save"] = time.perf_counter() - t
    return {
        "new": len(new),
        "changed": len(changed),
        "unchanged": unchanged,
        "removed": len(removed),
        "n_documents": int(n_docs),
        "n_chunks": int(ids.shape[0]),
        "embedded_chunks": len(unit_rows),
    }


def _write_lexical(
    conn, table: str, ids: np.ndarray, tmp: Path, live: Path | None, bm25_dir: str, ids_file: str, bm25: BM25Settings,
) -> None:
    """Write one BM25 index (rows = ids, ascending); rows the live generation has keep their analysed
    terms from it, so an update analyses only the new rows (index/lexical_build.py)."""
    previous = None
    if live is not None:
        previous_ids = np.load(live / ids_file, allow_pickle=False)
        previous = load_row_terms(live / bm25_dir, previous_ids.shape[0])
    if previous is not None:

        def texts_of(wanted: np.ndarray) -> list[str]:
            return [conn.execute(f"SELECT text FROM {table} WHERE id = ?", (int(i),)).fetchone()[0] for i in wanted]

        rows = update_row_terms(previous, previous_ids, ids, texts_of, bm25)
        same_vocab = rows.terms is previous.terms
    else:
        rows = row_terms(analyze_rows([r[0] for r in conn.execute(f"SELECT text FROM {table} ORDER BY id")], bm25))
        same_vocab = False
    write_bm25(tmp / bm25_dir, rows, bm25, vocab_from=live / bm25_dir if same_vocab else None)
    np.save(tmp / ids_file, ids, allow_pickle=False)


def _embed_in_batches(texts: list[str], embedder: Embedder, progress: Progress, cancelled: Callable[[], bool], batch: int = 256) -> np.ndarray:
    """Embed longest-first in batches (less padding), reporting progress and honouring cancel."""
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    for start in range(0, len(order), batch):
        if cancelled():
            raise CancelledError("Indexing cancelled; the previous index is unchanged.")
        progress("embed", start, len(texts))
        idx = order[start:start + batch]
        out[idx] = embedder.embed([texts[i] for i in idx])
    progress("embed", len(texts), len(texts))
    return out
