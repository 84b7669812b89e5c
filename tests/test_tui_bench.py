"""Pilot tests of the bench screen (f2) over the demo corpus with canned answers: list, drill-down, errors."""

from __future__ import annotations

import pytest
from textual.widgets import Input, OptionList, Static
from tui_helpers import (
    CannedEngine,
    canned_app,
    notices,
    screen_text,
    settle,
    static_text,
    sync,
    write_demo_corpus,
    write_demo_questions,
)

from qa.evaluate import first_hit
from qa.questions import load_questions
from tui.screens.bench import NO_FILE, BenchScreen
from tui.widgets.turn import TurnView

SIZE = (140, 42)


@pytest.fixture
def corpus(tmp_path):
    return write_demo_corpus(tmp_path / "corpus")


@pytest.fixture
def questions(tmp_path):
    return write_demo_questions(tmp_path / "demo_questions.jsonl")


def shown_in(screen: BenchScreen, selector: str) -> str:
    return static_text(screen.query_one(selector, Static))


async def open_bench(pilot) -> BenchScreen:
    await settle(pilot)
    await pilot.press("f2")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, BenchScreen), screen_text(pilot.app)
    return screen


def rows(screen: BenchScreen) -> list[str]:
    listing = screen.query_one(OptionList)
    return [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]


@sync
async def test_bench_lists_every_question_with_its_rank_and_abstention(corpus, questions):
    app = canned_app(corpus, questions=questions)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_bench(pilot)
        assert set(screen.results) == {"hybrid", "dense", "bm25"}  # every mode ran, hybrid shown first
        assert screen.shown == "hybrid"
        listed = rows(screen)
        assert len(listed) == len(load_questions(questions))
        # Reference: qa.evaluate's own first-hit search over the same answers, not the bench's trec_eval run.
        engine, ranks, right = CannedEngine(corpus), [], 0
        for row, question in zip(listed, load_questions(questions)):
            answer = engine.ask(question.question)
            right += answer.found == question.answerable
            if not question.answerable:
                expected = "no evidence"
            else:
                rank = first_hit(answer, question)
                ranks.append(rank)
                expected = "miss" if rank is None else "hit@1" if rank == 1 else f"rank {rank}"
            assert row.split()[1 : 1 + len(expected.split())] == expected.split(), (row, expected)
            assert ("abstained ✗" in row) == (question.answerable and not answer.found)
            assert ("answered ✗" in row) == (not question.answerable and answer.found)
        shown = screen_text(app)
        assert "Retrieval bench · demo_questions.jsonl" in shown
        hits = ranks.count(1)
        assert f"Hit@1 {hits / len(ranks):.3f}" in shown and f"Abstention {right / len(listed):.3f}" in shown
        assert f"{len(listed)} questions, {len(ranks)} answerable, {len(ranks) - hits} not at rank 1" in shown


@sync
async def test_drill_down_shows_evidence_what_ranked_above_and_the_scores(corpus, questions):
    app = canned_app(corpus, questions=questions)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_bench(pilot)
        assert "q1  What is the capital of France?" in screen_text(app)
        await pilot.press("down")
        await pilot.pause()
        shown = shown_in(screen, "#bench-drill")
        assert "q2  Which capital is far from the keeper?" in shown and "rank 3 · the chat answered ✓" in shown
        assert "Expected evidence" in shown and "“Aurelio Bassani”" in shown and "notes/lighthouse.txt" in shown
        assert "Ranked above it (2)" in shown
        assert "  1. paris.txt:1-4\n     fused 0.910 · bm25 5.46 · dense 0.910\n     Paris is the capital" in shown
        # document text is shown as text: markup literally, escape codes stripped
        assert "2. evil.txt:1-2" in shown and "Attack text: [bold red]x[/] and [link=http://e]y[/link]" in screen_text(
            app
        )
        assert "\x1b" not in shown
        assert "Where the expected passage ranked" in shown and "3. notes/lighthouse.txt:91-102" in shown
        # its preview shows the expected evidence, deep in the passage, not the passage's first line
        assert "Aurelio Bassani" in shown.split("Where the expected passage ranked")[1]
        await pilot.press("down", "down")
        await pilot.pause()
        shown = shown_in(screen, "#bench-drill")
        assert "q4  What do the escape codes say?" in shown and "Not among the top 100 passages." in shown
        assert "Ranked first instead (top 2)" in shown


