"""The `?` help screen: what the chat does and every key, generated from the bindings."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

INTRO = (
    "Type a question and press Enter. The answer sentence comes first, with the words that match "
    "your question highlighted and a confidence; below it the cited passages [1], [2], ... with their "
    "file and lines. Press Tab to move into the citations, up/down to pick one, Enter to read it in its "
    "document (right), e to open the file in $EDITOR at that line. Files you save while the chat is open "
    "are indexed as you save them. Everything is also in the command palette (ctrl+p)."
)


def help_text(sections: list[tuple[str, list[tuple[str, str]]]]) -> Text:
    """Sections of (keys, what they do) as aligned plain text."""
    text = Text(INTRO + "\n", style="")
    width = min(16, max((len(k) for _, rows in sections for k, _ in rows), default=8)) + 2
    for title, rows in sections:
        text.append(f"\n{title}\n", style="bold underline")
        for keys, description in rows:
            text.append(f"  {keys:<{width}}", style="bold cyan")
            text.append(f"{description}\n")
    return text


class HelpScreen(ModalScreen[None]):
    """Modal; any of escape, q, ? or f1 closes it."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close help")]

    def __init__(self, sections: list[tuple[str, list[tuple[str, str]]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self):
        with VerticalScroll(id="help-body") as body:
            body.border_title = "qa chat — help"
            body.border_subtitle = "esc to close"
            yield Static(help_text(self.sections), id="help-text")

    def action_dismiss(self) -> None:
        self.dismiss(None)
