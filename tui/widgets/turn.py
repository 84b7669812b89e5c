"""One question and its reply in the conversation: question, answer line, cited passages."""

from __future__ import annotations

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import Static

from qa.results import Answer
from qa.sanitize import safe_line
from tui.display import answer_text, one_line
from tui.messages import CitationChosen
from tui.widgets.citations import CitationList


def scope_text(mode: str | None, sources: tuple[str, ...]) -> Text:
    """ "hybrid · all documents", or "hybrid · Searched only: a.txt, b.txt" (the words `qa ask --source`
    prints), the filter marked so a filtered answer is seen to be one. File names are shown as text."""
    if mode is None:
        return Text()
    text = Text(f"{mode} · ", style="dim")
    if not sources:
        return text.append("all documents")
    text.append("Searched only: ", style="bold yellow")
    return text.append(safe_line(", ".join(sources)), style="yellow")


class AnswerLine(Static):
    """The answer sentence; clicking it shows the sentence in its document."""

    answer: Answer | None = None

    def on_click(self) -> None:
        span = self.answer and (self.answer.answer or self.answer.best_guess)
        if span is not None:
            self.post_message(CitationChosen(span.citation, open_pane=True, question=self.answer.question))


class TurnView(Vertical):
    """A turn starts as 'waiting' and becomes an answer or a failure; never blocks the UI."""

    def __init__(
        self,
        turn_id: int,
        question: str,
        answer: Answer | None = None,
        show_scores: bool = False,
        *,
        mode: str | None = None,
        sources: tuple[str, ...] = (),
    ) -> None:
        super().__init__(classes="turn")
        self.turn_id = turn_id
        self.question = question
        self.answer = answer
        self.show_scores = show_scores
        self.mode = mode or (answer.mode if answer else None)
        """The retrieval mode the question is asked with (None: not known, an unanswered turn from history)."""
        self.sources = tuple(sources) if mode else (answer.sources if answer else ())
        """The documents it is restricted to (empty: all)."""
        # Built up front so the turn can be updated before it is mounted.
        self._line = AnswerLine(Text("Waiting…", style="dim italic"), classes="answer")
        self._scope = Static(scope_text(self.mode, self.sources), classes="scope")
        self._scope.display = self.mode is not None

    def compose(self):
        yield Static(Text("› ", style="bold") + Text(one_line(self.question, 2000), style="bold"), classes="question")
        yield self._scope
        yield self._line

    def on_mount(self) -> None:
        # The answer may have arrived between compose and mount; show_answer left the rest to us.
        if self.answer is not None:
            self._show_answer_line(self.answer)
            self._mount_citations()

    def _mount_citations(self) -> None:
        for old in self.query(CitationList):
            old.remove()
        if self.answer is not None and self.answer.passages:
            self.mount(CitationList(self.answer, self.show_scores))

    def show_waiting(self, message: str) -> None:
        self._line.update(Text(message, style="dim italic"))

    def show_failure(self, reason: str) -> None:
        self.add_class("failed")
        self._line.update(Text(reason, style="bold red"))

    def _show_answer_line(self, answer: Answer) -> None:
        self._line.answer = answer
        self._line.update(answer_text(answer))
        self.set_class(not answer.found, "not-found")

    def show_answer(self, answer: Answer) -> None:
        self.answer = answer
        self.mode, self.sources = answer.mode, answer.sources  # what the engine searched, as it says
        self._scope.update(scope_text(self.mode, self.sources))
        self._scope.display = True
        self.remove_class("failed")
        self._show_answer_line(answer)
        if self.is_mounted:
            self._mount_citations()

    def set_show_scores(self, show: bool) -> None:
        self.show_scores = show
        for citations in self.query(CitationList):
            citations.fill(show)

    @property
    def citations(self) -> CitationList | None:
        found = self.query(CitationList)
        return found.first() if found else None
