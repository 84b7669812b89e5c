"""Edits while the chat is open: every few seconds the corpus's files are compared with the index (by
stat, as `qa index` does: unchanged files are not read), and when they differ the index is brought
up to date in the background, as when the chat opens."""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING

from textual import work
from textual.screen import ModalScreen
from textual.worker import WorkerState

from index.errors import QAError
from tui.messages import FilesChanged
from tui.widgets.status import StatusLine

if TYPE_CHECKING:
    from qa.engine import Engine

WATCH_SECONDS = 3.0
"""How often the files are compared with the index (a slow comparison spaces them out: qa/service.py
watch_pause)."""


class FileWatch:
    """Mixed into ChatApp (which has engine, config, watch_seconds, reindex and _indexing)."""

    _watch_timer = None
    _watch_after = 0.0
    _watch_paused = False
    """Set when an update started here failed: the user has seen the error; ctrl+r tries again."""

    def start_watching(self) -> None:
        """Compare the files with the index from now on (called whenever an engine is ready)."""
        self._watch_paused = False
        if self._watch_timer is None and self.watch_seconds is not None:
            self._watch_timer = self.set_interval(self.watch_seconds, self._watch_tick, name="file-watch")

    def _watch_tick(self) -> None:
        engine = self.engine
        if engine is None or not hasattr(engine, "index") or self._watch_paused or time.monotonic() < self._watch_after:
            return
        if isinstance(self.screen, ModalScreen):
            return  # the bench may be running on this engine, the filter lists its documents: after they close
        if self._indexing() is not None or any(w.group == "watch" and w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in self.workers):
            return
        self.compare_files(engine)

    @work(thread=True, exclusive=True, group="watch", exit_on_error=False)
    def compare_files(self, engine: "Engine") -> None:
        from index.builder import changes_since
        from qa.service import watch_pause

        started = time.monotonic()
        try:
            # Its own connection: the engine's belongs to the thread answering questions.
            changes = changes_since(engine.index.folder, self.config.paths)
        except (QAError, OSError, sqlite3.Error):
            return  # a folder gone, or the index replaced meanwhile: the next tick looks again
        finally:
            self._watch_after = time.monotonic() + watch_pause(time.monotonic() - started, self.watch_seconds)
        if changes:
            self.post_message(FilesChanged(engine, changes.summary()))

    def on_files_changed(self, message: FilesChanged) -> None:
        # A plain method name, not @on: the mixin is not a MessagePump, so decorators would be missed.
        if message.engine is not self.engine or self._indexing() is not None or self._watch_paused or isinstance(self.screen, ModalScreen):
            return  # the index was replaced or is being updated meanwhile, or a dialog opened: the next tick
        self.query_one(StatusLine).set_state(f"Files changed ({message.summary}): updating the index…")
        self.reindex(update=True)
