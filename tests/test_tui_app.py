"""Pilot tests of the chat: asking, citations, the source pane, filter, settings, history, safety."""

from __future__ import annotations

import pytest
from tui_helpers import ask, fake_app, held_loader, screen_text, settle, sync, write_demo_corpus

from tui.widgets.citations import CitationList
from tui.widgets.question_input import QuestionInput
from tui.widgets.source_view import SourcePane, SourceView
from tui.widgets.turn import TurnView

SIZE = (120, 40)


@pytest.fixture
def corpus(tmp_path):
    return write_demo_corpus(tmp_path / "corpus")


@sync
async def test_ask_shows_answer_and_numbered_citations(corpus):
    app = fake_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.engine is not None
        await ask(pilot, "What is the capital of France?")
        turn = app.query_one(TurnView)
        assert turn.answer is not None and turn.answer.found
        assert "Paris is the capital of France." in turn.answer.answer.citation.text
        citations = turn.query_one(CitationList)
        assert citations.option_count == len(turn.answer.passages) >= 2
        shown = screen_text(app)
        assert "Answer  confidence" in shown
        assert f"[1] {turn.answer.passages[0].citation.label}" in shown


@sync
async def test_question_typed_before_ready_waits_and_is_answered(corpus, fake_embedder):
    slow_loader, release = held_loader(corpus, fake_embedder)
    app = fake_app(corpus, engine_loader=slow_loader)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        # The first frame is up and usable while the engine is still loading.
        assert app.engine is None and isinstance(app.focused, QuestionInput)
        assert "Loading the model" in screen_text(app)
        app.query_one(QuestionInput).value = "Who was the lighthouse keeper?"
        await pilot.press("enter")
        await pilot.pause()
        assert "Waiting for the model" in screen_text(app)
        release.set()
        await settle(pilot)
        turn = app.query_one(TurnView)
        assert turn.answer is not None
        assert "Aurelio Bassani" in (turn.answer.answer or turn.answer.best_guess).citation.text


@sync
async def test_selecting_citation_shows_source_with_span_highlighted_and_in_view(corpus):
    app = fake_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "Who was the lighthouse keeper on Skerry Island?")
        await pilot.press("tab")
        citations = app.query_one(CitationList)
        assert app.focused is citations and citations.highlighted == 0
        await pilot.press("enter")
        await pilot.pause()
        pane, view = app.query_one(SourcePane), app.query_one(SourceView)
        cite = citations.answer.passages[0].citation
        assert pane.display and cite.source == "notes/lighthouse.txt"
        assert view.span == (cite.char_start, cite.char_end)
        assert view.cited_lines == (cite.line_start, cite.line_end)
        # Shown while still hidden (zero width), then wrapped at the pane's real width.
        assert view._wrapped_at == view.size.width - view.styles.scrollbar_size_vertical - view.gutter_width > 40
        # The answer sentence (line 100, inside the passage) is scrolled into view and drawn strongest;
        # the passage's other lines are highlighted; lines outside the passage are not.
        answer_line = citations.answer.answer.citation.line_start
        assert answer_line == 100 and cite.line_start < answer_line <= cite.line_end
        assert view.focus_line == answer_line

        def background_of(line: int):
            row = view._first_row[line - 1]
            assert view.scroll_offset.y <= row < view.scroll_offset.y + view.size.height
            strip = view.render_line(row - view.scroll_offset.y)
            return {seg.style.bgcolor for seg in list(strip)[2:] if seg.text.strip() and seg.style}

        cited = view.get_component_rich_style("source-view--cited", partial=True).bgcolor
        strong = view.get_component_rich_style("source-view--answer", partial=True).bgcolor
        assert background_of(answer_line) == {strong}
        assert background_of(answer_line - 1) == {cited}
        assert cited not in background_of(cite.line_end + 1) and strong not in background_of(cite.line_end + 1)
        assert f"{answer_line}▌" in screen_text(app)
        await pilot.press("escape")
        assert not pane.display and isinstance(app.focused, QuestionInput)


@sync
async def test_typing_in_the_citations_starts_a_new_question(corpus):
    app = fake_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "What is the capital of France?")
        await pilot.press("tab", "W", "h", "o")
        box = app.query_one(QuestionInput)
        assert app.focused is box and box.value == "Who"
        assert not app.query_one(SourcePane).display


@sync
async def test_mouse_click_on_citation_and_moving_updates_open_pane(corpus):
    app = fake_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "What is the capital of France?")
        citations = app.query_one(CitationList)
        await pilot.click(CitationList, offset=(6, 0))
        await pilot.pause()
        view = app.query_one(SourceView)
        assert app.query_one(SourcePane).display
        first = citations.answer.passages[0].citation
        assert view.span == (first.char_start, first.char_end)
        # the question's words are marked inside the cited passage, and drawn so
        text = (corpus / first.source).read_text(encoding="utf-8")
        assert {text[a:b].lower() for a, b in view.words} >= {"capital", "france"}
        assert all(first.char_start <= a < b <= first.char_end for a, b in view.words)
        underlined = "".join(
            seg.text
            for y in range(view.size.height)
            for seg in view.render_line(y)
            if seg.style and seg.style.underline
        )
        assert "capital" in underlined and "France" in underlined
        await pilot.press("down")
        await pilot.pause()
        second = citations.answer.passages[1].citation
        assert app.current_citation == second
        assert view.span == (second.char_start, second.char_end)


