"""Builds or incrementally updates an index: stat files (reading only changed ones), re-embed what changed,
write it through the store (index/stores), which makes the new version live at once."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from index.chunker import ChunkSettings, Segmentation, segment_texts
from index.embedder import Embedder
from index.errors import CancelledError, EmptyCorpusError
from index.lexical import BM25Settings
from index.manifest import BuildInfo, Manifest, expected_mismatch
from index.readers import DEFAULT_MAX_FILE_BYTES, EXTRACTORS, Document, extractor_of
from index.stores import open_store
from index.stores.base import Catalog, Recorded, Snapshot, Store, StoreUpdate
from index.walk import FileStat, Hint, Scan, Skipped, changed_files, corpus_root, scan_files

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

    def brief(self) -> str:
        """What the run changed, zero counts left out ("3 new, 1 skipped"), for a one-line notice."""
        counts = (
            (self.new, "new"),
            (self.changed, "changed"),
            (self.removed, "removed"),
            (len(self.skipped), "skipped"),
        )
        return ", ".join(f"{n} {what}" for n, what in counts if n) or "no changes"


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
    catalog: Catalog,
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
    manifest: Manifest | None = None,
    changed_paths: Collection[str] | None = None,
) -> Changes:
    """Compare the files under paths with an index's documents (its catalog), writing nothing.

    Files whose stat equals the recorded one are not read; others are read and hashed, so a file
    touched with the same bytes is not counted as changed. With the index's manifest, files whose
    extractor's version differs from the one recorded there count as changed. changed_paths: only
    those are compared, as in build_index.
    """
    paths = [Path(p) for p in paths]
    root = corpus_root(paths)
    outdated = outdated_extractors(manifest)
    hint = changed_files(paths, root, changed_paths) if changed_paths is not None and not outdated else None
    recorded, recorded_stats, hint, _ = _recorded(catalog, hint)
    known, stats = _forget_outdated(recorded, recorded_stats, outdated)
    new, changed, removed = _classify(
        known, scan_files(paths, root, stats, max_bytes, only=hint.files if hint else None)
    )
    return Changes(len(new), len(changed), len(removed))


def changes_since(
    index: Store | Snapshot,
    paths: Sequence[Path],
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
    changed_paths: Collection[str] | None = None,
) -> Changes:
    """pending_changes against a store's live version or an open snapshot's, on a catalog connection of
    its own (the watches of the chat and of `qa index --watch`)."""
    with index.read_catalog() as (catalog, manifest):
        return pending_changes(paths, catalog, max_bytes, manifest, changed_paths)


def _recorded(catalog: Catalog, hint: Hint | None) -> tuple[dict[str, Recorded], dict[str, FileStat], Hint | None, int]:
    """catalog.recorded, of the hinted sources alone when there is a hint, plus the hint still usable
    (None when a path it says is gone held documents: a folder deleted or moved away, which only a
    walk can follow) and how many documents it leaves unlooked-at."""
    if hint is not None:
        recorded, stats = catalog.recorded(hint.sources)
        if not any(catalog.has_documents_under(gone) for gone in hint.missing if gone not in recorded):
            return recorded, stats, hint, catalog.count_documents() - len(recorded)
    return (*catalog.recorded(), None, 0)


def outdated_extractors(manifest: Manifest | None) -> frozenset[str]:
    """The kinds of file whose extractor changed since the index was built (index/readers EXTRACTORS)."""
    if manifest is None:
        return frozenset()
    return frozenset(kind for kind, version in EXTRACTORS.items() if manifest.extractors.get(kind, 1) != version)


def _forget_outdated(known: dict[str, Recorded], stats: dict[str, FileStat], outdated: frozenset[str]):
    """known and stats with the documents of outdated extractors marked for reading again: no stat
    (so the scan reads them) and no hash (so they count as changed)."""
    if not outdated:
        return known, stats
    stale = {src for src in known if extractor_of(src) in outdated}
    return (
        {src: (row[0], "" if src in stale else row[1], row[2]) for src, row in known.items()},
        {src: st for src, st in stats.items() if src not in stale},
    )


def _classify(known: dict[str, Recorded], found: Scan) -> tuple[list[Document], list[Document], list[str]]:
    """The documents read that are new, those whose bytes changed, and the known sources now gone
    (known: Catalog.recorded's source -> (id, sha256, path))."""
    new = [d for d in found.documents if d.source not in known]
    changed = [d for d in found.documents if d.source in known and known[d.source][1] != d.sha256]
    read = {d.source for d in found.documents}
    removed = [src for src in known if src not in found.unchanged and src not in read]
    return new, changed, removed


def build_index(
    paths: Sequence[Path],
    index_dir: Path | str,
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
    """Index paths into the store at index_dir (a folder, or a store's URL: index.stores.open_store);
    only new or changed files are embedded unless rebuild is set.

    changed_paths: the paths that changed since the index was last brought up to date, from the
    operating system's change notifications (index/changes.py). An update then looks at those
    files alone and trusts the index for every other file; when they name something only a walk
    can judge (a folder moved, a symbolic link) every file is compared as without them.

    The previous version stays live until the new one is complete, so a crash or Ctrl-C
    at any point leaves the old index loadable. It is then removed, unless remove_replaced is
    False: the caller removes it later (Store.clean_up(background=True)), or the next run does.
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    with open_store(index_dir).update(wait=wait) as update:
        root = documents[0] if documents is not None else corpus_root([Path(p) for p in paths])
        previous = update.previous
        reason = None
        if previous is not None and not rebuild:
            reason = expected_mismatch(
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

        report = _update(
            update,
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
        )
        if cancelled():
            raise CancelledError("Indexing cancelled; the previous index is unchanged.")
        update.commit(remove_replaced)
        timings.update(update.timings)
    return BuildReport(
        index_dir=index_dir,
        seconds=time.perf_counter() - started,
        rebuilt_because=reason if previous is not None and not incremental else None,
        timings=timings,
        **report,
    )


def _update(
    update: StoreUpdate,
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
    hint: Hint | None = None,
) -> dict:
    """Write the new version: delete the documents that changed or went, add the new and changed ones
    with their vectors (the store's update holds it all until commit)."""
    others = 0  # documents a hinted update trusts without looking at them
    t = time.perf_counter()
    update.start(incremental, bm25)
    if incremental:
        with update.read_previous() as previous:  # read while the store copies it
            recorded, recorded_stats, hint, others = _recorded(previous, hint)
            known, stats = _forget_outdated(recorded, recorded_stats, outdated)
        found = scan(stats, hint.files if hint is not None else None)
    else:
        known, found = {}, scan({}, None)
        recorded = known
    catalog = update.catalog()
    timings["scan"] = time.perf_counter() - t  # with the store's copy of the live catalog beside it
    if not found.documents and not found.unchanged and not others:
        raise EmptyCorpusError(
            f"No indexable documents under {', '.join(str(p) for p in paths)} ({len(found.skipped)} skipped).",
            _POINT_AT_DOCUMENTS,
        )
    docs = found.documents
    new, changed, removed = _classify(known, found)
    if outdated:  # same bytes, read again by a newer extractor or splitter: kept if they index the same
        again = [d for d in changed if recorded[d.source][1] == d.sha256]
        kept = _indexed_the_same(catalog, again, recorded, embedder, chunking, progress, cancelled)
        changed = [d for d in changed if d.source not in kept]
    unchanged = len(docs) - len(new) - len(changed) + len(found.unchanged) + others
    # Paths may have moved (same source, new absolute path): keep them current.
    paths_now = {**{d.source: str(d.path) for d in docs}, **{src: str(p) for src, p in found.unchanged.items()}}
    catalog.move_documents({src: p for src, p in paths_now.items() if src in known and known[src][2] != p})
    catalog.delete_documents([known[s][0] for s in removed] + [known[d.source][0] for d in changed])

    t = time.perf_counter()
    to_embed: list[tuple[Document, Segmentation]] = []
    pending = new + changed
    for start in range(0, len(pending), _SEGMENT_BATCH):
        if cancelled():
            raise CancelledError("Indexing cancelled; the previous index is unchanged.")
        batch = pending[start : start + _SEGMENT_BATCH]
        to_embed.extend(zip(batch, segment_texts([doc.text for doc in batch], embedder, chunking, embedder.max_tokens)))
    timings["chunk"] = time.perf_counter() - t

    unit_ids: list[int] = []
    unit_texts: list[str] = []
    now = time.time()
    for doc, seg in to_embed:
        added = catalog.add_document(doc, seg, now)
        unit_ids.extend(added.unit_ids)
        unit_texts.extend(doc.text[u.char_start : u.char_end] for u in seg.units)
    if not catalog.count_passages():  # e.g. files of zero-width spaces: readable, but nothing the model sees
        raise EmptyCorpusError(
            f"No indexable text under {', '.join(str(p) for p in paths)}: the readable files contain no visible words.",
            _POINT_AT_DOCUMENTS,
        )
    update.texts_written()
    t = time.perf_counter()
    vectors = _embed_in_batches(unit_texts, embedder, progress, cancelled)
    timings["embed"] = time.perf_counter() - t
    update.add_vectors(np.asarray(unit_ids, dtype=np.int64), vectors)
    catalog.record_file_stats(found.stats, forget=removed + [d.source for d in docs if d.source not in found.stats])

    t = time.perf_counter()
    progress("save", 0, 1)
    manifest = update.finish(
        BuildInfo(
            model=embedder.name,
            model_fingerprint=embedder.fingerprint(),
            dim=embedder.dim,
            backend=embedder.backend,
            chunking=asdict(chunking),
            bm25=asdict(bm25),
            roots=[str(Path(p).resolve()) for p in paths],
            root=str(found.root),
            extractors=dict(EXTRACTORS),
        )
    )
    timings.update(update.timings)
    progress("save", 1, 1)
    timings["save"] = time.perf_counter() - t
    return {
        "skipped": tuple(found.skipped),
        "new": len(new),
        "changed": len(changed),
        "unchanged": unchanged,
        "removed": len(removed),
        "n_documents": manifest.n_documents,
        "n_chunks": manifest.n_chunks,
        "embedded_chunks": len(unit_ids),
    }


def _indexed_the_same(
    catalog: Catalog,
    docs: list[Document],
    recorded: dict[str, Recorded],
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
            d.source for d, seg in zip(batch, segments) if _indexed_as(catalog, recorded[d.source][0], d.text, seg)
        )
    progress("recheck", len(docs), len(docs))
    return kept


def _indexed_as(catalog: Catalog, doc_id: int, text: str, seg: Segmentation) -> bool:
    """Whether a document's stored units and chunks are exactly what this segmentation of its text makes."""
    stored = catalog.segmentation(doc_id)
    if [(u.char_start, u.char_end, u.n_tokens, u.text) for u in stored.units] != [
        (u.char_start, u.char_end, u.n_tokens, text[u.char_start : u.char_end]) for u in seg.units
    ]:
        return False
    if [
        (p.ordinal, p.char_start, p.char_end, p.line_start, p.line_end, p.n_tokens, p.text) for p in stored.passages
    ] != [(c.ordinal, c.char_start, c.char_end, c.line_start, c.line_end, c.n_tokens, c.text) for c in seg.chunks]:
        return False
    position = {u.id: i for i, u in enumerate(stored.units)}
    members = [sorted(position[u] for u in unit_ids) for unit_ids in stored.members]
    return members == [sorted(m) for m in seg.members]


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
