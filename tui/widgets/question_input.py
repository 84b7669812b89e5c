"""The question box: Enter asks, up/down recall earlier questions (kept across sessions)."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Input


class QuestionInput(Input):
    """An Input with shell-like history recall."""

    BINDINGS = [
        Binding("up", "recall(-1)", "Earlier question", show=False),
        Binding("down", "recall(1)", "Later question", show=False),
        Binding("tab", "app.focus_citations", "Citations", show=True),
    ]

    def __init__(self, history: list[str] | None = None, cursor_blink: bool = True, **kwargs) -> None:
        # No select-all on focus: a draft must survive a trip to the citations and back.
        super().__init__(
            placeholder="Ask a question about your documents, then press Enter", select_on_focus=False, **kwargs
        )
        # Set before mount: the blink timer is then created paused (steady pictures in snapshot tests).
        self.cursor_blink = cursor_blink
        self.history = list(history or [])
        self._position = len(self.history)
        self._draft = ""

    def remember(self, question: str) -> None:
        if not self.history or self.history[-1] != question:
            self.history.append(question)
        self._position = len(self.history)
        self._draft = ""

    def action_recall(self, step: int) -> None:
        if not self.history:
            return
        if self._position == len(self.history):
            self._draft = self.value
        self._position = max(0, min(len(self.history), self._position + step))
        self.value = self.history[self._position] if self._position < len(self.history) else self._draft
        self.cursor_position = len(self.value)