@sync
async def test_filter_limits_search_to_chosen_documents(corpus):
    app = fake_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+f")
        await pilot.pause()
        from textual.widgets import SelectionList

        from tui.screens.filter import FilterScreen

        assert isinstance(app.screen, FilterScreen)
        options = app.screen.query_one(SelectionList)
        options.focus()
        index = app.engine.sources().index("paris.txt")
        options.highlighted = index
        await pilot.press("space", "ctrl+s")
        await pilot.pause()
        assert app.sources == ("paris.txt",)
        assert "only paris.txt" in screen_text(app)
        await ask(pilot, "Who was the lighthouse keeper?")
        answer = app.query_one(TurnView).answer
        assert answer.passages and {p.citation.source for p in answer.passages} == {"paris.txt"}


@sync
async def test_mode_k_and_score_breakdown(corpus):
    app = fake_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+t", "ctrl+g", "ctrl+g", "ctrl+g")
        assert (app.mode, app.k) == ("dense", 3)
        assert "mode dense · k 3" in screen_text(app)
        await ask(pilot, "Eiffel Tower")
        answer = app.query_one(TurnView).answer
        assert answer.mode == "dense" and 1 <= len(answer.passages) <= 3
        assert "bm25 " not in screen_text(app)
        await pilot.press("ctrl+b")
        await pilot.pause()
        s = answer.passages[0].scores
        assert f"bm25 {s.bm25:.2f} · dense {s.dense:.3f} · fused {s.fused:.3f}" in screen_text(app)


@sync
async def test_history_recall_and_reopen_after_restart(corpus):
    app = fake_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "What is the capital of France?")
        await ask(pilot, "Who was the lighthouse keeper?")
        box = app.query_one(QuestionInput)
        box.value = "draft"
        await pilot.press("up")
        assert box.value == "Who was the lighthouse keeper?"
        await pilot.press("up", "up")
        assert box.value == "What is the capital of France?"
        await pilot.press("down", "down")
        assert box.value == "draft"

    again = fake_app(corpus)
    async with again.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("up")
        assert again.query_one(QuestionInput).value == "Who was the lighthouse keeper?"
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert "What is the capital of France?  2 questions" in screen_text(again)
        await pilot.press("down", "enter")
        await settle(pilot)
        turns = list(again.query(TurnView))
        assert [t.question for t in turns] == ["What is the capital of France?", "Who was the lighthouse keeper?"]
        assert all(t.answer is not None and t.query(CitationList) for t in turns)
        await ask(pilot, "Eiffel Tower")
        assert len(again.history.turns(again.conversation_id)) == 3


@sync
async def test_markup_and_escapes_in_documents_and_questions_are_shown_literally(corpus):
    app = fake_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "[bold]injection[/bold] markup escape codes")
        turn = app.query_one(TurnView)
        shown = screen_text(app)
        assert "› [bold]injection[/bold] markup escape codes" in shown
        assert "[bold red]x[/]" in shown and "[link=http://e]y[/link]" in shown
        assert "\x1b" not in shown
        evil = next(p for p in turn.answer.passages if p.citation.source == "evil.txt")
        app.show_source(evil.citation)
        await pilot.pause()
        view = app.query_one(SourceView)
        assert view.lines[0].startswith("Attack text: [bold red]x[/] and [link=http://e]y[/link] plus ")
        assert "\x1b" not in "".join(view.lines)
        strip = view.render_line(0 - view.scroll_offset.y)
        text = "".join(seg.text for seg in strip)
        assert "[bold red]x[/]" in text and "\x1b" not in text
        assert not any(
            seg.style and (seg.style.link or seg.style.color and seg.style.color.name == "red") for seg in strip
        )


@sync
async def test_copy_and_export_turn_as_markdown(corpus):
    from index.locations import data_dir

    app = fake_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "What is the capital of France?")
        await pilot.press("tab", "c")
        assert app.clipboard.startswith("## Q: What is the capital of France?")
        assert "`paris.txt:" in app.clipboard
        await pilot.press("s")
        exported = list((data_dir() / "exports").glob("*.md"))
        assert len(exported) == 1 and exported[0].read_text(encoding="utf-8") == app.clipboard


@sync
async def test_help_screen_and_command_palette(corpus):
    from textual.command import CommandPalette

    from tui.screens.help import HelpScreen

    app = fake_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        shown = screen_text(app)
        assert "ctrl+f" in shown and "Filter docs" in shown and "$EDITOR" in shown
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"Mode: bm25")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert app.mode == "bm25"
