"""The source pane: a whole document with line numbers, the cited span highlighted and scrolled into view."""

from __future__ import annotations

from dataclasses import replace

from rich.cells import cell_len, get_character_cell_size
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


def wrap_offsets(line: str, width: int) -> list[tuple[int, int]]:
    """(start, end) of each row when line is word-wrapped to width cells; long words are folded."""
    ascii = line.isascii()  # one cell per character: rows can be cut by counting characters
    if len(line) <= width and (ascii or cell_len(line) <= width):
        return [(0, len(line))]
    rows, start = [], 0
    while start < len(line):
        if ascii:
            end = min(len(line), start + width)
        else:
            end, cells = start, 0
            while end < len(line) and cells + get_character_cell_size(line[end]) <= width:
                cells += get_character_cell_size(line[end])
                end += 1
            end = max(end, start + 1)  # a character wider than the pane still takes a row
        if end < len(line):
            space = line.rfind(" ", start, end + 1)
            if space > start:
                end = space + 1  # break after the space, like a word processor
        rows.append((start, end))
        start = end
    return rows


class SourceView(ScrollView, can_focus=True):
    """Line-API view of a document: soft-wrapped, numbered, only visible rows rendered."""

    COMPONENT_CLASSES = {
        "source-view--gutter",
        "source-view--cited",
        "source-view--answer",
        "source-view--word",
        "source-view--marker",
    }
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
        self.words: tuple[tuple[int, int], ...] = ()
        """The question's words inside the span (offsets into the text), marked."""
        self.cited_lines: tuple[int, int] | None = None
        """1-based first and last line of the highlighted span."""
        self.focus_line: int | None = None
        """The line scrolled into view: the answer sentence's, else the span's first."""
        self._line_offsets: list[int] = []
        self._rows: list[tuple[int, int, int]] = []
        self._first_row: list[int] = []
        self._wrapped_at = -1
        self._center_pending = False
        self._center_tries = 0
        self._rewrap_queued = False

    def show(
        self,
        text: str,
        span: tuple[int, int] | None,
        emphasis: tuple[int, int] | None = None,
        words: tuple[tuple[int, int], ...] = (),
    ) -> None:
        """Display text (untrusted) with span = (char_start, char_end) highlighted, emphasis more so, and
        words (offsets into text) marked."""
        self.lines = display_text(text).split("\n")
        self.span, self.emphasis, self.words = span, emphasis, words
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
        """Split lines into rows of at most the pane's width; rows are (line index, start, end) offsets."""
        self._rewrap_queued = False
        width = self._wrap_width()
        if width < 1 or width == self._wrapped_at:
            return  # not laid out yet (on_resize or render_line will call again), or nothing changed
        self._wrapped_at = width
        rows: list[tuple[int, int, int]] = []
        self._first_row = []
        for index, line in enumerate(self.lines):
            self._first_row.append(len(rows))
            rows.extend((index, start, end) for start, end in wrap_offsets(line, width))
        self._rows = rows
        self.virtual_size = Size(width + self.gutter_width, len(rows))
        self.refresh()
        if self._center_pending:
            self.call_after_refresh(self.action_center_cited)

    def _row_text(self, index: int, start: int, end: int) -> Text:
        """One row's text with the cited span, the answer sentence and the question's words styled (built only
        when visible)."""
        text = Text(self.lines[index][start:end])
        offset = self._line_offsets[index] + start
        marks = (
            (self.span, "source-view--cited"),
            (self.emphasis, "source-view--answer"),
            *((w, "source-view--word") for w in self.words),
        )
        for span, component in marks:
            if span is not None and span[0] < offset + (end - start) + 1 and span[1] > offset:
                text.stylize(
                    self.get_component_rich_style(component, partial=True),
                    max(0, span[0] - offset),
                    max(0, span[1] - offset),
                )
        return text

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
        index, start, end = self._rows[row]
        text = self._row_text(index, start, end)
        number = index + 1 if start == 0 else 0
        in_cited = self.cited_lines is not None and self.cited_lines[0] <= index + 1 <= self.cited_lines[1]
        gutter_style = self.get_component_rich_style("source-view--gutter")
        marker_style = self.get_component_rich_style("source-view--marker")
        digits = self.gutter_width - 3
        gutter = Text(f" {number:>{digits}}" if number else " " * (digits + 1), style=gutter_style)
        gutter.append("▌ " if in_cited else "  ", style=marker_style if in_cited else gutter_style)
        segments = list((gutter + text).render(self.app.console, end=""))
        strip = Strip(Segment.apply_style(segments, base)).crop_extend(
            self.scroll_offset.x, self.scroll_offset.x + width, base
        )
        return strip.apply_offsets(self.scroll_offset.x, row)


class SourcePane(Vertical):
    """A title (file, lines, stale note) over the SourceView."""

    BINDINGS = [Binding("escape", "app.close_source", "Close source")]

    def compose(self):
        yield Static(id="source-title")
        yield SourceView(id="source-view")

    def show(
        self,
        citation: Citation,
        text: str | None,
        span: tuple[int, int] | None,
        emphasis: tuple[int, int] | None = None,
        words: tuple[tuple[int, int], ...] = (),
    ) -> None:
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
            view.show(text, span, emphasis, words)
        title.append("   e: $EDITOR · esc: close", style="dim")
        self.query_one("#source-title", Static).update(title)
