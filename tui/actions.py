"""What the user does with answers: read a citation in its source, edit, copy, export, filter, reopen."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

from textual.app import SuspendNotSupported
from textual.containers import VerticalScroll
from textual.widgets import Static

from index.locations import data_dir
from qa.results import Citation
from tui.commands import help_sections
from tui.display import locate, one_line
from tui.markdown import answer_markdown, conversation_markdown, write_new
from tui.messages import CitationChosen
from tui.screens.conversations import ConversationsScreen
from tui.screens.filter import FilterScreen
from tui.screens.help import HelpScreen
from tui.widgets.citations import CitationList
from tui.widgets.question_input import QuestionInput
from tui.widgets.source_view import SourcePane, SourceView
from tui.widgets.turn import TurnView

_VIEWERS = {".pdf": ("PDF", "PDF viewer"), ".docx": ("Word document", "word processor")}
"""Files that $EDITOR cannot show as text: what they are, and what opens them."""


def editor_command(path: Path, line: int) -> list[str]:
    """$EDITOR (or $VISUAL, or vi) at a line: the +LINE convention vi, emacs, nano and micro share."""
    editor = os.environ.get("EDITOR") or os.environ.get("VISUAL") or "vi"
    return [*shlex.split(editor), f"+{line}", str(path)]


class TurnActions:
    """Mixed into ChatApp; kept apart so each module stays small."""

    current_citation: Citation | None = None
    bench_run = None
    """The last bench screen's results (tui.screens.bench.BenchRun), shown again while the engine is the same."""
    shown: tuple[Citation, Citation | None, str] | None = None
    """What the source pane shows: the citation and the answer sentence inside it, if any."""

    # -- source pane ------------------------------------------------------------------

    def on_citation_chosen(self, message: CitationChosen) -> None:
        # A plain method name, not @on: the mixin is not a MessagePump, so decorators would be missed.
        self.current_citation = message.citation
        pane = self.query_one(SourcePane)
        if message.open_pane or pane.display:
            self.show_source(message.citation, message.answer, message.question)

    def _corpus_root(self) -> Path:
        if self.engine is not None:
            return Path(self.engine.root)
        from index.walk import corpus_root  # deferred: slow to import; the first frame does not need it

        return corpus_root(self.config.paths)

    def _read_source(self, source: str) -> str | None:
        if self.engine is not None:
            return self.engine.document_text(source)
        from qa.cite import SourceReader  # deferred: numpy; the window opens before the engine loads

        return SourceReader(self._corpus_root()).text_of(source)

    def show_source(self, citation: Citation, answer: Citation | None = None, question: str = "") -> None:
        """Open the source pane on the citation's document, span highlighted (or marked stale), the
        question's words marked inside it."""
        self.shown = (citation, answer, question)
        text = self._read_source(citation.source)
        pane = self.query_one(SourcePane)
        span = locate(text, citation) if text is not None else None
        emphasis = locate(text, answer) if text is not None and answer is not None else None
        words = ()
        if span is not None and question:
            from qa.extract import highlight_spans  # deferred: numpy; the window opens before the engine loads

            words = tuple((span[0] + a, span[0] + b) for a, b in highlight_spans(question, text[span[0] : span[1]]))
        # Filled before it is shown, so its first frame has the title; the text is wrapped and scrolled to the
        # span once the pane has its size (SourceView.on_resize).
        pane.show(citation, text, span, emphasis, words)
        pane.display = True

    def action_close_source(self) -> None:
        """Escape: hide the source pane and go back to the question box."""
        self.query_one(QuestionInput).focus()
        self.query_one(SourcePane).display = False

    def action_focus_citations(self) -> None:
        """Tab from the question box: into the newest turn's citations."""
        lists = list(self.query(CitationList))
        if not lists:
            self.notify("No citations yet: ask a question first.", severity="warning")
            return
        target = lists[-1]
        target.focus()
        if target.highlighted is None and target.option_count:
            target.highlighted = 0

    # -- one turn -----------------------------------------------------------------------

    def _selected_turn(self) -> TurnView | None:
        node = self.focused
        while node is not None and not isinstance(node, TurnView):
            node = node.parent
        if node is not None:
            return node
        answered = [t for t in self.query(TurnView) if t.answer is not None]
        return answered[-1] if answered else None

    def _cited_line(self, citation: Citation) -> int:
        """The line the pane scrolled to (the answer sentence's, or where the text moved), else the cited one."""
        view = self.query_one(SourceView)
        if self.query_one(SourcePane).display and self.shown and self.shown[0] == citation and view.focus_line:
            return view.focus_line
        return citation.line_start

    def action_open_editor(self) -> None:
        """e: the editor at what the source pane shows when it is open (its header's file and line, which `a`
        or a click on the answer may have moved away from the highlighted citation), else at that citation."""
        if self.query_one(SourcePane).display and self.shown is not None:
            self.current_citation = self.shown[0]
        elif isinstance(self.focused, CitationList) and self.focused.current_citation is not None:
            self.current_citation = self.focused.current_citation
        citation = self.current_citation
        if citation is None:
            self.notify("Pick a citation first: Tab, then up/down.", severity="warning")
            return
        viewer = _VIEWERS.get(Path(citation.source).suffix.lower())
        if viewer is not None:  # a text editor would show its bytes, not the cited line
            self.notify(
                f"{one_line(citation.source, 80)} is a {viewer[0]}: open it in your {viewer[1]}; "
                "the source pane (Enter) shows its text.",
                severity="warning",
                markup=False,
            )
            return
        command = editor_command(self._corpus_root() / citation.source, self._cited_line(citation))
        (self._run_editor or self._run_editor_suspended)(command)
        if self.query_one(SourcePane).display:
            self.show_source(*self.shown)  # the file may have changed in the editor

    def _run_editor_suspended(self, command: list[str]) -> None:
        try:
            with self.suspend():
                subprocess.run(command, check=False)
        except SuspendNotSupported:
            self.notify("This terminal can't hand over to an editor; open the file yourself.", severity="warning")
        except OSError as exc:
            self.notify(
                f"Could not start {command[0]} ({exc.strerror}). Set $EDITOR to your editor.",
                severity="error",
                markup=False,
            )

    def action_copy_turn(self) -> None:
        turn = self._selected_turn()
        if turn is None or turn.answer is None:
            self.notify("Nothing to copy yet.", severity="warning")
            return
        self.copy_to_clipboard(answer_markdown(turn.answer))
        self.notify("Copied the turn as Markdown (if your terminal allows clipboard access; else use Export).")

    def action_export_turn(self) -> None:
        turn = self._selected_turn()
        if turn is None or turn.answer is None:
            self.notify("Nothing to export yet.", severity="warning")
            return
        self._export(answer_markdown(turn.answer), f"qa-{time.strftime('%Y%m%d-%H%M%S')}-{turn.turn_id}")

    def action_export_conversation(self) -> None:
        """ctrl+s: every turn on screen, oldest first, as one Markdown file."""
        turns = [(turn.question, turn.answer) for turn in self.query(TurnView)]
        if not turns:
            self.notify("Nothing to export yet: ask a question first.", severity="warning")
            return
        when = time.strftime("%Y-%m-%d %H:%M %Z")
        text = conversation_markdown(self.corpus_name, turns, when)
        self._export(text, f"qa-conversation-{time.strftime('%Y%m%d-%H%M%S')}")

    def _export(self, text: str, stem: str) -> None:
        """Write an export under the data dir (not the corpus, which the chat watches and would index it from),
        next to the chat history; a new name rather than over an existing file."""
        folder = data_dir() / "exports"
        try:
            path = write_new(folder, stem, text)
        except OSError as exc:
            self.notify(f"Could not write to {folder}: {exc.strerror or exc}.", severity="error", markup=False)
            return
        self.notify(f"Exported to {path}", markup=False, timeout=10)

    # -- dialogs ------------------------------------------------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen(help_sections(self)))

    def action_filter(self) -> None:
        if self.engine is None:
            self.notify("The index is still loading; the document list comes with it.", severity="warning")
            return
        self.push_screen(FilterScreen(self.engine.sources(), self.sources), self._filter_chosen)

    def _filter_chosen(self, chosen: tuple[str, ...] | None) -> None:
        if chosen is not None:
            self.sources = chosen

    def action_bench(self) -> None:
        from tui.screens.bench import BenchScreen  # deferred: the first frame does not need it

        if self.engine is None:
            self.notify("The index is still loading; the bench opens once it is ready.", severity="warning")
            return
        if self._indexing() is not None:
            self.notify("Re-indexing is running; open the bench when it has finished.", severity="warning")
            return
        previous = self.bench_run if self.bench_run is not None and self.bench_run.engine is self.engine else None
        self.push_screen(BenchScreen(self.engine, self.questions_path, previous, self.mode), self._bench_closed)

    def _bench_closed(self, closed) -> None:
        if closed.run is not None:
            self.bench_run, self.questions_path = closed.run, closed.run.path
        if closed.ask:
            self.query_one(QuestionInput).focus()
            self.ask(closed.ask)

    def action_conversations(self) -> None:
        self.push_screen(ConversationsScreen(self.history.conversations()), self.reopen)

    def action_new_conversation(self) -> None:
        self.reopen(None, fresh=True)

    def reopen(self, conversation_id: int | None, fresh: bool = False) -> None:
        """Replace the view with a saved conversation (or an empty one); new questions continue it."""
        if conversation_id is None and not fresh:
            return
        self._queue.clear()  # unanswered questions stay in the history, unanswered
        conversation = self.query_one("#conversation", VerticalScroll)
        conversation.remove_children()
        self.query_one(SourcePane).display = False
        self.conversation_id = conversation_id
        if conversation_id is None:
            conversation.mount(Static(self._welcome(), id="welcome"))
            return
        for question, answer in self.history.turns(conversation_id):
            turn = TurnView(0, question, answer, self.show_scores)
            conversation.mount(turn)
            if answer is None:
                turn.call_after_refresh(
                    turn.show_failure, "Not answered (the chat closed first). Ask again to answer it."
                )
        conversation.call_after_refresh(conversation.scroll_end, animate=False)
        self.query_one(QuestionInput).focus()
