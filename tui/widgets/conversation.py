"""The conversation column: the turns in a scroll view that keeps the highlighted citation in view."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.geometry import Region

from tui.widgets.citations import CitationList


class Conversation(VerticalScroll):
    """Opening or closing the source pane (or resizing the terminal) re-wraps every turn, which moves what
    was on screen; the citation the user is on is scrolled back into view once the new layout is applied."""

    def on_resize(self) -> None:
        self.call_after_refresh(self.keep_selection_in_view)

    def keep_selection_in_view(self) -> None:
        focused = self.screen.focused
        if not isinstance(focused, CitationList) or self not in focused.ancestors:
            return
        rows = focused.selection_rows()
        if rows is None:
            return
        top, height = rows
        window = self.scrollable_content_region
        # Screen rows to this view's virtual rows (0 is the top of its content).
        self.scroll_to_region(
            Region(0, top - window.y + round(self.scroll_offset.y), 1, height), animate=False, immediate=True
        )
