"""The numbered cited passages of one turn: move with the arrow keys, Enter or click to read one."""

from __future__ import annotations

from textual import events, on
from textual.binding import Binding
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from qa.results import Answer, Citation
from tui.display import passage_text
from tui.messages import CitationChosen
from tui.widgets.question_input import QuestionInput


class CitationList(OptionList):
    """One option per passage; highlighting follows into the source pane when it is open."""

    BINDINGS = [
        Binding("enter", "select", "Read in source", show=True),
        Binding("a", "show_answer", "Answer's source", show=False),
        Binding("e", "app.open_editor", "$EDITOR"),
        Binding("c", "app.copy_turn", "Copy turn"),
        Binding("s", "app.export_turn", "Export turn", show=False),
    ]

    def on_key(self, event: events.Key) -> None:
        """Typing a letter that is not a key of this list starts a new question instead of being lost."""
        bound = {key for binding in self.BINDINGS for key in binding.key.split(",")} | {"question_mark", "space"}
        if event.is_printable and event.character and event.key not in bound:
            box = self.app.query_one(QuestionInput)
            box.focus()
            box.insert_text_at_cursor(event.character)
            event.stop()
            event.prevent_default()

    def __init__(self, answer: Answer, show_scores: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.answer = answer
        self.fill(show_scores)

    def fill(self, show_scores: bool) -> None:
        """(Re)build the options, keeping the highlighted row."""
        keep = self.highlighted
        span = self.answer.answer if self.answer.found else None
        answer_rank = span.passage_rank if span else None
        self.clear_options()
        passages = self.answer.passages
        self.add_options(
            Option(
                passage_text(
                    p,
                    show_scores=show_scores,
                    is_answer=p.rank == answer_rank,
                    question=self.answer.question,
                    focus=_inside(span.citation, p.citation)
                    if span and p.rank == answer_rank
                    else _unseen(p.citation, [q.citation for q in passages[:i]]),
                ),
                id=f"p{p.rank}",
            )
            for i, p in enumerate(passages)
        )
        if keep is not None and keep < self.option_count:
            self.highlighted = keep

    def _chosen(self, index: int, open_pane: bool) -> CitationChosen:
        cite = self.answer.passages[index].citation
        span = self.answer.answer if self.answer.found else None
        inside = span is not None and _inside(span.citation, cite) is not None
        return CitationChosen(cite, open_pane, span.citation if inside else None, self.answer.question)

    @property
    def current_citation(self):
        if self.highlighted is None or not self.answer.passages:
            return None
        return self.answer.passages[self.highlighted].citation

    _wrapped_at = -1
    """The width the options' lines were last wrapped at."""

    def render_lines(self, crop):
        # OptionList re-wraps its options on Resize, which arrives after the first frame at a new width: that frame
        # would show them cut at the old width (opening or closing the source pane changes the column's width).
        if self.size.width != self._wrapped_at:
            self._wrapped_at = self.size.width
            self._option_render_cache.clear()
            self._line_cache.clear()
        return super().render_lines(crop)

    def selection_rows(self) -> tuple[int, int] | None:
        """The screen row where the highlighted option starts, and its height (None: nothing highlighted)."""
        if self.highlighted is None:
            return None
        try:
            # OptionList's own map from option to lines (what its scroll_to_highlight uses).
            line, height = self._index_to_line[self.highlighted], self._heights[self.highlighted]
        except (AttributeError, KeyError):  # a Textual without that map: the whole list
            return self.region.y, self.region.height
        return self.content_region.y + line - round(self.scroll_offset.y), height

    @on(OptionList.OptionHighlighted)
    def _moved(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if self.has_focus:
            self.post_message(self._chosen(event.option_index, open_pane=False))

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(self._chosen(event.option_index, open_pane=True))

    def action_show_answer(self) -> None:
        span = self.answer.answer or self.answer.best_guess
        if span is not None:
            self.post_message(CitationChosen(span.citation, open_pane=True, question=self.answer.question))


def _unseen(passage: Citation, above: list[Citation]) -> tuple[int, int] | None:
    """Where a passage that overlaps better-ranked ones of its file (chunks share sentences) starts
    to say what they do not (offsets into its text), so its preview does not repeat theirs; None when
    it overlaps none of them (its preview is where the question's words are)."""
    spans = sorted(
        (c.char_start, c.char_end)
        for c in above
        if c.source == passage.source and c.char_start < passage.char_end and passage.char_start < c.char_end
    )
    if not spans:
        return None
    at = passage.char_start
    for start, end in spans:
        if start > at:
            break
        at = max(at, end)
    if at >= passage.char_end:
        return None
    while at < passage.char_end and passage.text[at - passage.char_start].isspace():
        at += 1
    return at - passage.char_start, passage.char_end - passage.char_start


def _inside(sentence: Citation, passage: Citation) -> tuple[int, int] | None:
    """Where the sentence is in the passage (offsets into its text), or None when it is not in it."""
    if sentence.source != passage.source or not passage.char_start <= sentence.char_start < passage.char_end:
        return None
    start = sentence.char_start - passage.char_start
    return start, min(sentence.char_end - passage.char_start, len(passage.text))
