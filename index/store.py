"""The embedded store's folder: generations (manifest, SQLite, FAISS, BM25) swapped in atomically under a lock."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from index.errors import REBUILD_HINT, IndexCorruptError, IndexLockedError, IndexMismatchError, IndexMissingError
from index.files import fsync_path, fsync_written
from index.lexical import LexicalIndex
from index.lexical_column import load_lexical
from index.manifest import (  # noqa: F401 - the format's names, read by the embedded store and its tests
    DELTA_FORMAT_VERSION,
    FORMAT_VERSION,
    READ_FORMATS,
    Manifest,
    expected_mismatch,
    formats,
    rebuild_command,
    rebuild_hint,
)
from index.vectors import DenseIndex, load_dense
from index.walk import FileStat

CURRENT = "CURRENT"
LOCK = ".lock"
READERS = ".readers"
MANIFEST = "manifest.json"
SQLITE = "meta.sqlite"
FAISS = "vectors.faiss"
BM25_DIR = "bm25"
BM25_IDS = "bm25_ids.npy"
UNIT_BM25_DIR = "bm25_units"
UNIT_IDS = "unit_ids.npy"

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    encoding TEXT NOT NULL,
    n_chars INTEGER NOT NULL,
    indexed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    line_start INTEGER NOT NULL,
    line_end INTEGER NOT NULL,
    n_tokens INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS units (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    n_tokens INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS units_doc ON units(doc_id);
CREATE TABLE IF NOT EXISTS chunk_units (
    chunk_id INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
    unit_id INTEGER NOT NULL REFERENCES units(id) ON DELETE CASCADE,
    PRIMARY KEY (chunk_id, unit_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chunk_units_unit ON chunk_units(unit_id);
CREATE TABLE IF NOT EXISTS file_stats (
    source TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chunk_hashes (
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL
);
"""
# file_stats: the stat of each document's file when it was last read (index/walk.py FileStat).
# Added without a format change: an index written before it has no rows, so its files are read once.
# chunk_hashes: index/stores/base.py text_hash of each chunk's text, what a citation is checked against when
# its file is not reachable. Added without a format change: chunks indexed before it have no hash.


@contextlib.contextmanager
def write_lock(index_dir: Path, wait: bool = False) -> Iterator[None]:
    """Exclusive lock for writers; released by the OS even on kill -9."""
    index_dir.mkdir(parents=True, exist_ok=True)
    fh = open(index_dir / LOCK, "a+")
    try:
        flags = fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
        try:
            fcntl.flock(fh.fileno(), flags)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise IndexLockedError(
                    f"Another 'qa index' ({holder}) is updating {index_dir}.",
                    "Wait for it to finish, or run again with --wait.",
                ) from exc
            raise
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        yield
    finally:
        fh.close()


def current_generation(index_dir: Path) -> Path | None:
    try:
        name = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not name.startswith("gen-") or "/" in name or ".." in name:
        raise IndexCorruptError(f"{index_dir / CURRENT} names '{name[:40]}', not an index generation.", REBUILD_HINT)
    return index_dir / name


def clean_leftovers(index_dir: Path) -> list[str]:
    """Remove half-written and superseded generations (call with the write lock held).

    A superseded generation that a reader may be opening right now is left for the next run.
    """
    live = current_generation(index_dir)
    removed = []
    with _no_readers(index_dir) as quiet:
        for entry in index_dir.iterdir():
            if entry.name.startswith("gen-") and entry != live and entry.is_dir():
                if not quiet and not entry.name.endswith(".tmp"):
                    continue
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
            elif entry.name.startswith(CURRENT + ".tmp"):
                entry.unlink(missing_ok=True)
                removed.append(entry.name)
    return removed


