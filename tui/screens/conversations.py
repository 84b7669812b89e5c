"""Reopening a past conversation: a modal list of saved conversations, newest first."""

from __future__ import annotations

import time

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tui.display import one_line
from tui.history import ConversationSummary


def summary_text(c: ConversationSummary) -> Text:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(c.started))
    text = Text(when, style="dim")
    text.append("  ")
    text.append(one_line(c.title, 80), style="bold")
    text.append(f"  {c.turns} question{'s' if c.turns != 1 else ''}", style="dim")
    return text


class ConversationsScreen(ModalScreen[int | None]):
    """Returns the chosen conversation's id, or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, conversations: list[ConversationSummary]) -> None:
        super().__init__()
        self.conversations = conversations

    def compose(self):
        with Vertical(id="conversations-body") as body:
            body.border_title = "Past conversations"
            body.border_subtitle = "enter: reopen · esc: cancel"
            if not self.conversations:
                yield Static(Text("No past conversations yet: ask something first.", style="dim"))
            yield OptionList(
                *(Option(summary_text(c), id=str(c.id)) for c in self.conversations), id="conversations-list"
            )

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id))

    def action_cancel(self) -> None:
        self.dismiss(None)
