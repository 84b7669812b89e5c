"""The chat app: conversation, source pane, status line; the engine loads and answers in workers."""

from __future__ import annotations

import gc
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Footer, Header, Input, Static
from textual.worker import Worker, WorkerState, get_current_worker

from index.errors import CancelledError, IndexLockedError, QAError
from index.locations import history_db_path
from index.preparing import listen
from qa.config import RunConfig
from qa.render import count
from tui.actions import TurnActions
from tui.commands import chat_commands
from tui.display import one_line
from tui.history import HistoryStore
from tui.loading import STAGES, WAIT_FAILED, EngineLoader, default_loader, describe, warm_up
from tui.messages import AnswerReady, AskFailed, EngineReady, IndexProgress, ModelPreparing
from tui.settings import SettingsActions
from tui.watch import WATCH_SECONDS, FileWatch
from tui.widgets.conversation import Conversation
from tui.widgets.question_input import QuestionInput
from tui.widgets.source_view import SourcePane
from tui.widgets.status import StatusLine
from tui.widgets.turn import TurnView

if TYPE_CHECKING:
    from index.embedder import Embedder
    from qa.engine import Engine


class ChatApp(TurnActions, SettingsActions, FileWatch, App):
    """Ask in the terminal, read the cited passages beside their source."""

    CSS_PATH = "app.tcss"
    TITLE = "qa"
    BINDINGS = [
        Binding("f1,question_mark", "help", "Help"),
        Binding("ctrl+f", "filter", "Filter docs"),
        Binding("ctrl+t", "cycle_mode", "Mode"),
        Binding("ctrl+g", "cycle_k", "Cycle k (3/5/10/20)", show=False),
        Binding("ctrl+b", "toggle_scores", "Score breakdown", show=False),
        Binding("ctrl+r", "reindex", "Re-index (again: cancel)"),
        Binding("ctrl+o", "conversations", "History"),
        Binding("ctrl+s", "export_conversation", "Export chat"),
        Binding("f2", "bench", "Bench: accuracy and misses on a question file", show=False),
        Binding("ctrl+n", "new_conversation", "New conversation", show=False),
        Binding("escape", "close_source", "Close source", show=False),
    ]

    mode: reactive[str] = reactive("hybrid")
    k: reactive[int] = reactive(5)
    sources: reactive[tuple[str, ...]] = reactive(())
    show_scores: reactive[bool] = reactive(False)

    def __init__(
        self,
        config: RunConfig,
        loader: EngineLoader,
        history: HistoryStore,
        run_editor: Callable[[list[str]], None] | None = None,
        cursor_blink: bool = True,
        questions_path: Path | None = None,
        watch_seconds: float | None = WATCH_SECONDS,
    ) -> None:
        super().__init__()
        self.watch_seconds = watch_seconds
        """How often edits to the corpus are looked for (tui/watch.py); None: never."""
        self.cursor_blink = cursor_blink
        self.questions_path = questions_path
        self.config = config
        self.loader = loader
        self.history = history
        self.engine: Engine | None = None
        self.conversation_id: int | None = None
        self.load_error: BaseException | None = None
        self._queue: deque[TurnView] = deque()
        self._asking: TurnView | None = None
        self._retired: list[Engine] = []
        self._last_progress = 0.0
        self._shown_progress: IndexProgress | None = None
        """The last indexing step on the status line, shown again once the model is prepared."""
        self._preparing: ModelPreparing | None = None
        self._stop_listening: Callable[[], None] = lambda: None
        """The model's one-time preparation while it runs: the status line says so, seconds ticking."""
        self._run_editor = run_editor
        names = ", ".join(p.resolve().name or str(p) for p in config.paths)
        self.corpus_name = one_line(names, 60)
        self.sub_title = self.corpus_name

    def compose(self):
        yield Header()
        with Horizontal(id="main"):
            with Conversation(id="conversation"):
                yield Static(self._welcome(), id="welcome")
            yield SourcePane(id="source-pane")
        yield StatusLine(id="status")
        yield QuestionInput(self.history.questions(), self.cursor_blink, id="question")
        yield Footer()

    def _welcome(self) -> Text:
        text = Text(f"Ask about the documents in {self.corpus_name}.\n", style="bold")
        text.append(
            "Answers quote one sentence and cite passages as [n] file:lines. Tab moves to the citations, "
            "Enter opens one beside its document, ? lists every key.",
            style="dim",
        )
        if self.questions_path is not None:
            text.append(
                f"\nf2 benches retrieval on {one_line(self.questions_path.name, 80)}: accuracy per mode and each miss.",
                style="dim",
            )
        return text

    def on_mount(self) -> None:
        status = self.query_one(StatusLine)
        status.set_settings(self.mode, self.k, self.sources, self.show_scores)
        status.set_state("Loading the model and index… (you can type your question now)")
        self.query_one(QuestionInput).focus()
        self._stop_listening = listen(self._model_step)
        self.set_interval(1.0, self._tick_preparing)
        if self.history.problem:
            self.notify(self.history.problem, severity="warning", timeout=10, markup=False)
        self.call_after_refresh(self._first_frame_drawn)

    def on_unmount(self) -> None:
        self._stop_listening()  # (Textual calls FileWatch.on_unmount too: it walks the class's bases)

    def _model_step(self, step) -> None:
        """Called from the thread that prepares the model."""
        self.post_message(ModelPreparing(step))

    def _first_frame_drawn(self) -> None:
        # `qa chat` turns the cyclic GC off while it starts (qa/cli.py): ~120 collections took ~0.1 s.
        gc.enable()
        # Load only now: the loader thread's imports (torch, faiss) hold the GIL and would otherwise
        # delay the first frame by ~0.2 s (benchmarks/bench_startup.py).
        self.load_engine()

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        yield from chat_commands(self)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        # App-wide keys must not stack dialogs on top of an open dialog.
        if isinstance(self.screen, ModalScreen) and action in {
            a.action for a in self.BINDINGS if isinstance(a, Binding)
        }:
            return False
        return True

    # -- workers ------------------------------------------------------------------

    def _progress(self, stage: str, done: int, total: int, update: bool = False) -> None:
        """Called from the worker thread; throttled so the UI gets a few updates a second."""
        if get_current_worker().is_cancelled:
            return  # the status line already says "cancelled"; the thread is only winding down
        now = time.monotonic()
        if done >= total or now - self._last_progress > 0.1:
            self._last_progress = now
            self.post_message(IndexProgress(stage, done, total, update))

    @work(thread=True, exclusive=True, group="engine", exit_on_error=False)
    def load_engine(self, rebuild: bool = False) -> None:
        worker = get_current_worker()
        engine, report = self.loader(self._progress, lambda: worker.is_cancelled, rebuild)
        self.post_message(IndexProgress("model", 0, 0))
        warm_up(engine)
        self._deliver(worker, engine, report)

    @work(thread=True, exclusive=True, group="index", exit_on_error=False)
    def reindex(self, rebuild: bool = False, update: bool = False, changed_paths: frozenset[str] | None = None) -> None:
        """Index the corpus again (ctrl+r), or, with update, bring it up to date after edits (tui/watch.py)."""
        # deferred: numpy; this module loads before the first frame, the engine after it
        from qa.engine import Engine
        from qa.service import index_corpus

        worker = get_current_worker()
        embedder = self.engine.embedder
        progress = (lambda *step: self._progress(*step, update=True)) if update else self._progress
        try:
            report = index_corpus(
                self.config,
                embedder,
                rebuild=rebuild,
                progress=progress,
                cancelled=lambda: worker.is_cancelled,
                changed_paths=changed_paths,
                clean_up_after=update,
            )
        except IndexLockedError:
            if not update:
                raise
            self._full_at = 0.0  # the changed paths are not indexed: look at every file next time
            self.call_from_thread(self._show_ready)  # another `qa index` is updating it: the watch looks again later
            return
        except BaseException:
            self._watch_paused = self._watch_paused or update  # shown once; ctrl+r tries again
            raise
        self._deliver(worker, Engine.open(self.config.resolved_index_dir, embedder), report)

    def _deliver(self, worker: Worker, engine: Engine, report) -> None:
        if worker.is_cancelled and self.engine is not None:
            engine.close()  # cancelled after the index was written: keep using the engine we have
        else:
            self.post_message(EngineReady(engine, report))

    @work(thread=True, exclusive=True, group="ask", exit_on_error=False)
    def run_ask(self, engine: Engine, turn_id: int, question: str, k: int, mode: str, sources: tuple[str, ...]) -> None:
        try:
            answer = engine.ask(question, k=k, mode=mode, sources=sources or None)
        except QAError as exc:
            self.post_message(AskFailed(turn_id, exc.one_line()))
            return
        self.post_message(AnswerReady(turn_id, answer))

    def _indexing(self) -> Worker | None:
        for worker in self.workers:
            if worker.group in ("engine", "index") and worker.state in (WorkerState.PENDING, WorkerState.RUNNING):
                return worker
        return None

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker failures are turned into notifications."""
        worker = event.worker
        if event.state not in (WorkerState.ERROR, WorkerState.CANCELLED) or worker.group in ("watch", "feed"):
            return  # a comparison of the files (tui/watch.py) fails quietly and is tried again; no feed: a timer
        status = self.query_one(StatusLine)
        exc = worker.error
        if worker.group == "ask":
            self._finish_turn(lambda turn: turn.show_failure(describe(exc) if exc else "Cancelled."))
            return
        if event.state == WorkerState.CANCELLED or isinstance(exc, CancelledError):
            message = "Indexing cancelled; the previous index is unchanged."
            status.set_state(
                message + ("" if self.engine else " ctrl+r to try again."), "ready" if self.engine else "error"
            )
            self.notify(message, markup=False)
            return
        if worker.group == "engine":
            self.load_error = exc
            for turn in self._queue:
                turn.show_waiting(WAIT_FAILED)
        status.set_state(f"Error: {describe(exc)}", "error")
        self.notify(
            describe(exc),
            title="Can't open the index" if worker.group == "engine" else "Indexing failed",
            severity="error",
            timeout=20,
            markup=False,
        )

    @on(ModelPreparing)
    def _model_preparing(self, message: ModelPreparing) -> None:
        if message.step.stage == "preparing":
            self._preparing = message
            self._tick_preparing()
            return
        self._preparing = None
        if self.engine is None or self._indexing() is not None:
            self._show_progress(self._shown_progress or IndexProgress("model", 0, 0))

    def _tick_preparing(self) -> None:
        if self._preparing is not None:
            from qa.model_notice import preparing_text

            self.query_one(StatusLine).set_state(preparing_text(self._preparing.step))

    @on(IndexProgress)
    def _show_progress(self, message: IndexProgress) -> None:
        self._shown_progress = message
        if self._preparing is not None:
            return  # the model is being prepared: say so until it is ready (no step moves meanwhile)
        status = self.query_one(StatusLine)
        if message.stage == "model":
            status.set_state("Loading the model… (you can type your question now)")
            return
        what = (
            "Updating the index" if message.update else "Indexing (first run)" if self.engine is None else "Re-indexing"
        )
        done = f"{message.done}/{message.total}" if message.total else ""
        step = STAGES.get(message.stage, message.stage)
        if message.stage == "scan" and message.done == message.total:
            step, done = f"read {message.total} files, loading the model", "…"
        status.set_state(f"{what}: {step} {done} · ctrl+r cancels")

    @on(EngineReady)
    def _engine_ready(self, message: EngineReady) -> None:
        old, self.engine, self.load_error = self.engine, message.engine, None
        if old is not None:
            self._retired.append(old)  # closed once no question is using it
            self._close_retired()
        known = set(self.engine.sources())
        self.sources = tuple(s for s in self.sources if s in known)
        self._show_ready(len(known))
        report = message.report
        if report is not None:
            note = f"Indexed: {report.brief()}"
            self.notify(note, severity="warning" if report.skipped else "information", markup=False)
        self.refresh_bindings()
        self.start_watching()
        self._pump()

    def _show_ready(self, n_documents: int | None = None) -> None:
        n_documents = len(self.engine.sources()) if n_documents is None else n_documents
        n_chunks = self.engine.index.n_chunks if hasattr(self.engine, "index") else 0
        self.query_one(StatusLine).set_state(
            f"Ready · {count(n_documents, 'document')}, {count(n_chunks, 'passage')}", "ready"
        )

    def _close_retired(self) -> None:
        if self._asking is None:
            for engine in self._retired:
                engine.close()
            self._retired.clear()

    # -- asking ---------------------------------------------------------------------

    @on(Input.Submitted, "#question")
    def _submitted(self, event: Input.Submitted) -> None:
        question = " ".join(event.value.split())
        if not question:
            self.notify("Type a question first.", severity="warning")
            return
        box = self.query_one(QuestionInput)
        box.value = ""
        box.remember(question)
        self.ask(question)

    def ask(self, question: str) -> TurnView:
        """Add a turn and answer it as soon as the engine is free (or loaded)."""
        if self.conversation_id is None:
            self.conversation_id = self.history.start_conversation(self.corpus_name, question)
        turn = TurnView(
            self.history.add_turn(self.conversation_id, question, None),
            question,
            show_scores=self.show_scores,
            mode=self.mode,
            sources=self.sources,
        )
        self._mount_turn(turn)
        self._queue.append(turn)
        if self.engine is None:
            turn.show_waiting(
                WAIT_FAILED
                if self.load_error
                else "Waiting for the model and index to load; answered as soon as they are ready."
            )
        self._pump()
        return turn

    def _mount_turn(self, turn: TurnView) -> None:
        conversation = self.query_one("#conversation", VerticalScroll)
        for welcome in self.query("#welcome"):
            welcome.remove()
        conversation.mount(turn)
        conversation.call_after_refresh(conversation.scroll_end, animate=False)

    def _pump(self) -> None:
        if self._asking is not None or self.engine is None or not self._queue:
            return
        turn = self._queue.popleft()
        self._asking = turn
        turn.show_waiting("Searching…")
        self.run_ask(self.engine, turn.turn_id, turn.question, self.k, turn.mode, turn.sources)

    def _finish_turn(self, update: Callable[[TurnView], None]) -> None:
        turn, self._asking = self._asking, None
        if turn is not None and turn.is_attached:
            update(turn)
            conversation = self.query_one("#conversation", VerticalScroll)
            conversation.call_after_refresh(conversation.scroll_end, animate=False)
        self._close_retired()
        self._pump()

    @on(AnswerReady)
    def _answered(self, message: AnswerReady) -> None:
        self.history.set_answer(message.turn_id, message.answer)
        self._finish_turn(lambda turn: turn.show_answer(message.answer))

    @on(AskFailed)
    def _ask_failed(self, message: AskFailed) -> None:
        self._finish_turn(lambda turn: turn.show_failure(message.reason))


def make_app(
    config: RunConfig | None = None,
    *,
    embedder: Embedder | None = None,
    engine_loader: EngineLoader | None = None,
    explicit_backend: bool = False,
    history_path: Path | None = None,
    run_editor: Callable[[list[str]], None] | None = None,
    cursor_blink: bool = True,
    questions: Path | None = None,
    watch_seconds: float | None = WATCH_SECONDS,
) -> ChatApp:
    """Build the chat; tests pass a fake embedder (or a whole loader), the CLI passes nothing."""
    config = config or RunConfig()
    loader = engine_loader or default_loader(config, embedder, explicit_backend)
    return ChatApp(
        config,
        loader,
        HistoryStore(history_path or history_db_path()),
        run_editor,
        cursor_blink,
        questions,
        watch_seconds,
    )


def run_chat(config: RunConfig, explicit_backend: bool = False, questions: Path | None = None) -> None:
    """Entry point for `qa chat`; questions is a question file for the bench screen (f2)."""
    make_app(config, explicit_backend=explicit_backend, questions=questions).run()
