"""Library entry points the CLI and the TUI share: make sure an index exists, open an engine."""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING

from index.embedder import Embedder, make_embedder
from index.errors import InputError, QAError
from index.stores import open_store
from qa.config import RunConfig
from qa.engine import Engine

if TYPE_CHECKING:  # the builder and the change feed load only to build, compare or watch, not to answer
    from index.builder import BuildReport, Progress
    from index.changes import ChangeFeed


def check_paths(paths: list[Path]) -> None:
    for path in paths:
        if not path.exists():
            raise InputError(
                f"No such file or folder: {path}.", "Check the path, or run qa with no arguments to use seeds/."
            )


def index_corpus(
    config: RunConfig,
    embedder: Embedder | None = None,
    *,
    rebuild: bool = False,
    wait: bool = False,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    max_bytes: int | None = None,
    changed_paths: Collection[str] | None = None,
    clean_up_after: bool = False,
) -> BuildReport:
    """Build or update the corpus's index (index.builder.build_index). clean_up_after: the generation
    the update replaced is removed in a thread after it returns, not before (the watches)."""
    check_paths(config.paths)
    embedder = embedder or make_embedder(config.backend)
    kwargs: dict = {"max_bytes": max_bytes} if max_bytes else {}
    if changed_paths is not None:
        kwargs["changed_paths"] = changed_paths
    if clean_up_after:
        kwargs["remove_replaced"] = False
    from index.builder import build_index  # deferred: see TYPE_CHECKING above

    report = build_index(
        config.paths,
        config.resolved_index_dir,
        embedder,
        config.chunking,
        rebuild=rebuild,
        wait=wait,
        progress=progress or (lambda *_: None),
        cancelled=cancelled,
        **kwargs,
    )
    if clean_up_after:
        open_store(config.resolved_index_dir).clean_up(background=True)
    return report


FULL_CHECK_SECONDS = 60.0
"""With change notifications, every file is still compared with the index this often: a change the
system does not report (a network folder, the target of a symbolic link) is found within a minute."""


def open_change_feed(config: RunConfig, on_change: Callable[[], None] = lambda: None) -> ChangeFeed | None:
    """Change notifications for the corpus's folders (index/changes.py), or None when a path is a
    single file (its folder's other files are not the corpus) or watchfiles is missing."""
    if not config.paths or not all(p.is_dir() for p in config.paths):
        return None
    if importlib.util.find_spec("watchfiles") is None:
        return None
    from index.changes import ChangeFeed, hidden_or_inside  # deferred: see TYPE_CHECKING above

    folders = [d for d in [config.resolved_index_dir] if isinstance(d, Path)]  # a server store is no folder
    return ChangeFeed(config.paths, hidden_or_inside(config.paths, folders), on_change)


def ready_feed(feed: ChangeFeed | None) -> ChangeFeed | None:
    """The feed once its watches are in place, or None (the feed closed) when it could not start: the
    watch then compares every file on its timer."""
    if feed is not None and not feed.wait_ready():
        feed.close()
        return None
    return feed


WATCH_SHARE = 0.02
"""At most this share of the time goes to comparing the files with the index while watching (the
chat's tui/watch.py and `qa index --watch`): at a 3 s interval, comparisons over 60 ms (about 5,000
files) space the next one out."""


def watch_pause(elapsed: float, interval: float) -> float:
    """Extra seconds to wait, beyond the interval, after a comparison that took `elapsed` seconds."""
    return max(0.0, elapsed / WATCH_SHARE - interval)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)  # a module function, so tests can replace it


GONE_SECONDS = 1.0
"""While a corpus folder is gone, how often the watch looks whether it is back."""


def missing_paths(paths: Collection[Path]) -> list[Path]:
    """The corpus paths that are not there (a folder moved away or deleted, perhaps for a moment)."""
    return [p for p in paths if not p.exists()]


def look_at_folders(
    paths: Collection[Path],
    gone: list[Path],
    changed_paths: Collection[str] | None,
    feed: ChangeFeed | None,
    on_gone: Callable[[list[Path]], None],
) -> tuple[list[Path], bool]:
    """(the corpus paths missing now, whether every file must be compared because a folder is back) for the
    watches, gone being what the last look found missing; on_gone gets the missing paths when they differ from
    gone ([] once they are back). A folder is back when it was missing, or when a change notification names it
    itself (moved away and back, or deleted and made again, between two looks); the feed then watches it
    afresh, since its old watch sees nothing in a folder made again."""
    missing = missing_paths(paths)
    back = not missing and (
        bool(gone) or (bool(changed_paths) and any(str(p.absolute()) in changed_paths for p in paths))
    )
    if missing != gone:
        on_gone(missing)
    if back and feed is not None:
        feed.restart()
        feed.wait_ready()
    return missing, back


