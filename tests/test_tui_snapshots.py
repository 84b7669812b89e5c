"""Snapshot tests: pictures of the chat at a fixed size over the demo corpus.

Answers come from tests/tui_helpers.CannedEngine (fixed replies with real offsets into the demo files), so the
pictures change when the chat's rendering changes, not when retrieval is retuned; the Pilot tests cover
the real engine (fake embedder) and tests/test_tui_real.py the real model.
"""

from __future__ import annotations

import pytest
from tui_helpers import ask, canned_app, settle, write_demo_corpus, write_demo_questions

SIZE = (120, 36)


@pytest.fixture
def app(tmp_path):
    corpus = write_demo_corpus(tmp_path / "corpus")
    return canned_app(corpus, cursor_blink=False)  # a blinking cursor would make pictures depend on timing


def test_main_screen(app, snap_compare):
    """Empty conversation with the welcome text, 'Ready · 3 documents' and the settings on the status
    line, the question box focused, and the footer listing tab, f1, ^f, ^t, ^r, ^o."""
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_answer(app, snap_compare):
    """One turn: the question, 'Answer  confidence 0.93  paris.txt:1  [1]' with 'capital' and 'France'
    highlighted, then the numbered citations [1] paris.txt:1-4 ← answer, [2] evil.txt:1-2 (markup shown
    literally, escape codes stripped), [3] notes/lighthouse.txt:91-102, each with a score and a preview."""

    async def run_before(pilot):
        await settle(pilot)
        await ask(pilot, "What is the capital of France?")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_not_found_answer(app, snap_compare):
    """A question with no support: 'Not in the documents  (best confidence 0.07 < 0.50)' in yellow
    with a yellow bar, and the nearest passages [1] and [2] still listed below it."""

    async def run_before(pilot):
        await settle(pilot)
        await ask(pilot, "zebra quantum chromodynamics")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_source_pane(app, snap_compare):
    """Citation [1] selected: the right pane shows notes/lighthouse.txt with line numbers, the cited
    lines 91-102 highlighted with a ▌ gutter marker, and line 100 (the answer sentence) drawn
    strongest and scrolled into view."""

    async def run_before(pilot):
        await settle(pilot)
        await ask(pilot, "Who was the lighthouse keeper on Skerry Island?")
        await pilot.press("tab", "enter")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_help_screen(app, snap_compare):
    """The ? / f1 help dialog over the chat: a short how-to, then keys grouped as Anywhere,
    Question box, Citations, Source pane and Bench (f2), taken from the bindings."""

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_bench_screen(tmp_path, snap_compare):
    """f2 over the demo questions (canned answers): the mode tabs with hybrid selected, Hit@1 0.250 ...
    Abstention 0.500, six rows (hit@1, rank 3, rank 2 and miss with 'abstained ✗', two 'no evidence',
    one 'answered ✗'), and q2's drill-down: its evidence in notes/lighthouse.txt, paris.txt and evil.txt
    ranked above it with fused/bm25/dense (evil.txt's markup shown literally), and where it ranked (3)."""
    corpus = write_demo_corpus(tmp_path / "corpus")
    app = canned_app(corpus, cursor_blink=False, questions=write_demo_questions(tmp_path / "demo_questions.jsonl"))

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f2")
        await settle(pilot)
        await pilot.press("down")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(140, 42), run_before=run_before)
