"""Edits while the chat is open. The operating system reports which files changed (index/changes.py)
and those alone are compared with the index as soon as they are saved; every few seconds, and for
every file once a minute (or every few seconds where there are no notifications), the files are
compared by stat, as `qa index` does (unchanged files are not read). When they differ the index is
brought up to date in the background, as when the chat opens."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual import work
from textual.screen import ModalScreen
from textual.worker import WorkerState

from index.errors import QAError
from tui.messages import FilesChanged, FilesNotified, FoldersGone
from tui.widgets.status import StatusLine

if TYPE_CHECKING:
    from index.changes import ChangeFeed
    from qa.engine import Engine

WATCH_SECONDS = 3.0
"""How often the files are compared with the index when the system sends no change notifications (a
slow comparison spaces them out: qa/service.py watch_pause)."""


class FileWatch:
    """Mixed into ChatApp (which has engine, config, watch_seconds, reindex and _indexing)."""

    _watch_timer = None
    _watch_after = 0.0
    _watch_paused = False
    """Set when an update started here failed: the user has seen the error; ctrl+r tries again."""
    _feed: ChangeFeed | None = None
    _full_at = 0.0
    """When every file is compared next (time.monotonic); before it, only what the feed reports."""
    _gone: list = []
    """Corpus paths found missing by the last comparison: the index is kept as it was until they are back."""

    def start_watching(self) -> None:
        """Compare the files with the index from now on (called whenever an engine is ready)."""
        self._watch_paused = False
        if self._watch_timer is None and self.watch_seconds is not None:
            self._watch_timer = self.set_interval(self.watch_seconds, self._watch_tick, name="file-watch")
            self.open_feed()
        elif self._feed is not None and self._feed.pending():
            self.call_later(self._watch_tick)  # saved during the update that just ended: not a timer's wait later

    @work(thread=True, group="feed", exit_on_error=False)
    def open_feed(self) -> None:
        """Start the change notifications (importing watchfiles and watching every folder takes a while)."""
        from qa.service import open_change_feed, ready_feed  # deferred: numpy; loads in the worker

        feed = ready_feed(open_change_feed(self.config, on_change=lambda: self.post_message(FilesNotified())))
        if feed is not None:
            self._feed = feed
            self._full_at = 0.0  # one comparison of every file now that nothing is missed: what changed before

    def on_unmount(self) -> None:
        if self._feed is not None:
            self._feed.close()

    def on_files_notified(self, message: FilesNotified) -> None:
        self._watch_tick()

    def _watch_tick(self) -> None:
        engine = self.engine
        if engine is None or not hasattr(engine, "index") or self._watch_paused or time.monotonic() < self._watch_after:
            return
        if isinstance(self.screen, ModalScreen):
            return  # the bench may be running on this engine, the filter lists its documents: after they close
        if self._indexing() is not None or any(
            w.group == "watch" and w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in self.workers
        ):
            return  # what the feed reported stays pending until then
        feed = self._feed
        if feed is not None and feed.broken is None and time.monotonic() < self._full_at:
            if feed.pending():
                self.compare_files(engine, feed.take())
            return
        self.compare_files(engine)

    @work(thread=True, exclusive=True, group="watch", exit_on_error=False)
    def compare_files(self, engine: Engine, changed_paths: frozenset[str] | None = None) -> None:
        """Compare the files (only changed_paths, if given) with engine's index."""
        # deferred: numpy; loads in the worker
        from index.builder import changes_since
        from qa.service import FULL_CHECK_SECONDS, look_at_folders, watch_pause

        self._gone, back = look_at_folders(
            self.config.paths,
            self._gone,
            changed_paths,
            self._feed,
            lambda missing: self.post_message(FoldersGone(tuple(missing))),
        )
        if self._gone:  # nothing to compare with: the next tick looks again
            self._full_at = 0.0
            return
        if back:  # moved away and back, or deleted and made again: compare every file
            changed_paths = None
        started = time.monotonic()  # what the comparison takes spaces out the next (watch_pause)
        if changed_paths is None:
            self._full_at = started + FULL_CHECK_SECONDS
        try:
            # Its own connection: the engine's belongs to the thread answering questions.
            changes = changes_since(engine.index, self.config.paths, changed_paths=changed_paths)
        except (QAError, OSError):
            self._full_at = 0.0
            return  # a folder gone, or the index replaced meanwhile: the next tick looks at every file
        finally:
            self._watch_after = time.monotonic() + watch_pause(time.monotonic() - started, self.watch_seconds)
        if changes:
            self.post_message(FilesChanged(engine, changes.summary(), changed_paths))
        elif self._feed is not None and self._feed.pending():
            self.post_message(FilesNotified())  # saved while this comparison ran: its tick was turned away

    def on_folders_gone(self, message: FoldersGone) -> None:
        if message.missing:
            names = ", ".join(p.name or str(p) for p in message.missing)  # the status line has one line
            self.query_one(StatusLine).set_state(
                f"{names}: gone (moved or deleted?) · answering from the index as it was"
            )
        elif self.engine is not None and self._indexing() is None:
            self._show_ready()

    def on_files_changed(self, message: FilesChanged) -> None:
        # A plain method name, not @on: the mixin is not a MessagePump, so decorators would be missed.
        if (
            message.engine is not self.engine
            or self._indexing() is not None
            or self._watch_paused
            or isinstance(self.screen, ModalScreen)
        ):
            self._full_at = 0.0  # the paths it named are taken: the next tick looks at every file
            return  # the index was replaced or is being updated meanwhile, or a dialog opened: the next tick
        self.query_one(StatusLine).set_state(f"Files changed ({message.summary}): updating the index…")
        self.reindex(update=True, changed_paths=message.changed_paths)