def watch_corpus(
    config: RunConfig,
    embedder: Embedder,
    on_report: Callable[[BuildReport], None],
    *,
    interval: float = 3.0,
    max_bytes: int | None = None,
    sleep: Callable[[float], None] | None = None,
    feed: ChangeFeed | None = None,
    on_gone: Callable[[list[Path]], None] = lambda missing: None,
) -> None:
    """Keep the index up to date until interrupted, indexing what changed (on_report gets each BuildReport).

    With a change feed (open_change_feed; the caller closes it), the files the system reports as
    changed are compared with the index as soon as they are saved, and every file only every
    FULL_CHECK_SECONDS. Without one, every `interval` seconds every file is compared by stat
    (index.builder.pending_changes: unchanged files are not read), and a corpus whose comparison
    takes longer than WATCH_SHARE of the interval is compared less often.

    A corpus path that is gone (a folder moved away or deleted: a checkout, a sync tool) leaves the
    index as it was: on_gone gets the missing paths, the watch waits for them, and when they are back
    on_gone gets [] and every file is compared (with the feed watching the folders afresh)."""
    from index.builder import changes_since  # deferred: see TYPE_CHECKING above

    kwargs = {"max_bytes": max_bytes} if max_bytes else {}
    sleep = sleep or _sleep
    full_at = time.monotonic() + (FULL_CHECK_SECONDS if feed is not None else 0.0)
    gone: list[Path] = []
    while True:
        changed_paths = None
        if feed is not None and feed.broken is None and not gone:
            if not feed.wait(interval):
                if time.monotonic() < full_at and not missing_paths(config.paths):
                    continue
            else:
                changed_paths = feed.take()  # None: too many to list, compare every file
        else:
            sleep(min(interval, GONE_SECONDS) if gone else interval)
        gone, back = look_at_folders(config.paths, gone, changed_paths, feed, on_gone)
        if gone:
            continue
        if back:
            changed_paths = None  # what changed meanwhile: compare every file
        started = time.monotonic()
        if changed_paths is None:
            full_at = started + FULL_CHECK_SECONDS
        try:
            if changes_since(
                open_store(config.resolved_index_dir), config.paths, changed_paths=changed_paths, **kwargs
            ):
                on_report(
                    index_corpus(
                        config,
                        embedder,
                        wait=True,
                        max_bytes=max_bytes,
                        changed_paths=changed_paths,
                        clean_up_after=True,
                    )
                )
        except (QAError, OSError):
            if not missing_paths(config.paths):
                raise
            continue  # gone meanwhile: the next round says so
        pause = (
            watch_pause(time.monotonic() - started, interval)
            if changed_paths is None and (feed is None or feed.broken)
            else 0.0
        )
        if pause:
            sleep(pause)


def open_engine(
    config: RunConfig,
    embedder: Embedder | None = None,
    *,
    build_if_missing: bool = True,
    progress: Progress | None = None,
    explicit_backend: bool = False,
    preload: bool = False,
) -> tuple[Engine, BuildReport | None]:
    """Open the corpus's index, building it first when there is none yet.

    preload: start loading the model (and encoding once) in a background thread before the index
    is opened, so opening it is off the critical path; the first embed() waits for that load.
    """
    check_paths(config.paths)
    index_dir = config.resolved_index_dir
    report = None
    manifest = open_store(index_dir).manifest() if build_if_missing or preload else None
    if build_if_missing and manifest is None:
        embedder = embedder or make_embedder(config.backend)
        report = index_corpus(config, embedder, wait=True, progress=progress)
    elif preload and manifest is not None and not (explicit_backend and config.backend != manifest.backend):
        try:
            embedder = embedder or make_embedder(config.backend if explicit_backend else manifest.backend)
        except QAError:
            pass  # Engine.open reports it, after checking the index as before
        if embedder is not None:
            preload_model(embedder)
    engine = Engine.open(index_dir, embedder, backend=config.backend if explicit_backend else None)
    return engine, report


def preload_model(embedder: Embedder) -> threading.Thread | None:
    """Load the model (which encodes once, to warm up) in a daemon thread. Errors are left for the
    caller's own load()/embed(), which retries and raises them (load() is locked: nothing loads twice)."""
    load = getattr(embedder, "load", None)
    if load is None:
        return None

    def run() -> None:
        try:
            load()
        except Exception:  # noqa: BLE001 - raised again by the caller's own load()
            pass

    thread = threading.Thread(target=run, name="qa-model-load", daemon=True)
    thread.start()
    return thread
