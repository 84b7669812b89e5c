"""Search settings the user changes while chatting: mode, k, score breakdown, re-indexing."""

from __future__ import annotations

from index.errors import IndexCorruptError, IndexMismatchError
from tui.commands import K_CHOICES
from tui.widgets.status import StatusLine
from tui.widgets.turn import TurnView


class SettingsActions:
    """Mixed into ChatApp, which declares the reactives mode, k, sources and show_scores."""

    def _settings_changed(self) -> None:
        if self.is_mounted:
            self.query_one(StatusLine).set_settings(self.mode, self.k, self.sources, self.show_scores)

    watch_mode = watch_k = watch_sources = _settings_changed

    def watch_show_scores(self, show: bool) -> None:
        self._settings_changed()
        for turn in self.query(TurnView):
            turn.set_show_scores(show)

    def set_mode(self, mode: str) -> None:
        self.mode = mode

    def set_k(self, k: int) -> None:
        self.k = k

    def action_cycle_mode(self) -> None:
        from qa.settings import MODES  # deferred: the first frame does not need it

        self.mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]

    def action_cycle_k(self) -> None:
        self.k = K_CHOICES[(K_CHOICES.index(self.k) + 1) % len(K_CHOICES)] if self.k in K_CHOICES else K_CHOICES[0]

    def action_toggle_scores(self) -> None:
        self.show_scores = not self.show_scores

    def action_reindex(self, rebuild: bool = False) -> None:
        running = self._indexing()
        if running is not None:
            running.cancel()
            return
        if self.engine is None:
            # Nothing loaded yet (or it failed): try the whole start-up again, rebuilding a damaged index.
            self.query_one(StatusLine).set_state("Loading the model and index…")
            self.load_engine(rebuild or isinstance(self.load_error, (IndexCorruptError, IndexMismatchError)))
        else:
            self.query_one(StatusLine).set_state("Re-indexing…")
            self.reindex(rebuild)
