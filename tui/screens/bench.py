"""The bench screen: retrieval accuracy on a question file, per mode, and each question's drill-down."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState, get_current_worker

from index.errors import CancelledError, InputError
from qa.questions import load_questions
from qa.settings import MODES
from tui.bench_display import coverage_note, drill_down, is_problem, outcome_row, summary_text
from tui.loading import describe

if TYPE_CHECKING:
    from qa.bench import ModeResult
    from qa.questions import Question

NO_FILE = (
    "No question file loaded. Type the path of one (JSONL, as for `qa bench`) and press Enter, "
    "or start the chat with `qa chat --questions FILE`."
)


@dataclass(frozen=True)
class BenchRun:
    """What a bench screen measured; the app keeps it so reopening the screen is instant."""

    engine: object
    """The engine it ran on: results are stale once a re-index replaces it."""
    path: Path
    questions: tuple[Question, ...]
    results: tuple[ModeResult, ...]
    """The modes that finished, in the order they ran."""
    note: str = ""
    """The coverage warning, if any."""
    current: int = 1
    """The question the drill-down showed last (1-based), highlighted again on reopening."""


@dataclass(frozen=True)
class BenchClosed:
    """What the screen returns."""

    run: BenchRun | None
    ask: str | None = None
    """A question to ask in the chat (enter on a question), or None."""


class QuestionList(OptionList):
    """The bench's question list: a click on another question only shows its drill-down; enter asks it."""

    def _on_click(self, event) -> None:
        clicked = event.style.meta.get("option")
        if clicked is not None and clicked != self.highlighted:
            event.prevent_default()  # skip OptionList's click handler, which would also select (ask) it
            self.highlighted = clicked


