"""Pilot tests of the source pane beside the conversation: what `e` opens, and the selection staying in view."""

from __future__ import annotations

import pytest
from tui_helpers import ask, canned_app, screen_text, settle, static_text, sync, write_demo_corpus

from tui.widgets.citations import CitationList
from tui.widgets.source_view import SourcePane, SourceView

SIZE = (120, 40)


@pytest.fixture
def corpus(tmp_path):
    return write_demo_corpus(tmp_path / "corpus")


@sync
async def test_e_opens_the_file_and_line_the_source_pane_shows_not_the_highlighted_citation(corpus, monkeypatch):
    # The steps: open [2] in the pane, close it, come back and show the answer's source with `a`; the
    # list still highlights [2] (paris.txt:1-4) while the pane shows the answer (notes/lighthouse.txt:100).
    monkeypatch.setenv("EDITOR", "myedit")
    commands = []
    app = canned_app(corpus, run_editor=commands.append)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "Who was the lighthouse keeper?")
        await pilot.press("tab", "down", "enter")
        await pilot.pause()
        await pilot.press("escape", "tab", "a")
        await pilot.pause()
        citations = app.query_one(CitationList)
        assert citations.current_citation.source == "paris.txt"  # the list's highlight did not move
        title = static_text(app.query_one("#source-title"))
        assert "notes/lighthouse.txt:100" in title and app.query_one(SourceView).focus_line == 100
        await pilot.press("e")
        await pilot.pause()
        assert commands == [["myedit", "+100", str(corpus.resolve() / "notes" / "lighthouse.txt")]]
        # Moving in the list moves the pane, and `e` follows it.
        await pilot.press("up")
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        assert commands[-1] == ["myedit", "+100", str(corpus.resolve() / "notes" / "lighthouse.txt")]
        await pilot.press("down")
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        assert commands[-1] == ["myedit", "+1", str(corpus.resolve() / "paris.txt")]
        # With the pane closed, `e` opens the highlighted citation.
        await pilot.press("escape", "tab")
        await pilot.pause()
        assert not app.query_one(SourcePane).display
        await pilot.press("up", "e")
        await pilot.pause()
        assert commands[-1] == ["myedit", "+91", str(corpus.resolve() / "notes" / "lighthouse.txt")]


def _visible_rows(app, widget) -> range:
    region = widget.region.intersection(app.query_one("#conversation").scrollable_content_region)
    return range(region.y, region.bottom)


@sync
async def test_opening_the_source_pane_keeps_the_selected_citation_in_view(corpus):
    # Three turns, then Tab, Down, Enter: the conversation narrows to half the width and its turns grow taller.
    app = canned_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for question in ("Who was the lighthouse keeper?", "Which way does the river flow?", "What is the capital?"):
            await ask(pilot, question)
        await pilot.press("tab", "down")
        await pilot.pause()
        citations = app.query(CitationList).last()
        assert citations.highlighted == 1 and "[2] evil.txt:1-2" in screen_text(app)
        await pilot.press("enter")
        await settle(pilot)
        assert app.query_one(SourcePane).display and app.focused is citations
        assert "[2] evil.txt:1-2" in screen_text(app)
        top, height = citations.selection_rows()
        assert top in _visible_rows(app, citations) and top + height - 1 in _visible_rows(app, citations)
        assert "[2] evil.txt:1-2" in screen_text(app).splitlines()[top]
        # Closing the pane widens the column again: the selection stays in view that way too.
        await pilot.press("escape", "tab")
        await settle(pilot)
        top, height = citations.selection_rows()
        assert top in _visible_rows(app, citations) and "[2] evil.txt:1-2" in screen_text(app).splitlines()[top]
