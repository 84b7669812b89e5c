"""Unit tests of the chat's pieces that need no running app: history store, display helpers, imports."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.results import Answer, AnswerSpan, Citation, Passage, Scores
from tui.display import HIGHLIGHT, answer_text, display_text, locate, one_line
from tui.history import HistoryStore, answer_from_json, answer_to_json
from tui.markdown import answer_markdown
from tui.widgets.source_view import SourceView, wrap_offsets


def sample_answer(found: bool = True) -> Answer:
    cite = Citation("a.txt", 2, 3, 10, 40, "The keeper was Aurelio.\nHe lived there.", stale=False)
    span = AnswerSpan(Citation("a.txt", 2, 2, 10, 33, "The keeper was Aurelio."), 0.8, 1, ((4, 10),))
    other = Citation("b.txt", 1, 1, 0, 20, "The keeper was Aurelio", stale=True)
    passage = Passage(1, 7, cite, Scores(3.5, 0.61, 0.7), (other,))
    return Answer(
        "Who was the keeper?", found, span if found else None, (passage,), "hybrid", span, 0.5, {"embed": 1.0}
    )


@pytest.mark.parametrize("found", [True, False])
def test_answer_json_round_trip_is_exact(found):
    answer = sample_answer(found)
    assert answer_from_json(answer_to_json(answer)) == answer


def test_history_store_conversations_and_question_recall(tmp_path):
    store = HistoryStore(tmp_path / "h.sqlite")
    first = store.start_conversation("corpus", "Who was the keeper?")
    turn = store.add_turn(first, "Who was the keeper?", None)
    store.set_answer(turn, sample_answer())
    store.add_turn(first, "Where?", None)
    second = store.start_conversation("corpus", "Again")
    store.add_turn(second, "Who was the keeper?", sample_answer(False))
    store.close()

    reopened = HistoryStore(tmp_path / "h.sqlite")
    assert reopened.problem is None
    assert reopened.questions() == ["Where?", "Who was the keeper?"]
    listed = reopened.conversations()
    assert [(c.id, c.turns) for c in listed] == [(second, 1), (first, 2)]
    assert reopened.turns(first) == [("Who was the keeper?", sample_answer()), ("Where?", None)]


def test_unusable_history_file_falls_back_to_memory(tmp_path):
    bad = tmp_path / "history.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    store = HistoryStore(bad)
    assert store.problem and str(bad) in store.problem and "Move that file away" in store.problem
    conversation = store.start_conversation("c", "q")
    store.add_turn(conversation, "q", None)
    assert store.questions() == ["q"]
    assert bad.read_bytes().startswith(b"this is not a database")


def test_display_text_keeps_offsets_and_removes_escapes():
    raw = "a\x1b[31mred\x1b[0m\tb\r\nc\u2028d [bold]e[/bold]\x07"
    shown = display_text(raw)
    assert len(shown) == len(raw)
    assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown and "\u2028" not in shown
    assert shown.split("\n")[1] == "c\ufffdd [bold]e[/bold]\ufffd"
    assert one_line("x\x1b[31my\n  z") == "xy z"
    assert display_text("page one\n\f\npage two") == "page one\n─\npage two", "a page break is drawn as a rule"


def test_answer_sentence_drops_escapes_and_keeps_its_highlights_on_the_same_words():
    """The answer line leaves escape sequences out (no placeholder per character) and still
    highlights the matched words, in the chat and in `qa ask`."""
    from qa.sanitize import safe_text_and_spans

    raw = "\x1b[31mRED\x1b[0m [bold]markup[/bold] says the code is 4471.\x07"
    words = [(raw.index("code"), raw.index("code") + 4), (raw.index("4471"), raw.index("4471") + 4)]
    shown, moved = safe_text_and_spans(raw, words)
    assert shown == "RED [bold]markup[/bold] says the code is 4471."
    assert [shown[a:b] for a, b in moved] == ["code", "4471"]
    text, printed = _answer_line_shown(Citation("evil.txt", 1, 1, 0, len(raw), raw), words)
    assert text.plain.endswith("\n" + shown)
    assert sorted(text.plain[s.start : s.end] for s in text.spans if s.style == HIGHLIGHT) == ["4471", "code"]
    assert shown in printed and "\ufffd" not in printed


def _answer_line_shown(cite: Citation, words: list[tuple[int, int]]):
    """An answer quoting cite with words highlighted, as the chat draws it (Text) and as `qa ask` prints it."""
    from io import StringIO

    from rich.console import Console

    from qa.render import render_answer

    span = AnswerSpan(cite, 0.9, 1, tuple(words))
    answer = Answer("What does it say?", True, span, (), "hybrid", span, 0.5)
    out = StringIO()
    render_answer(answer, Console(file=out, width=200, color_system=None))
    return answer_text(answer), out.getvalue()


def test_an_answer_sentence_from_a_hard_wrapped_file_is_shown_on_one_line():
    """The sentence keeps the file's offsets (its text holds the line breaks and indentation), but the
    answer line shows it as one line, with the matched words still highlighted, in the chat and in `qa ask`."""
    from qa.sanitize import unwrapped

    raw = (
        "Boats that arrive after dark must call\n  the Harbour Office on channel twelve,\r\nwhere berths are allocated."
    )
    words = [(raw.index("Harbour"), raw.index("Office") + 6), (raw.index("berths"), raw.index("berths") + 6)]
    one = "Boats that arrive after dark must call the Harbour Office on channel twelve, where berths are allocated."
    assert unwrapped(raw, words) == (
        one,
        [(one.index("Harbour"), one.index("Office") + 6), (one.index("berths"), one.index("berths") + 6)],
    )
    item = "- The fuel pontoon opens at seven\n  and closes at dusk."
    assert unwrapped(item, [(item.index("dusk"), item.index("dusk") + 4)]) == (
        "The fuel pontoon opens at seven and closes at dusk.",
        [(46, 50)],
    )
    assert (
        unwrapped("## Berths by length")[0] == "Berths by length"
        and unwrapped("-5 degrees at dusk.")[0] == "-5 degrees at dusk."
    )
    text, printed = _answer_line_shown(Citation("harbour.md", 4, 6, 100, 100 + len(raw), raw), words)
    assert text.plain.endswith("\n" + one)
    assert sorted(text.plain[s.start : s.end] for s in text.spans if s.style == HIGHLIGHT) == [
        "Harbour Office",
        "berths",
    ]
    assert one in printed


@pytest.mark.parametrize("found", [True, False])
def test_the_reply_names_better_ranked_passages_passed_over_as_stale(found):
    fresh = sample_answer(found)
    assert fresh.skipped_stale == () and "changed since indexing" not in answer_text(fresh).plain
    stale = Passage(
        1,
        3,
        Citation("old <b>\x1b[2J.txt", 1, 1, 0, 5, "Sails"),
        Scores(1.0, 0.9, 1.0),
        (),
    )
    answer = replace(
        fresh,
        passages=(stale, *(replace(p, rank=2) for p in fresh.passages)),
        best_guess=replace(fresh.best_guess, passage_rank=2),
    )
    answer = replace(
        answer,
        passages=tuple(
            replace(p, citation=replace(p.citation, stale=True)) if p.rank == 1 else p for p in answer.passages
        ),
    )
    assert answer.skipped_stale == ("old <b>\x1b[2J.txt",)
    shown = answer_text(answer).plain
    assert "files changed since indexing (old <b>.txt): ctrl+r re-indexes" in shown and "\x1b" not in shown


def test_locate_finds_cited_text_even_after_the_file_changed():
    cite = Citation("a.txt", 1, 1, 4, 9, "quick")
    assert locate("the quick fox", cite) == (4, 9)
    assert locate("oh, the quick fox", cite) == (8, 13)
    assert locate("the slow fox", cite) is None


def test_markdown_export_lists_answer_and_citations():
    text = answer_markdown(sample_answer())
    assert text.startswith("## Q: Who was the keeper?\n")
    assert "**Answer** (confidence 0.80, `a.txt:2`)" in text
    assert "1. `a.txt:2-3` chars 10-40, score 0.700" in text
    assert "> The keeper was Aurelio. He lived there." in text


def test_importing_the_app_loads_no_model_code():
    """The first frame must not wait for torch, sentence-transformers or faiss."""
    code = (
        "import sys, tui.app; print(sorted(m for m in ('torch', 'sentence_transformers', 'faiss') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab cd  éü日本\u200b-"), max_size=300), st.integers(1, 40))
def test_wrap_offsets_cover_the_line_and_fit_the_width(line, width):
    from rich.cells import cell_len

    rows = wrap_offsets(line, width)
    assert "".join(line[s:e] for s, e in rows) == line
    assert all(e > s for s, e in rows) or line == ""
    assert all(b[0] == a[1] for a, b in zip(rows, rows[1:]))
    for s, e in rows:
        row = line[s:e].rstrip(" ")
        assert cell_len(row) <= width or len(row) == 1  # a character wider than the pane gets a row of its own


def test_source_view_shows_a_large_document_quickly():
    import time

    text = "\n".join(
        f"Line {i} of a long report with enough words to need wrapping at the pane width." * 2 for i in range(20000)
    )

    async def run():
        from textual.app import App

        class One(App):
            def compose(self):
                yield SourceView()

        app = One()
        async with app.run_test(size=(100, 30)) as pilot:
            view = app.query_one(SourceView)
            started = time.perf_counter()
            view.show(text, (len(text) // 2, len(text) // 2 + 300))
            await pilot.pause()
            elapsed = time.perf_counter() - started
            assert len(view._rows) >= 40000 and view.focus_line == text.count("\n", 0, len(text) // 2) + 1
            row = view._first_row[view.focus_line - 1]
            assert view.scroll_offset.y <= row < view.scroll_offset.y + view.size.height
            return elapsed

    # 3.2 MB, 20,000 long lines: 0.3-1.7 s on the shared 2-core machine. The bound only catches work that
    # grows with the square of the document (minutes at this size); speed is for benchmarks/, not tests.
    elapsed = asyncio.run(run())
    print(f"show 3.2 MB: {elapsed:.2f}s")
    assert elapsed < 15


def test_passages_mark_the_question_words_in_qa_ask_and_preview_them_in_the_chat():
    """`qa ask` prints each whole passage with the question's words in bold yellow; the chat's row shows
    the window of the passage that holds them, escape sequences left out."""
    from io import StringIO

    from rich.console import Console

    from qa.render import render_answer
    from tui.display import passage_text

    raw = "Intro. " * 40 + "\x1b[31mThe bridge\x1b[0m over the river closes in May."
    cite = Citation("town.txt", 1, 2, 0, len(raw), raw)
    passage = Passage(1, 7, cite, Scores(1.0, 0.9, 1.0))
    answer = Answer("When does the bridge close?", False, None, (passage,), "hybrid", None, 0.5)
    out = StringIO()
    render_answer(answer, Console(file=out, width=400, force_terminal=True, color_system="standard"))
    printed = out.getvalue()
    assert "\x1b[1;33mbridge\x1b[0m" in printed and "\x1b[1;33mcloses\x1b[0m" in printed and "\x1b[31m" not in printed
    row = passage_text(passage, show_scores=False, is_answer=False, question=answer.question)
    preview = row.renderables[1].renderable.renderables[0]
    assert preview.plain.startswith("…") and "The bridge over the river closes in May." in preview.plain
    assert sorted(preview.plain[s.start : s.end] for s in preview.spans if s.style == HIGHLIGHT) == ["bridge", "closes"]


def test_a_passage_overlapping_a_better_one_previews_what_it_adds():
    """Chunks of one file share sentences: a passage that overlaps a better-ranked one is previewed
    from where it stops repeating it, not at the shared sentence (which drew both previews before)."""
    from tui.display import passage_text
    from tui.widgets.citations import _unseen

    text = (
        ("Filler words open the file here. " * 3)
        + "The harbour master Ingrid answers calls. "
        + ("Boats moor at the north quay in summer. " * 4)
    )
    first_end = text.index("Boats")
    upper = Citation("h.txt", 1, 1, 0, first_end, text[:first_end])
    shared = text.index("The harbour")
    lower = Citation("h.txt", 1, 2, shared, len(text), text[shared:])
    assert _unseen(lower, [upper]) == (first_end - shared, len(text) - shared)
    assert _unseen(lower, [Citation("other.txt", 1, 1, 0, first_end, text[:first_end])]) is None, (
        "another file: no overlap"
    )
    assert _unseen(upper, [lower]) == (0, first_end), "a better one that starts inside it: its beginning is new"
    question = "Who answers the harbour master's calls?"
    before = passage_text(
        Passage(2, 2, lower, Scores(1.0, 0.5, 0.5)), show_scores=False, is_answer=False, question=question
    )
    after = passage_text(
        Passage(2, 2, lower, Scores(1.0, 0.5, 0.5)),
        show_scores=False,
        is_answer=False,
        question=question,
        focus=_unseen(lower, [upper]),
    )
    shown = lambda group: group.renderables[1].renderable.renderables[0].plain  # noqa: E731 - the preview line
    assert "Ingrid answers calls" in shown(before)
    assert shown(after).startswith("…Boats moor") and "Ingrid" not in shown(after)