def clean_up_in_background(index_dir: Path) -> threading.Thread:
    """clean_leftovers in a thread of its own, under the write lock; skipped when another writer
    holds it (that writer cleans up when it starts). For the watches, which remove the generation
    an update replaced after reporting the update instead of before."""

    def run() -> None:
        try:
            with write_lock(index_dir):
                clean_leftovers(index_dir)
        except (IndexLockedError, OSError):
            pass

    thread = threading.Thread(target=run, name="qa-clean-up", daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def _no_readers(index_dir: Path, patience: float = 2.0) -> Iterator[bool]:
    """Exclude readers that are opening a generation, waiting up to `patience` seconds for
    the current ones to finish; yields whether that worked (a load takes well under that)."""
    fd = os.open(index_dir / READERS, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + patience
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.02)
        yield True
    finally:
        os.close(fd)


@contextlib.contextmanager
def _reading(index_dir: Path) -> Iterator[None]:
    """Shared lock while a reader opens a generation, so no writer deletes it mid-load."""
    try:
        fd = os.open(index_dir / READERS, os.O_RDONLY)
    except OSError:  # no lock file yet (or a read-only folder): the retries in load_index still apply
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def new_generation_dir(index_dir: Path) -> Path:
    stamp = time.strftime("%Y%m%d%H%M%S")
    path = index_dir / f"gen-{stamp}-{os.getpid()}-{time.monotonic_ns() % 10**6:06d}.tmp"
    path.mkdir(parents=True)
    return path


def commit_generation(index_dir: Path, tmp: Path, durable: Callable[[str], bool] = lambda path: False) -> Path:
    """Make a fully written generation live: rename it, then atomically repoint CURRENT. durable(path):
    the file is already on disk (index.files.EarlyFlush.durable)."""
    fsync_written(tmp, durable)
    final = tmp.with_name(tmp.name.removesuffix(".tmp"))
    os.replace(tmp, final)
    pointer = index_dir / f"{CURRENT}.tmp{os.getpid()}"
    pointer.write_text(final.name, encoding="utf-8")
    with open(pointer, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(pointer, index_dir / CURRENT)
    fsync_path(index_dir)
    return final


def list_files(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        conn = sqlite3.connect(path)
        # Writers only ever write a generation that is not live yet: if they crash, the folder is
        # thrown away, and commit_generation fsyncs the file. SQLite's own journal and fsyncs
        # would only make each update slower.
        conn.execute("PRAGMA journal_mode = MEMORY")
        conn.execute("PRAGMA synchronous = OFF")
        conn.executescript(SCHEMA)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def read_documents(
    conn: sqlite3.Connection, sources: Sequence[str] | None = None
) -> tuple[dict[str, tuple[int, str, str]], dict[str, FileStat]]:
    """source -> (id, sha256, path) of every document (or of those among sources), and source ->
    recorded stat of those that have one."""
    query = (
        "SELECT d.source, d.id, d.sha256, d.path, s.size, s.mtime_ns, s.ctime_ns, s.inode "
        "FROM documents d LEFT JOIN file_stats s ON s.source = d.source"
    )
    if sources is None:
        rows = conn.execute(query).fetchall()
    else:
        rows = [
            row
            for start in range(0, len(sources), 500)
            for row in conn.execute(
                f"{query} WHERE d.source IN ({','.join('?' * len(sources[start : start + 500]))})",
                sources[start : start + 500],
            )
        ]
    # Slices and tuple.__new__ rather than star-unpacking and FileStat._make: fewer Python calls per row.
    known = {row[0]: row[1:4] for row in rows}
    new = tuple.__new__
    stats = {row[0]: new(FileStat, row[4:]) for row in rows if row[4] is not None}
    return known, stats


def has_documents_under(conn: sqlite3.Connection, folder: str) -> bool:
    """Whether any document's source lies inside folder (a source, relative like them)."""
    # Sources starting with "folder/": the range ["folder/", "folder0"), "0" being the character after "/".
    return (
        conn.execute(
            "SELECT 1 FROM documents WHERE source >= ? AND source < ? LIMIT 1", (folder + "/", folder + "0")
        ).fetchone()
        is not None
    )


def write_file_stats(conn: sqlite3.Connection, stats: dict[str, FileStat], forget: Sequence[str]) -> None:
    """Record the stats of files read this run; forget those of removed files and untrusted stats."""
    conn.executemany("DELETE FROM file_stats WHERE source = ?", [(s,) for s in forget])
    conn.executemany(
        "INSERT OR REPLACE INTO file_stats(source, size, mtime_ns, ctime_ns, inode) VALUES (?,?,?,?,?)",
        [(src, st.size, st.mtime_ns, st.ctime_ns, st.inode) for src, st in stats.items()],
    )


class LoadedIndex:
    """A read-only view of one generation: metadata in SQLite, vectors in FAISS, terms in bm25s."""

    def __init__(
        self,
        folder: Path,
        manifest: Manifest,
        conn: sqlite3.Connection,
        faiss_index,
        lexical: LexicalIndex,
        bm25_ids: np.ndarray,
        unit_lexical: LexicalIndex,
        unit_ids: np.ndarray,
        dense: DenseIndex | None = None,
    ) -> None:
        self.folder = folder
        self.manifest = manifest
        self.conn = conn
        self.faiss = faiss_index
        """The FAISS index of unit (sentence) vectors, ids = units.id; for a flat index, only its base:
        search and read vectors through `dense`."""
        self.lexical = lexical
        """Chunk-level BM25; row i is chunk bm25_ids[i]."""
        self.bm25_ids = bm25_ids
        self.unit_lexical = unit_lexical
        """Unit-level BM25; row i is unit unit_ids[i]."""
        self.unit_ids = unit_ids
        self.dense = dense if dense is not None else DenseIndex(faiss_index, "flat")
        """Search and exact vectors of any unit, whatever the FAISS kind (index/vectors.py)."""
        self.root = Path(manifest.root)

    @property
    def n_chunks(self) -> int:
        return int(self.bm25_ids.shape[0])

    def close(self) -> None:
        self.conn.close()
        self.dense.close()
        self.lexical.close()
        self.unit_lexical.close()


def load_index(index_dir: Path, attempts: int = 5) -> LoadedIndex:
    """Open the live generation, checking the manifest's file list and sizes first.

    A writer may swap in a new generation and delete the old one while we are reading it;
    then CURRENT has moved on and we open the new one instead of calling the index damaged.
    """
    for attempt in range(attempts):
        before = current_generation(index_dir) if index_dir.is_dir() else None
        try:
            with _reading(index_dir):
                return _load_live_generation(index_dir)
        except (IndexCorruptError, FileNotFoundError) as exc:
            moved = before is not None and current_generation(index_dir) != before
            if moved and attempt + 1 < attempts:
                continue
            if isinstance(exc, FileNotFoundError):
                raise IndexCorruptError(
                    f"The index at {index_dir} lost a file while loading ({exc.filename}).", REBUILD_HINT
                ) from exc
            raise
    raise AssertionError("unreachable")


def _load_live_generation(index_dir: Path) -> LoadedIndex:
    if not index_dir.is_dir():
        raise IndexMissingError(f"No index at {index_dir}.", "Build it: qa index PATH")
    folder = current_generation(index_dir)
    if folder is None:
        raise IndexMissingError(f"No index at {index_dir}.", "Build it: qa index PATH")
    if not folder.is_dir():
        raise IndexCorruptError(f"The index at {index_dir} points to a missing folder {folder.name}.", REBUILD_HINT)
    try:
        manifest = Manifest.from_path(folder / MANIFEST)
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"The index at {index_dir} has no manifest.", REBUILD_HINT) from exc
    if manifest.format_version not in READ_FORMATS:
        # checked before the file list: an older format has other files, and is not damaged
        raise IndexMismatchError(
            f"The index at {index_dir} has format {manifest.format_version}; this qa reads formats {formats()}.",
            rebuild_hint(manifest.roots),
        )
    actual = list_files(folder)
    actual.pop(MANIFEST, None)
    if actual != manifest.files:
        extra = sorted(set(actual) - set(manifest.files))
        missing = sorted(set(manifest.files) - set(actual))
        changed = sorted(k for k in set(actual) & set(manifest.files) if actual[k] != manifest.files[k])
        detail = "; ".join(
            part
            for part in (
                f"unexpected file(s) {', '.join(extra)} (never loaded)" if extra else "",
                f"missing {', '.join(missing)}" if missing else "",
                f"wrong size {', '.join(changed)} (truncated or modified)" if changed else "",
            )
            if part
        )
        raise IndexCorruptError(f"The index at {folder} is damaged or was tampered with: {detail}.", REBUILD_HINT)
    try:
        conn = connect(folder / SQLITE, readonly=True)
        # A damaged page would otherwise surface later, mid-answer, as a raw DatabaseError
        # (about 70 ms for a 20 MB database).
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise sqlite3.DatabaseError(f"quick_check: {check}")
        conn.execute("SELECT count(*) FROM chunks").fetchone()
        dense = load_dense(folder, manifest.faiss_kind)
        vectors = dense.index
        lexical = load_lexical(folder / BM25_DIR, manifest.bm25_settings())
        bm25_ids = np.load(folder / BM25_IDS, allow_pickle=False)
        unit_lexical = load_lexical(folder / UNIT_BM25_DIR, manifest.bm25_settings())
        unit_ids = np.load(folder / UNIT_IDS, allow_pickle=False)
    except (sqlite3.DatabaseError, RuntimeError, ValueError, OSError, KeyError) as exc:
        raise IndexCorruptError(
            f"The index at {folder} cannot be read ({type(exc).__name__}: {str(exc)[:120]}).", REBUILD_HINT
        ) from exc
    if bm25_ids.shape[0] != manifest.n_chunks or dense.ntotal != unit_ids.shape[0]:
        raise IndexCorruptError(
            f"The index at {folder} is inconsistent (vector count differs from unit count).", REBUILD_HINT
        )
    return LoadedIndex(folder, manifest, conn, vectors, lexical, bm25_ids, unit_lexical, unit_ids, dense)


def read_manifest(index_dir: Path) -> Manifest | None:
    folder = current_generation(index_dir) if index_dir.is_dir() else None
    if folder is None or not (folder / MANIFEST).is_file():
        return None
    return Manifest.from_path(folder / MANIFEST)
