"""Each chat turn says the mode and the document filter it was asked with (issue 19, item 7)."""

from __future__ import annotations

import pytest
from tui_helpers import ask, fake_app, held_loader, screen_text, settle, static_text, sync, write_demo_corpus

from tui.widgets.turn import TurnView

SIZE = (120, 40)
MARKUP_NAME = "[bold]x.txt"


@pytest.fixture
def corpus(tmp_path):
    root = write_demo_corpus(tmp_path / "corpus")
    (root / MARKUP_NAME).write_text("The harbour master counts the boats each morning.\n", encoding="utf-8")
    return root


def scope(turn: TurnView) -> str:
    return static_text(turn.query_one(".scope")).strip()


@sync
async def test_each_turn_shows_its_mode_and_filter_as_text(corpus):
    app = fake_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.sources = (MARKUP_NAME,)
        await ask(pilot, "Who counts the boats?")
        app.sources = ()
        app.mode = "dense"
        await ask(pilot, "What is the capital of France?")
        first, second = app.query(TurnView)
        # A file name with markup is shown as it is, not parsed (no bold, no vanished brackets).
        assert scope(first) == f"hybrid · Searched only: {MARKUP_NAME}"
        assert first.answer is not None and first.answer.sources == (MARKUP_NAME,)
        assert all(p.citation.source == MARKUP_NAME for p in first.answer.passages)
        # The later change of filter and mode does not rewrite the earlier turn.
        assert scope(second) == "dense · all documents"
        assert f"Searched only: {MARKUP_NAME}" in screen_text(app)


@sync
async def test_a_queued_turn_is_asked_with_the_settings_it_shows(corpus, fake_embedder):
    """A question typed while the index loads keeps the filter it was typed under."""
    slow_loader, release = held_loader(corpus, fake_embedder)
    app = fake_app(corpus, engine_loader=slow_loader)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.sources = ("paris.txt",)
        await ask_without_waiting(pilot, "What is the capital of France?")
        app.sources = ()
        release.set()
        await settle(pilot)
        turn = app.query_one(TurnView)
        assert scope(turn) == "hybrid · Searched only: paris.txt"
        assert turn.answer is not None and {p.citation.source for p in turn.answer.passages} == {"paris.txt"}


@sync
async def test_a_reopened_conversation_shows_each_turns_filter(corpus):
    app = fake_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.sources = ("paris.txt",)
        await ask(pilot, "What is the capital of France?")
        conversation = app.conversation_id
        app.reopen(None, fresh=True)
        await settle(pilot)
        app.reopen(conversation)
        await settle(pilot)
        assert scope(app.query_one(TurnView)) == "hybrid · Searched only: paris.txt"


async def ask_without_waiting(pilot, question: str) -> None:
    from tui.widgets.question_input import QuestionInput

    box = pilot.app.query_one(QuestionInput)
    box.focus()
    box.value = question
    await pilot.press("enter")
    await pilot.pause()
