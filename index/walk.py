"""Finding documents: the folder walk, and the stat cache that lets a run skip files it saw unchanged."""

from __future__ import annotations

import os
import stat as stat_mode
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from index.errors import InputError, UndecodableError
from index.readers import (
    DEFAULT_MAX_FILE_BYTES,
    SUPPORTED_NOTE,
    SUPPORTED_SUFFIXES,
    Document,
    load_document,
    relative_source,
    suffix_of,
)


@dataclass(frozen=True)
class Skipped:
    """A file (or folder) left out of the index, with the reason shown to the user."""

    path: str
    reason: str
    other_type: bool = False
    """Left out for its type alone (a picture, a script): reports list many such files as one line."""


RACY_NS = 2_000_000_000
"""A file changed this close to the start of a scan may change again with the same times (coarse
file-system clocks; FAT keeps 2 s), so its stat is not trusted by the next run (git's "racy clean")."""


class FileStat(NamedTuple):
    """What os.stat said about a file when it was read; equal next run means unchanged, unread (as git does).

    A NamedTuple, not a dataclass: a scan builds and compares one per file, 5,000 in a few ms.
    """

    size: int
    mtime_ns: int
    ctime_ns: int
    """Changes on every write and cannot be set back (unlike mtime, which cp -p, rsync -t and tar restore)."""
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)

    def racy(self, scan_started_ns: int) -> bool:
        return max(self.mtime_ns, self.ctime_ns) >= scan_started_ns - RACY_NS


@dataclass(frozen=True)
class Scan:
    """The files of a corpus, split into what must be read and what a previous run saw unchanged."""

    root: Path
    documents: list[Document]
    """Files read this run (new, changed, or touched with the same bytes)."""
    stats: dict[str, FileStat]
    """source -> stat taken before reading, for read files whose stat can be trusted next run."""
    unchanged: dict[str, str]
    """source -> path of files whose stat equals the recorded one: not read."""
    skipped: list[Skipped]


def corpus_root(paths: list[Path]) -> Path:
    """The folder that sources are named relative to: the folder itself, or the common parent."""
    resolved = [p.resolve() for p in paths]
    if len(resolved) == 1:
        return resolved[0] if resolved[0].is_dir() else resolved[0].parent
    common = Path(os.path.commonpath([str(p) for p in resolved]))
    return common if common.is_dir() else common.parent


def _walk_folders(top: str, skipped: list[Skipped]):
    """Top-down walk like os.walk, but without recursion (os.walk overflows the stack on deep
    trees before Python 3.12) and reporting unreadable folders instead of ignoring them.
    Yields (dirpath, real dirpath, dirnames, file entries); prune dirnames in place as with os.walk.
    Sub-folders reached through symbolic links are never walked, so a folder's real path is its
    parent's plus its name: one realpath per walk, not one per file."""
    stack = [(top, os.path.realpath(top))]
    while stack:
        here, real_here = stack.pop()
        try:
            with os.scandir(here) as entries:
                listing = [(entry, _is_dir(entry)) for entry in entries]
        except OSError as exc:
            skipped.append(Skipped(here, f"folder not readable: {describe_os_error(exc)}"))
            continue
        dirnames = [entry.name for entry, is_dir in listing if is_dir]
        files = [entry for entry, is_dir in listing if not is_dir]
        yield here, real_here, dirnames, files
        stack.extend((os.path.join(here, name), os.path.join(real_here, name)) for name in reversed(dirnames))


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def iter_candidate_files(paths: list[Path]) -> tuple[list[Path], list[Skipped]]:
    """Every supported file under the given paths (recursively), plus what was skipped and why."""
    files, skipped = _candidate_files(paths)
    return [Path(f) for f in files], skipped


