"""The status line: what the app is doing (loading, indexing, ready, error) and the search settings."""

from __future__ import annotations

from rich.text import Text
from textual.containers import Horizontal
from textual.widgets import Static

STATE_STYLES = {"busy": "bold yellow", "ready": "green", "error": "bold red"}


class StatusLine(Horizontal):
    """Left: state; right: mode, k, document filter."""

    def compose(self):
        yield Static(id="status-state")
        yield Static(id="status-settings")

    def set_state(self, message: str, kind: str = "busy") -> None:
        self.query_one("#status-state", Static).update(Text(message, style=STATE_STYLES.get(kind, "")))
        self.set_class(kind == "error", "error")

    def set_settings(self, mode: str, k: int, sources: tuple[str, ...], scores: bool) -> None:
        if not sources:
            scope = "all documents"
        elif len(sources) == 1:
            scope = f"only {sources[0]}"
        else:
            scope = f"{len(sources)} documents"
        text = Text(f"mode {mode} · k {k} · {scope}" + (" · scores" if scores else ""), style="dim")
        self.query_one("#status-settings", Static).update(text)
