"""The source pane: a whole document with line numbers, the cited span highlighted and scrolled into view."""

from __future__ import annotations

from dataclasses import replace

from rich.segment import Segment
from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from qa.results import Citation
from tui.display import STALE_NOTE, display_text, label_text


class SourceView(ScrollView, can_focus=True):
    """Line-API view of a document: soft-wrapped, numbered, only visible rows rendered."""

    COMPONENT_CLASSES = {"source-view--gutter", "source-view--cited", "source-view--answer", "source-view--marker"}
    BINDINGS = [
        Binding("e", "app.open_editor", "$EDITOR"),
        Binding("c", "center_cited", "Back to citation"),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lines: list[str] = []
        self.span: tuple[int, int] | None = None
        self.emphasis: tuple[int, int] | None = None
        """The answer sentence inside the span, drawn more strongly."""
        self.cited_lines: tuple[int, int] | None = None
        """1-based first and last line of the highlighted span."""
        self.focus_line: int | None = None
        """The line scrolled into view: the answer sentence's, else the span's first."""
        self._rows: list[tuple[int, Text]] = []
        self._first_row: list[int] = []
        self._wrapped_at = -1
        self._center_pending = False
        self._center_tries = 0
        self._rewrap_queued = False

    def show(self, text: str, span: tuple[int, int] | None, emphasis: tuple[int, int] | None = None) -> None:
        """Display text (untrusted) with span = (char_start, char_end) highlighted, emphasis more so."""
        self.lines = display_text(text).split("\n")
        self.span, self.emphasis = span, emphasis
        if span is not None:
            first = text.count("\n", 0, span[0]) + 1
            self.cited_lines = (first, first + text.count("\n", span[0], max(span[0], span[1] - 1)))
        else:
            self.cited_lines = None
        self.focus_line = text.count("\n", 0, emphasis[0]) + 1 if emphasis else (self.cited_lines or (None,))[0]
        self._line_offsets = [0]
        for line in self.lines[:-1]:
            self._line_offsets.append(self._line_offsets[-1] + len(line) + 1)
        self._wrapped_at = -1
        self._center_pending = True
        self._center_tries = 5
        self._rewrap()

    @property
    def gutter_width(self) -> int:
        return len(str(max(1, len(self.lines)))) + 3

    def _wrap_width(self) -> int:
        # self.size is set before Resize is sent and before any line renders (the compositor's region
        # can lag behind); the scrollbar's column is always reserved (scrollbar-gutter: stable).
        return self.size.width - self.styles.scrollbar_size_vertical - self.gutter_width

    def _rewrap(self) -> None:
        self._rewrap_queued = False
        width = self._wrap_width()
        if width < 1 or width == self._wrapped_at:
            return  # not laid out yet (on_resize or render_line will call again), or nothing changed
        self._wrapped_at = width
        cited = self.get_component_rich_style("source-view--cited", partial=True)
        strong = self.get_component_rich_style("source-view--answer", partial=True)
        rows: list[tuple[int, Text]] = []
        self._first_row = []
        for number, (line, offset) in enumerate(zip(self.lines, self._line_offsets), start=1):
            text = Text(line, no_wrap=False, overflow="fold")
            if self.span is not None and self.span[0] < offset + len(line) + 1 and self.span[1] > offset:
                text.stylize(cited, max(0, self.span[0] - offset), max(0, self.span[1] - offset))
            if self.emphasis is not None and self.emphasis[0] < offset + len(line) + 1 and self.emphasis[1] > offset:
                text.stylize(strong, max(0, self.emphasis[0] - offset), max(0, self.emphasis[1] - offset))
            self._first_row.append(len(rows))
            pieces = text.wrap(self.app.console, width) if line else [Text("")]
            rows.extend((number if i == 0 else 0, piece) for i, piece in enumerate(pieces))
        self._rows = rows
        self.virtual_size = Size(width + self.gutter_width, len(rows))
        self.refresh()
        if self._center_pending:
            self.call_after_refresh(self.action_center_cited)

    def on_resize(self) -> None:
        self._rewrap()

    def action_center_cited(self) -> None:
        """Scroll so the answer sentence (or the span's start) sits a quarter of the way down."""
        if self._wrapped_at != self._wrap_width():
            return  # not laid out at its real width yet; _rewrap calls back when it is
        self._center_pending = False
        if self.focus_line is None or not self._first_row:
            self.scroll_home(animate=False)
            return
        row = self._first_row[min(self.focus_line, len(self._first_row)) - 1]
        self.scroll_to(y=max(0, row - max(1, self.size.height // 4)), animate=False)
        if not self.scroll_offset.y <= row < self.scroll_offset.y + self.size.height and self._center_tries > 0:
            # The scroll was clamped by a scroll range not yet updated for the new rows: try after a refresh.
            self._center_tries -= 1
            self.call_after_refresh(self.action_center_cited)

    def render_line(self, y: int) -> Strip:
        if self._wrapped_at != self._wrap_width() and not self._rewrap_queued:
            # Shown before its first layout (or resized without a Resize reaching us): wrap again.
            self._rewrap_queued = True
            self.call_later(self._rewrap)
        row = self.scroll_offset.y + y
        width = self.size.width
        base = self.rich_style
        if row >= len(self._rows):
            return Strip.blank(width, base)
        number, text = self._rows[row]
        in_cited = False
        line_no = number or self._line_of_row(row)
        if self.cited_lines is not None:
            in_cited = self.cited_lines[0] <= line_no <= self.cited_lines[1]
        gutter_style = self.get_component_rich_style("source-view--gutter")
        marker_style = self.get_component_rich_style("source-view--marker")
        digits = self.gutter_width - 3
        gutter = Text(f" {number:>{digits}}" if number else " " * (digits + 1), style=gutter_style)
        gutter.append("▌ " if in_cited else "  ", style=marker_style if in_cited else gutter_style)
        segments = list((gutter + text).render(self.app.console, end=""))
        strip = Strip(Segment.apply_style(segments, base)).crop_extend(self.scroll_offset.x, self.scroll_offset.x + width, base)
        return strip.apply_offsets(self.scroll_offset.x, row)

    def _line_of_row(self, row: int) -> int:
        import bisect

        return bisect.bisect_right(self._first_row, row)


class SourcePane(Vertical):
    """A title (file, lines, stale note) over the SourceView."""

    BINDINGS = [Binding("escape", "app.close_source", "Close source")]

    def compose(self):
        yield Static(id="source-title")
        yield SourceView(id="source-view")

    def show(self, citation: Citation, text: str | None, span: tuple[int, int] | None, emphasis: tuple[int, int] | None = None) -> None:
        title = label_text(replace(citation, stale=False))
        view = self.query_one(SourceView)
        if text is None:
            title.append("\nCannot read this file now (moved or deleted?). Re-index with ctrl+r.", style="bold red")
            view.show("", None)
        else:
            # Judge staleness now, against the file as it is, not as it was when the question was asked.
            moved = span is not None and span[0] != citation.char_start
            if moved or span is None:
                title.append(f"\n{STALE_NOTE}", style="bold red")
                if span is None:
                    title.append(" — the quoted text is no longer in the file.", style="red")
                elif moved:
                    title.append(" — the quoted text moved; highlighted where it is now.", style="red")
            view.show(text, span, emphasis)
        title.append("   e: $EDITOR · esc: close", style="dim")
        self.query_one("#source-title", Static).update(title)