def _candidate_files(paths: list[Path]) -> tuple[list[str], list[Skipped]]:
    """iter_candidate_files with paths as strings: a scan of 5,000 unchanged files is mostly this walk,
    and pathlib costs several times the system calls here (d_type from scandir answers most questions)."""
    files: list[str] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()
    for given in paths:
        given = Path(given)
        if not given.exists():
            raise InputError(f"No such file or folder: {given}.", "Check the path and try again.")
        if given.is_file():
            suffix = given.suffix.lower()
            if suffix not in SUPPORTED_SUFFIXES:
                skipped.append(
                    Skipped(
                        str(given), f"unsupported type '{suffix or 'no extension'}' ({SUPPORTED_NOTE})", other_type=True
                    )
                )
            elif str(given.resolve()) not in seen:  # named twice (or also inside a named folder): read once
                seen.add(str(given.resolve()))
                files.append(str(given.resolve()))
            continue
        for here, real_here, dirnames, entries in _walk_folders(str(given.absolute()), skipped):
            keep = []
            for name in sorted(dirnames):
                if name.startswith("."):
                    continue  # .git, .venv and friends: never documents
                sub = os.path.join(here, name)
                if os.path.islink(sub):
                    skipped.append(Skipped(sub, "symbolic link to a folder, not followed"))
                    continue
                if is_index_folder(sub):
                    continue  # an --index-dir inside the corpus: ours, not the user's, so not reported either
                keep.append(name)
            dirnames[:] = keep
            real_prefix = os.path.join(real_here, "")
            for entry in sorted(entries, key=lambda e: e.name):
                name = entry.name
                if name.startswith(_NOT_DOCUMENTS):
                    continue
                path = entry.path  # here/name, made by scandir
                suffix = suffix_of(name)
                if suffix not in SUPPORTED_SUFFIXES:
                    skipped.append(
                        Skipped(
                            path, f"unsupported type '{suffix or 'no extension'}' ({SUPPORTED_NOTE})", other_type=True
                        )
                    )
                    continue
                try:
                    link = entry.is_symlink()
                except OSError:
                    link = True
                if link:
                    try:
                        real_path = Path(path).resolve(strict=True)
                    except (OSError, RuntimeError):
                        skipped.append(Skipped(path, "broken or looping symbolic link"))
                        continue
                    real, regular = str(real_path), real_path.is_file()
                else:
                    real, regular = real_prefix + name, _is_file(entry)
                if not regular:
                    skipped.append(Skipped(path, "not a regular file"))
                    continue
                if real in seen:
                    continue
                seen.add(real)
                files.append(path)
    return files, skipped


def folder_prefix(folder: Path | str) -> str:
    """A folder's absolute path (not resolved: as the walk and the change feed name what is under it) with a
    trailing separator, for prefix tests."""
    return os.path.join(str(Path(folder).absolute()), "")


_NOT_DOCUMENTS = (".", "~$")
"""Names the walk never reads: hidden ones (.git, .venv, editors' swap files), and the owner files Microsoft
Office keeps beside a document while it is open ("~$rbour.docx", a few bytes that are no document)."""


def hidden_below(path: str, top: str) -> bool:
    """Whether a path under top (folder_prefix) has a part the walk never reads (_NOT_DOCUMENTS)."""
    *folders, name = path[len(top) :].split(os.sep)
    return name.startswith(_NOT_DOCUMENTS) or any(part.startswith(".") for part in folders)


INDEX_MARKERS = ("CURRENT", ".lock")
"""Files every qa index folder holds (index/store.py CURRENT and LOCK)."""


def is_index_folder(path: str) -> bool:
    """Whether a folder is a qa index (an --index-dir inside the corpus): its vocabulary files are .txt,
    and every update writes new ones, which would otherwise be indexed as documents, again and again."""
    return all(os.path.isfile(os.path.join(path, marker)) for marker in INDEX_MARKERS)


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def scan_files(
    paths: list[Path],
    root: Path,
    known: Mapping[str, FileStat],
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
    progress: Callable[[str, int, int], None] = lambda stage, done, total: None,
    only: list[str] | None = None,
) -> Scan:
    """Walk paths; read every file whose stat differs from known[source] (unknown files included).
    only: look at these files instead of walking (changed_files' list; Scan.unchanged then lists only those).

    The stat is taken before reading: a write that lands during the read changes it again, so
    the next run reads the file once more instead of trusting stale text.
    """
    started = time.time_ns()
    files, skipped = _candidate_files(paths) if only is None else (only, [])
    documents: list[Document] = []
    stats: dict[str, FileStat] = {}
    unchanged: dict[str, str] = {}
    prefix = os.path.join(str(root), "")
    linked = _linked_folders(paths)
    for i, path in enumerate(files):
        progress("scan", i, len(files))
        source = _source_of(path, root, prefix, linked)
        try:
            st = os.stat(path)
            seen = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)  # equals a FileStat of the same values
            if st.st_size <= max_bytes and known.get(source) == seen:
                unchanged[source] = path
                continue
            stat = FileStat._make(seen)
            doc = load_document(Path(path), root, max_bytes, source)
        except UndecodableError as exc:
            skipped.append(Skipped(path, str(exc)))
            continue
        except OSError as exc:
            skipped.append(Skipped(path, describe_os_error(exc)))
            continue
        if not doc.text.strip():
            skipped.append(
                Skipped(
                    path,
                    "a PDF without a text layer (scanned? run OCR on it first)"
                    if doc.encoding == "pdf"
                    else "empty (no text to index)",
                )
            )
            continue
        documents.append(doc)
        if not stat.racy(started):
            stats[source] = stat
    progress("scan", len(files), len(files))
    return Scan(root, documents, stats, unchanged, skipped)