class BenchScreen(ModalScreen[BenchClosed]):
    """Runs the bench in a worker (shown mode first), then lists the questions; highlight one to drill down."""

    BINDINGS = [
        Binding("escape", "close", "Close the bench"),
        Binding("m", "next_mode", "Next retrieval mode"),
        Binding("f", "toggle_problems", "Only problems / all questions"),
        Binding("r", "rerun", "Reload the file and run again"),
    ]

    @dataclass
    class Loaded(Message):
        """The question file was read (note: the coverage warning, or '')."""

        path: Path
        questions: tuple[Question, ...]
        note: str

    @dataclass
    class Progress(Message):
        """One more question asked in a mode; a newer one replaces the older on the progress line."""

        mode: str
        done: int
        total: int

    @dataclass
    class ModeDone(Message):
        """Every question was asked in one mode and scored."""

        result: ModeResult

    shown: reactive[str] = reactive("hybrid", init=False)
    only_problems: reactive[bool] = reactive(False, init=False)

    def __init__(self, engine, path: Path | None, previous: BenchRun | None = None, mode: str = "hybrid") -> None:
        super().__init__()
        self.engine = engine
        self.modes: tuple[str, ...] = MODES
        self.path = previous.path if previous else path
        self.questions = previous.questions if previous else None
        self.results: dict[str, ModeResult] = {r.mode: r for r in previous.results} if previous else {}
        self.note = previous.note if previous else ""
        self.running: str | None = None
        self._worker: Worker | None = None
        self.current = previous.current if previous else 1
        """Number (1-based, file order) of the question the drill-down shows."""
        self.set_reactive(BenchScreen.shown, mode)

    def compose(self):
        with Vertical(id="bench-body") as body:
            body.border_title = "Retrieval bench"
            body.border_subtitle = (
                "↑↓ question · enter: ask it in the chat · m: mode · f: only problems · r: run again · esc: close"
            )
            yield Static(id="bench-message")
            yield Input(placeholder="path/to/questions.jsonl", id="bench-path")
            yield Static(id="bench-summary")
            with Horizontal(id="bench-progress-row"):
                yield Static(id="bench-progress-label")
                yield ProgressBar(show_eta=False, id="bench-progress")
            with Horizontal(id="bench-main"):
                yield QuestionList(id="bench-list")
                with VerticalScroll(id="bench-detail"):
                    yield Static(id="bench-drill")

    def on_mount(self) -> None:
        if self.path is None:
            self._ask_for_path(NO_FILE)
        else:
            self._start()

    # -- running --------------------------------------------------------------------

    def _start(self) -> None:
        todo = [m for m in (self.shown, *self.modes) if m not in self.results]
        self._set_message(self.note, "warning")
        self.query_one("#bench-path").display = False
        if todo:
            self.running = todo[0]
            self._show_progress(todo[0], 0, len(self.questions or ()))
            self._worker = self.run_bench(self.path, self.questions, tuple(dict.fromkeys(todo)))
        else:
            self.query_one("#bench-progress-row").display = False
        self._show_mode()

    @work(thread=True, exclusive=True, group="bench", exit_on_error=False)
    def run_bench(self, path: Path, questions: tuple[Question, ...] | None, modes: tuple[str, ...]) -> None:
        from qa.bench import bench_questions  # deferred: numpy; loads with the first bench, in its worker

        worker = get_current_worker()
        if questions is None:
            questions = tuple(load_questions(path))
            if not questions:
                raise InputError(
                    f"{path} holds no questions.", 'Each line must be {"question": "...", "evidence": [...]}.'
                )
            if worker.is_cancelled:
                return
            self.post_message(self.Loaded(path, questions, coverage_note(questions, self.engine.sources())))

        def progress(mode: str, done: int, total: int) -> None:
            if worker.is_cancelled:
                raise CancelledError("The bench was closed.")
            self.post_message(self.Progress(mode, done, total))

        for mode in modes:
            (result,) = bench_questions(self.engine, questions, (mode,), progress=progress)
            if worker.is_cancelled:
                return  # a newer run replaced this one
            self.post_message(self.ModeDone(result))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self.path, self.questions, self.note = message.path, message.questions, message.note
        self._set_message(self.note, "warning")

    @on(Progress)
    def _progress(self, message: Progress) -> None:
        if message.mode != self.running:
            self.running = message.mode
            self._show_summary()
        self._show_progress(message.mode, message.done, message.total)

    @on(ModeDone)
    def _mode_done(self, message: ModeDone) -> None:
        self.results[message.result.mode] = message.result
        if message.result.mode == self.shown:
            self._show_mode()
        else:
            self._show_summary()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self._worker or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        self.running = None
        self.query_one("#bench-progress-row").display = False
        self._show_summary()
        exc = event.worker.error
        if event.state == WorkerState.ERROR and not isinstance(exc, CancelledError):
            if self.questions is None:
                self._ask_for_path(f"Error: {describe(exc)}", "error")
            else:
                self._set_message(f"Error: {describe(exc)}", "error")

    # -- showing ----------------------------------------------------------------------

    def _set_message(self, line: str, kind: str = "") -> None:
        message = self.query_one("#bench-message", Static)
        message.update(Text(line))
        message.display = bool(line)
        message.set_class(kind == "error", "error")
        message.set_class(kind == "warning", "warning")

    def _ask_for_path(self, line: str, kind: str = "") -> None:
        self._set_message(line, kind)
        for hidden in ("#bench-summary", "#bench-progress-row", "#bench-main"):
            self.query_one(hidden).display = False
        box = self.query_one("#bench-path", Input)
        box.display = True
        if self.path is not None:
            box.value = str(self.path)
        box.focus()

    def _show_progress(self, mode: str, done: int, total: int) -> None:
        self.query_one("#bench-progress-row").display = True
        what = f"{done}/{total} questions" if total else "reading the question file"
        self.query_one("#bench-progress-label", Static).update(Text(f"Asking in {mode} mode: {what} "))
        self.query_one(ProgressBar).update(total=total or None, progress=done)

    def _show_summary(self) -> None:
        summary = self.query_one("#bench-summary", Static)
        summary.display = True
        name = self.path.name if self.path else ""
        self.query_one("#bench-body").border_title = f"Retrieval bench · {name}" if name else "Retrieval bench"
        summary.update(summary_text(self.results, self.shown, self.modes, self.running))

    def _show_mode(self) -> None:
        """Fill the list with the shown mode's questions, keeping the highlighted question if it is listed."""
        self._show_summary()
        self.query_one("#bench-main").display = True
        listing = self.query_one(OptionList)
        listing.clear_options()
        result = self.results.get(self.shown)
        if result is None:
            self.query_one("#bench-drill", Static).update(Text(""))
            return
        rows = [(n, o) for n, o in enumerate(result.outcomes, 1) if not self.only_problems or is_problem(o)]
        listing.add_options([Option(outcome_row(n, o), id=str(n)) for n, o in rows])
        if not rows:
            self.query_one("#bench-drill", Static).update(
                Text("No problems in this mode: every question is a hit@1 with the right abstention.", style="green")
            )
            return
        numbers = [n for n, _ in rows]
        listing.highlighted = numbers.index(self.current) if self.current in numbers else 0
        listing.focus()

    @on(OptionList.OptionHighlighted, "#bench-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        result = self.results.get(self.shown)
        if result is None or event.option.id is None:
            return
        self.current = int(event.option.id)
        self.query_one("#bench-drill", Static).update(drill_down(self.current, result.outcomes[self.current - 1]))
        self.query_one("#bench-detail", VerticalScroll).scroll_home(animate=False)

    @on(OptionList.OptionSelected, "#bench-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        question = self.results[self.shown].outcomes[int(event.option.id) - 1].question.question
        self.dismiss(BenchClosed(self._run(), ask=question))

    @on(Input.Submitted, "#bench-path")
    def _path_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if not value:
            self._set_message(NO_FILE)
            return
        self.path = Path(value).expanduser()
        self.action_rerun()

    # -- actions ----------------------------------------------------------------------

    def _run(self) -> BenchRun | None:
        if self.questions is None or self.path is None:
            return None
        return BenchRun(self.engine, self.path, self.questions, tuple(self.results.values()), self.note, self.current)

    def action_close(self) -> None:
        self.dismiss(BenchClosed(self._run()))

    def action_next_mode(self) -> None:
        if self.questions is None:
            return
        self.shown = self.modes[(self.modes.index(self.shown) + 1) % len(self.modes)]

    def watch_shown(self) -> None:
        self._show_mode()

    def action_toggle_problems(self) -> None:
        if self.questions is None:
            return
        self.only_problems = not self.only_problems

    def watch_only_problems(self) -> None:
        self._show_mode()

    def action_rerun(self) -> None:
        if self.path is None:
            return
        self.questions, self.results, self.note = None, {}, ""
        self._start()
