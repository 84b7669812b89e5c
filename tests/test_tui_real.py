"""The chat driven end to end with the real model over seeds/ (slow: shares the session's seed index)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.config import RunConfig
from tui.app import make_app
from tui.testing import ask, screen_text, settle, sync
from tui.widgets.citations import CitationList
from tui.widgets.source_view import SourcePane, SourceView
from tui.widgets.turn import TurnView

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
pytestmark = pytest.mark.slow


@sync
async def test_real_model_answers_over_seeds_and_shows_the_source(seed_index_dir, real_embedder):
    app = make_app(RunConfig(corpus=(SEEDS,), index_dir=seed_index_dir), embedder=real_embedder)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(pilot)
        assert app.engine is not None, screen_text(app)
        await ask(pilot, "Who did Hollande meet in Washington?")
        answer = app.query_one(TurnView).answer
        assert answer is not None and answer.passages
        top = answer.passages[0].citation
        assert top.source == "000_3f65fe5b4edd20f1.txt" and "Hollande" in top.text
        shown = screen_text(app)
        assert ("Answer  confidence" in shown) == answer.found
        assert f"[1] {top.label}" in shown
        await pilot.press("tab", "enter")
        await pilot.pause()
        view = app.query_one(SourceView)
        assert app.query_one(SourcePane).display and app.query_one(CitationList).current_citation == top
        text = (SEEDS / top.source).read_text(encoding="utf-8")
        assert text[view.span[0] : view.span[1]] == top.text
        assert view.cited_lines == (top.line_start, top.line_end)
        assert f"{view.focus_line}▌" in screen_text(app)