def _source_of(path: str, root: Path, prefix: str, linked: list[tuple[str, str]] = ()) -> str:
    """A file's source name (prefix: root with a trailing separator), as every scan names it. linked
    (_linked_folders): a path under a folder named through a symbolic link is first put in real terms,
    since root is a real path ("~/notes/sub/a.txt" with ~/notes -> /data/notes is "sub/a.txt")."""
    for named, real in linked:
        if path.startswith(named):
            path = real + path[len(named) :]
            break
    if path.startswith(prefix) and os.sep == "/":
        return path[len(prefix) :]
    return relative_source(Path(path), root)


def _linked_folders(paths: list[Path]) -> list[tuple[str, str]]:
    """(folder as named + separator, its real path + separator) for each folder of paths that is reached
    through a symbolic link: the walk keeps the named form, sources are relative to real paths."""
    out = []
    for given in paths:
        named = folder_prefix(given)
        real = os.path.join(os.path.realpath(named), "")
        if named != real and os.path.isdir(named):
            out.append((named, real))
    return out


@dataclass(frozen=True)
class Hint:
    """What a change notification (index/changes.py) leaves to look at: an update reads these alone."""

    sources: tuple[str, ...]
    """Every source to look at again: read if it is a file now, removed from the index if it is gone."""
    files: list[str]
    """The paths of those that are files now."""
    missing: tuple[str, ...]
    """The sources of the changed paths that are gone, whatever their suffix: a gone path that was neither a
    document nor a folder of documents (an editor's "notes.txt~", vim's "4913") needs no walk."""


def changed_files(paths: list[Path], root: Path, changed: Iterable[str]) -> Hint | None:
    """The files a scan of paths would look at among the changed paths (absolute, as the change feed
    reports them under each folder), or None when only a walk can tell: a folder created or moved in,
    a symbolic link, an index folder, a path outside the folders, a file named on the command line
    rather than found in a folder. (A folder deleted or moved out is found by the builder: a gone
    path with documents under it.)"""
    tops = [folder_prefix(p) for p in paths]
    if not all(os.path.isdir(top) for top in tops):
        return None
    prefix = os.path.join(str(root), "")
    linked = _linked_folders(paths)
    sources: list[str] = []
    files: list[str] = []
    missing: list[str] = []
    for path in sorted(set(changed)):
        top = next((t for t in tops if path.startswith(t)), None)
        if top is None:
            return None
        if hidden_below(path, top):
            continue  # never read by a scan
        parts = path[len(top) :].split(os.sep)
        folder = top[:-1]
        for part in parts[:-1]:
            folder = os.path.join(folder, part)
            if os.path.islink(folder) or is_index_folder(folder):
                return None  # the walk skips these, with a reason: let it judge
        suffix = suffix_of(parts[-1])
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            missing.append(_source_of(path, root, prefix, linked))  # a document, a folder of them, or neither
            if suffix in SUPPORTED_SUFFIXES:
                sources.append(missing[-1])
            continue
        except OSError:
            return None
        if not stat_mode.S_ISREG(mode):
            return None  # a folder, a symbolic link, a pipe
        if suffix in SUPPORTED_SUFFIXES:
            sources.append(_source_of(path, root, prefix, linked))
            files.append(path)
    return Hint(tuple(sources), files, tuple(missing))


def describe_os_error(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied (check the file's permissions)"
    return exc.strerror or str(exc)
