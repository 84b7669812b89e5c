"""Choosing which documents to search: a modal checklist that returns the chosen sources."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, SelectionList, Static
from textual.widgets.selection_list import Selection

from tui.display import display_text


class FilterScreen(ModalScreen[tuple[str, ...] | None]):
    """Returns the selected sources (empty = all documents), or None when cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "apply", "Apply"),
        Binding("ctrl+n", "clear", "All documents"),
    ]

    def __init__(self, sources: list[str], chosen: tuple[str, ...]) -> None:
        super().__init__()
        self.sources = sources
        self.chosen = set(chosen)

    def compose(self):
        with Vertical(id="filter-body") as body:
            body.border_title = "Search only these documents"
            body.border_subtitle = "space: toggle · ctrl+s: apply · ctrl+n: all · esc: cancel"
            yield Static(Text("Nothing ticked means all documents.", style="dim"))
            yield SelectionList[str](
                *(Selection(Text(display_text(s)), s, s in self.chosen) for s in self.sources), id="filter-list"
            )
            with Horizontal(id="filter-buttons"):
                yield Button("Apply", variant="primary", id="apply")
                yield Button("All documents", id="clear")
                yield Button("Cancel", id="cancel")

    @on(Button.Pressed, "#apply")
    def action_apply(self) -> None:
        chosen = set(self.query_one(SelectionList).selected)
        self.dismiss(tuple(s for s in self.sources if s in chosen))

    @on(Button.Pressed, "#clear")
    def action_clear(self) -> None:
        self.dismiss(())

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
