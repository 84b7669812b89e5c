"""The chat driven end to end with the real model over seeds/ (slow: shares the session's seed index)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static
from tui_helpers import ask, screen_text, settle, static_text, sync

from index.normalize import squash
from qa.config import RunConfig
from qa.evaluate import evaluate_engine
from qa.questions import load_questions
from qa.snippet import ELLIPSIS, snippet
from tui.app import make_app
from tui.screens.bench import BenchScreen
from tui.widgets.citations import CitationList, _unseen
from tui.widgets.source_view import SourcePane, SourceView
from tui.widgets.turn import TurnView

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
DATA = Path(__file__).resolve().parent / "data"
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
        # Each citation's preview is the part of its passage that holds the question's words, or, for one
        # that overlaps a better-ranked passage of its file, the part it adds.
        cites = [p.citation for p in answer.passages]
        previews = [
            snippet(p.citation.text, answer.question, 160, _unseen(p.citation, cites[:i]))
            for i, p in enumerate(answer.passages)
            if not (answer.found and p.rank == answer.answer.passage_rank)
        ]
        assert (
            previews and all(squash(p.text) in squash(shown) for p in previews) and any(p.highlights for p in previews)
        )
        assert any(p.text.startswith(ELLIPSIS) for p in previews)
        await pilot.press("tab", "enter")
        await pilot.pause()
        view = app.query_one(SourceView)
        assert app.query_one(SourcePane).display and app.query_one(CitationList).current_citation == top
        text = (SEEDS / top.source).read_text(encoding="utf-8")
        assert text[view.span[0] : view.span[1]] == top.text
        assert view.cited_lines == (top.line_start, top.line_end)
        marked = {text[a:b] for a, b in view.words}
        assert marked and marked <= {"Hollande", "meet", "meets", "meeting", "meetings", "Washington", "who", "Who"}, (
            marked
        )
        assert all(view.span[0] <= a < b <= view.span[1] for a, b in view.words), "only inside the cited passage"
        assert f"{view.focus_line}▌" in screen_text(app)


@sync
async def test_bench_screen_drills_into_real_seed_questions(seed_index_dir, real_embedder, tmp_path):
    """f2 over a slice of the seed questions: the verdicts agree with qa.evaluate, and a drill-down quotes
    the expected span and points at the lines of the real file that hold it."""
    lines = (DATA / "seed_questions.jsonl").read_text(encoding="utf-8").splitlines()
    unanswerable = next(line for line in lines if '"evidence": []' in line)
    subset = tmp_path / "seed_subset.jsonl"
    subset.write_text("\n".join(lines[:6] + [unanswerable]) + "\n", encoding="utf-8")
    questions = load_questions(subset)
    app = make_app(RunConfig(corpus=(SEEDS,), index_dir=seed_index_dir), embedder=real_embedder, questions=subset)
    async with app.run_test(size=(140, 42)) as pilot:
        await settle(pilot)
        await pilot.press("f2")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, BenchScreen) and set(screen.results) == {"hybrid", "dense", "bm25"}, screen_text(app)
        outcomes = screen.results["hybrid"].outcomes
        reference = evaluate_engine(app.engine, questions, k=100, mode="hybrid")
        assert [o.first_relevant_rank for o in outcomes] == [r.first_hit_rank for r in reference.results]
        assert [o.found for o in outcomes] == [not r.abstained for r in reference.results]
        # drill into the worst-ranked answerable question (a hit@1 when all are)
        number = max(
            (n for n, o in enumerate(outcomes, 1) if o.question.answerable),
            key=lambda n: outcomes[n - 1].first_relevant_rank or 999,
        )
        for _ in range(number - 1):
            await pilot.press("down")
        await pilot.pause()
        assert screen.current == number
        drill = static_text(screen.query_one("#bench-drill", Static))
        outcome = outcomes[number - 1]
        assert f"q{number}" in drill and "Expected evidence" in drill and "Where the expected passage ranked" in drill
        assert f"“{outcome.question.evidence[0].text}”" in drill
        item = outcome.ranking.relevant_item
        assert item is not None and f"{item.rank}. {item.key}" in drill
        source, span = item.key.rsplit(":", 1)
        first, _, last = span.partition("-")
        cited = "\n".join((SEEDS / source).read_text(encoding="utf-8").split("\n")[int(first) - 1 : int(last or first)])
        assert any(ev.source == source and squash(ev.text) in squash(cited) for ev in outcome.question.evidence)


@sync
async def test_an_edit_made_while_the_chat_is_open_is_indexed_and_answered(real_embedder, tmp_path):
    """Real model: a sentence added to a seed article while the chat is open is indexed without
    ctrl+r (tui/watch.py) and answers the next question."""
    import shutil

    corpus = tmp_path / "seeds"
    shutil.copytree(SEEDS, corpus)
    app = make_app(
        RunConfig(corpus=(corpus,), index_dir=tmp_path / "idx"),
        embedder=real_embedder,
        history_path=tmp_path / "h.sqlite",
        watch_seconds=0.2,
    )
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(pilot)
        first = app.engine
        assert first is not None, screen_text(app)
        article = corpus / "002_c6b6b51f87ff079e.txt"
        article.write_text(
            article.read_text(encoding="utf-8") + "\nThe summit in Reykjavik was postponed until March 2016.\n",
            encoding="utf-8",
        )
        for _ in range(400):
            if app.engine is not first and "Ready" in screen_text(app):
                break
            await pilot.pause(0.05)
        assert app.engine is not first, screen_text(app)
        await settle(pilot)
        await ask(pilot, "Until when was the Reykjavik summit postponed?")
        answer = app.query(TurnView).last().answer
        assert answer.found and "postponed until March 2016" in answer.answer.citation.text, screen_text(app)


@sync
async def test_overlapping_passages_of_one_file_preview_different_text(seed_index_dir, real_embedder):
    """Two chunks of one article share a sentence; both ranked for the question used to preview that
    same sentence. The lower one now previews what it adds."""
    app = make_app(RunConfig(corpus=(SEEDS,), index_dir=seed_index_dir), embedder=real_embedder)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(pilot)
        await ask(pilot, "What White House refugee policy have critics challenged?")
        answer = app.query_one(TurnView).answer
        cites = [p.citation for p in answer.passages]
        pairs = [
            (a, b)
            for i, a in enumerate(cites)
            for b in cites[i + 1 :]
            if a.source == b.source and a.char_start < b.char_end and b.char_start < a.char_end
        ]
        assert pairs, [c.label for c in cites]
        options = app.query_one(CitationList)
        previews = [
            options.get_option_at_index(i).prompt.renderables[1].renderable.renderables[0].plain
            for i in range(options.option_count)
        ]
        same_file = [
            (previews[cites.index(a)].strip(ELLIPSIS), previews[cites.index(b)].strip(ELLIPSIS)) for a, b in pairs
        ]
        assert all(upper[:60] != lower[:60] for upper, lower in same_file), same_file
