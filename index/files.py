"""File helpers for generation folders: share what an update keeps, make durable what it wrote."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path


def link_or_copy(src: Path, dst: Path) -> None:
    """Put src's bytes at dst, as a hard link when the file system allows it (no bytes written).

    A linked file is shared by two generations, so nothing may ever write into it in place:
    generation files are only ever created whole, never opened for update.
    """
    try:
        os.link(src, dst)
    except OSError:  # another file system, or one without hard links
        shutil.copyfile(src, dst)


def fsync_written(folder: Path, durable: Callable[[str], bool] = lambda path: False) -> None:
    """fsync every file and folder under folder that this run wrote.

    Files with more than one link were hard-linked from the live generation, which was made
    durable when it was committed; fsyncing them again would only cost time.
    Files for which durable(path) is true (EarlyFlush.durable) were fsynced whole already.
    """
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.stat(path).st_nlink == 1 and not durable(path):
                fsync_path(path)
        fsync_path(dirpath)  # the names of new files (and links) in it


def fsync_path(path: str | Path) -> None:
    """fsync one file or folder (a folder's fsync makes the names in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BackgroundCopy:
    """shutil.copyfile in a thread: the kernel copies while the caller goes on (the GIL is free).
    join() waits and raises what the copy raised."""

    def __init__(self, src: Path, dst: Path) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(src, dst), name="qa-copy", daemon=True)
        self._thread.start()

    def _run(self, src: Path, dst: Path) -> None:
        try:
            shutil.copyfile(src, dst)
        except BaseException as exc:  # re-raised by join()
            self._error = exc

    def join(self) -> None:
        self._thread.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error


class EarlyFlush:
    """fsyncs files in background threads while the build goes on, so that the fsyncs before the
    swap (fsync_written) find little left to write: a copied SQLite file takes a while to reach the
    disk, and started right after the copy, that overlaps scanning and embedding.
    """

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._done: dict[str, tuple[int, int, int]] = {}
        """Files fsynced whole after their last write: path -> (inode, size, mtime_ns) at the time."""

    def start(self, path: Path, final: bool = False) -> None:
        """fsync path (a file, or every file under a folder) in a thread. final: nothing will write
        to it again, so a successful fsync lets fsync_written skip it (see durable)."""
        thread = threading.Thread(target=self._fsync_quietly, args=(path, final), name="qa-early-fsync", daemon=True)
        thread.start()
        self._threads.append(thread)

    def wait(self) -> None:
        threads, self._threads = self._threads, []
        for thread in threads:
            thread.join()

    def durable(self, path: str) -> bool:
        """Whether path was started as final, its fsync succeeded, and it has not changed since."""
        seen = self._done.get(os.fspath(path))
        return seen is not None and seen == _identity(path)

    def _fsync_quietly(self, path: Path, final: bool) -> None:
        # A head start: fsync_written fsyncs again before the swap (and reports errors) every file
        # not recorded here as fsynced whole.
        paths = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for p in paths:
            try:
                before = _identity(p)
                fsync_path(p)
                if final:
                    self._done[os.fspath(p)] = before
            except OSError:
                pass


def _identity(path: str | Path) -> tuple[int, int, int]:
    info = os.stat(path)
    return info.st_ino, info.st_size, info.st_mtime_ns
