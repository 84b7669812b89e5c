"""Change notifications from the operating system (inotify on Linux, FSEvents, ReadDirectoryChangesW)
through watchfiles: which paths under the corpus's folders changed, so an update looks at those
files alone instead of comparing every file with the index."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from pathlib import Path

from index.walk import folder_prefix, hidden_below

STEP_MS = 50
"""A burst of events is handed over once no new one came for this long (an editor's save is one burst)."""
MOST_PATHS = 500
"""More changed paths than this at once (a checkout, an unpacked archive): a full comparison is as cheap."""


class ChangeFeed:
    """Collects the paths that change under `folders` in a thread of its own until close().

    take() hands over what changed since the last take. A feed that could not start or stopped
    (no watchfiles, the system's limit on watches reached, a folder gone) reports `broken`: its
    owner then compares every file on a timer instead.
    """

    def __init__(
        self,
        folders: Collection[Path],
        ignore: Callable[[str], bool] = lambda path: False,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.folders = [str(Path(f).absolute()) for f in folders]
        self._ignore = ignore
        self._on_change = on_change
        self._lock = threading.Lock()
        self._paths: set[str] = set()
        self._overflow = False
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._changed = threading.Event()
        self.broken: str | None = None
        """Why the feed stopped, or None while it runs."""
        self._thread = self._start()

    def _start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, args=(self._stop, self._ready), name="qa-change-feed", daemon=True)
        thread.start()
        return thread

    def restart(self) -> None:
        """Watch the folders afresh, forgetting what was pending: after a folder was deleted and made again
        (its old watch sees nothing more) or moved away and back. The caller compares every file next."""
        self.close()
        with self._lock:
            self._paths.clear()
            self._overflow = False
            self._changed.clear()
        self._stop, self._ready, self.broken = threading.Event(), threading.Event(), None
        self._thread = self._start()

    def wait_ready(self, timeout: float = 5.0) -> bool:
        """Whether the watches are in place (events from now on are seen), waiting up to timeout."""
        return self._ready.wait(timeout) and self.broken is None

    def pending(self) -> bool:
        with self._lock:
            return bool(self._paths) or self._overflow

    def wait(self, timeout: float) -> bool:
        """Whether something changed (and is not taken yet), waiting up to timeout seconds for it."""
        return self._changed.wait(timeout) and self.pending()

    def take(self) -> frozenset[str] | None:
        """The paths changed since the last take (empty: none), or None when too many changed to list."""
        with self._lock:
            paths, overflow = frozenset(self._paths), self._overflow
            self._paths.clear()
            self._overflow = False
            self._changed.clear()
        return None if overflow else paths

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)

    def _run(self, stop: threading.Event, ready: threading.Event) -> None:
        # stop and ready are this thread's own: after restart() a late end of the old one changes nothing.
        broken = None
        try:
            import watchfiles  # deferred: slow to import, and only --watch needs it

            watcher = watchfiles.watch(
                *self.folders,
                stop_event=stop,
                step=STEP_MS,
                debounce=1_000,
                rust_timeout=500,
                yield_on_timeout=True,
                raise_interrupt=False,
                ignore_permission_denied=True,
                watch_filter=None,
            )
            for batch in watcher:
                ready.set()  # the first (possibly empty) batch comes once the watches are in place
                if not stop.is_set():
                    self._add(path for _, path in batch)
        except Exception as exc:  # noqa: BLE001 - any failure means: compare every file instead
            broken = str(exc) or type(exc).__name__
        else:
            broken = "stopped"
        finally:
            if stop is self._stop:
                self.broken = self.broken or broken
            ready.set()

    def _add(self, paths) -> None:
        kept = [p for p in paths if not self._ignore(p)]
        if not kept:
            return
        with self._lock:
            self._paths.update(kept)
            if len(self._paths) > MOST_PATHS:
                self._paths.clear()
                self._overflow = True
            self._changed.set()
        self._on_change()


def hidden_or_inside(folders: Collection[Path], skip: Collection[Path] = ()) -> Callable[[str], bool]:
    """An ignore rule for ChangeFeed: paths with a part starting with '.' below their watched folder
    (the scan never reads those: .git, editors' swap files) and paths inside `skip` (an index folder
    inside the corpus, which every update writes)."""
    tops = [folder_prefix(f) for f in folders]
    skipped = [folder_prefix(s) for s in skip]

    def ignore(path: str) -> bool:
        if any(path.startswith(s) or path == s[:-1] for s in skipped):
            return True
        return next((hidden_below(path, top) for top in tops if path.startswith(top)), False)

    return ignore