@sync
async def test_only_problems_and_mode_switch_keep_the_drill_down(corpus, questions):
    app = canned_app(corpus, questions=questions)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_bench(pilot)
        await pilot.press("f")
        await pilot.pause()
        assert [r.split()[0] for r in rows(screen)] == ["2", "3", "4", "6"]
        await pilot.press("down")
        await pilot.pause()
        assert screen.current == 3
        await pilot.press("m")
        await pilot.pause()
        assert screen.shown == "dense" and screen.current == 3
        assert "q3  Which way does the river flow?" in shown_in(screen, "#bench-drill")
        assert "rank 2 · the chat said 'not in the documents' ✗ abstained wrongly" in shown_in(screen, "#bench-drill")


@sync
async def test_enter_asks_the_question_in_the_chat_and_reopening_is_instant(corpus, questions):
    app = canned_app(corpus, questions=questions)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_bench(pilot)
        results = dict(screen.results)
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, BenchScreen)
        turn = app.query_one(TurnView)
        assert turn.question == "What is the capital of France?" and turn.answer is not None
        await pilot.press("f2")
        await pilot.pause()
        again = app.screen
        assert isinstance(again, BenchScreen) and again is not screen
        assert again.results == results and not [w for w in app.workers if w.group == "bench"]
        await pilot.press("down", "escape")
        await pilot.pause()
        assert not isinstance(app.screen, BenchScreen)
        await pilot.press("f2")
        await pilot.pause()
        assert app.screen.current == 2 and "q2  Which capital" in shown_in(app.screen, "#bench-drill")


@sync
async def test_missing_question_file_is_a_one_line_error_and_a_new_path_recovers(corpus, questions, tmp_path):
    missing = tmp_path / "nope.jsonl"
    app = canned_app(corpus, questions=missing)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_bench(pilot)
        message = shown_in(screen, "#bench-message")
        assert message == f"Error: Cannot read question file {missing}: No such file or directory. Check the path.\n"
        assert "Traceback" not in screen_text(app)
        box = screen.query_one("#bench-path", Input)
        assert app.focused is box and box.value == str(missing)
        box.value = str(questions)
        await pilot.press("enter")
        await settle(pilot)
        assert len(rows(screen)) == 6 and "Error" not in screen_text(app)


@sync
async def test_malformed_question_file_names_the_line(corpus, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok?", "evidence": []}\n{not json\n', encoding="utf-8")
    app = canned_app(corpus, questions=bad)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_bench(pilot)
        assert shown_in(screen, "#bench-message").startswith(f"Error: {bad}:2 is not a question line")
        assert "Traceback" not in screen_text(app)


@sync
async def test_without_a_question_file_the_screen_says_how_to_load_one(corpus, questions):
    app = canned_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_bench(pilot)
        assert shown_in(screen, "#bench-message") == NO_FILE + "\n"
        box = screen.query_one("#bench-path", Input)
        assert app.focused is box
        box.value = str(questions)
        await pilot.press("enter")
        await settle(pilot)
        assert len(rows(screen)) == 6
        await pilot.press("escape")
        await pilot.pause()
        assert app.questions_path == questions  # the next f2 opens the same file


@sync
async def test_questions_about_other_documents_are_flagged(corpus, tmp_path):
    other = tmp_path / "other.jsonl"
    other.write_text(
        '{"question": "What is the capital of France?", "evidence": [{"source": "elsewhere.txt", "text": "x"}]}\n'
    )
    app = canned_app(corpus, questions=other)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_bench(pilot)
        assert "This index holds none of the documents these questions cite (1)" in shown_in(screen, "#bench-message")


@sync
async def test_bench_waits_for_the_engine(corpus, questions):
    import threading

    release = threading.Event()
    app = canned_app(corpus, questions=questions)
    inner = app.loader
    app.loader = lambda *args: (release.wait(10), inner(*args))[1]
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("f2")
        await pilot.pause()
        assert not isinstance(app.screen, BenchScreen)
        assert any("bench opens once it is ready" in m for _, m in notices(app))
        release.set()
        await settle(pilot)


def test_chat_refuses_a_missing_question_file_in_one_line(monkeypatch, capsys, tmp_path):
    from conftest import run_main

    code, out, err = run_main(monkeypatch, capsys, "chat", "--questions", str(tmp_path / "nope.jsonl"))
    assert (
        code == 2
        and err
        == f"Error: Cannot read question file {tmp_path / 'nope.jsonl'}: No such file or directory. Check the path.\n"
    )


def test_help_lists_the_bench_key(corpus):
    from tui.commands import help_sections

    app = canned_app(corpus)
    sections = dict(help_sections(app))
    assert ("f2", "Bench: accuracy and misses on a question file") in sections["Anywhere"]
    assert any(keys == "m" for keys, _ in sections["Bench (f2)"])
