"""Exporting the whole conversation as Markdown: the file, its safety as Markdown, and never overwriting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tui_helpers import ask, fake_app, notices, screen_text, settle, sync, write_demo_corpus

from qa.results import Answer, AnswerSpan, Citation, Passage, Scores
from tui.markdown import conversation_markdown, md_code, md_text, write_new

SIZE = (120, 40)
SEEDS = Path(__file__).resolve().parents[1] / "seeds"


@pytest.fixture
def corpus(tmp_path):
    return write_demo_corpus(tmp_path / "corpus")


def _exported(app) -> Path:
    """The file named by the last 'Exported to' notice (its full path)."""
    said = [m for _, m in notices(app) if m.startswith("Exported to ")]
    assert said, notices(app)
    path = Path(said[-1].removeprefix("Exported to "))
    assert path.is_absolute() and path.is_file()
    return path


@sync
async def test_ctrl_s_exports_every_turn_with_mode_filter_and_citations_and_says_where(corpus):
    from index.locations import data_dir

    app = fake_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "^s Export chat" in screen_text(app)  # the footer names the key
        await ask(pilot, "What is the capital of France?")
        app.mode = "bm25"
        app.sources = ("notes/lighthouse.txt",)
        await ask(pilot, "Who was the lighthouse keeper?")
        await ask(pilot, "Who painted the Mona Lisa?")
        await pilot.press("ctrl+s")
        await pilot.pause()
        path = _exported(app)
        assert path.parent == data_dir() / "exports" and path.name.startswith("qa-conversation-")
        text = path.read_text(encoding="utf-8")
        questions = re.findall(r"^## Q: (.*)$", text, flags=re.M)
        assert questions == [
            "What is the capital of France?",
            "Who was the lighthouse keeper?",
            "Who painted the Mona Lisa?",
        ]
        turns = text.split("\n## Q: ")[1:]
        first, second = turns[0], turns[1]
        assert "Mode: hybrid · filter: all documents" in first
        assert "Mode: bm25 · filter: `notes/lighthouse.txt`" in second
        assert "**Answer** (confidence" in first and "`paris.txt:1" in first
        assert re.search(r"^1\. `notes/lighthouse\.txt:\d+-\d+` chars \d+-\d+, score", second, flags=re.M)
        assert "`paris.txt:" not in second  # the filter held
        for answer, turn in zip((t.answer for t in app.query("TurnView")), turns, strict=True):
            for p in answer.passages:
                assert f"{p.rank}. `{p.citation.label}`" in turn
        # Again: a second file, the first one unchanged.
        await pilot.press("ctrl+s")
        await pilot.pause()
        again = _exported(app)
        assert again != path and path.read_text(encoding="utf-8") == text


@sync
async def test_the_palette_exports_the_conversation_and_an_empty_chat_says_there_is_nothing(corpus):
    from textual.command import CommandPalette

    app = fake_app(corpus)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert any("Nothing to export yet" in m for _, m in notices(app))
        await ask(pilot, "What is the capital of France?")
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"Export conversation")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert "## Q: What is the capital of France?" in _exported(app).read_text(encoding="utf-8")


def test_write_new_never_replaces_a_file_or_follows_a_link(tmp_path):
    (tmp_path / "x.md").write_text("mine", encoding="utf-8")
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep", encoding="utf-8")
    (tmp_path / "x-2.md").symlink_to(target)
    path = write_new(tmp_path, "x", "new")
    assert path == tmp_path / "x-3.md" and path.read_text(encoding="utf-8") == "new"
    assert (tmp_path / "x.md").read_text(encoding="utf-8") == "mine" and target.read_text(encoding="utf-8") == "keep"


HOSTILE = (
    "Intro <script>alert(1)</script> <img src=x onerror=alert(2)> [click](javascript:alert(3)) &lt;b&gt;\n"
    "# Heading\n- item\n> quote\n```\ncode\n```\n\x1b[31mred\x1b]0;title\x07 *em* _u_ `tick` $x$ | a | b |"
)


def _hostile_answer() -> Answer:
    label_source = "we`ird <b>.txt"
    cite = Citation(label_source, 1, 7, 0, len(HOSTILE), HOSTILE)
    span = AnswerSpan(cite, 0.9, 1)
    return Answer(HOSTILE, True, span, (Passage(1, 1, cite, Scores(1.0, 0.5, 0.5)),), "hybrid", span, 0.5)


def test_hostile_document_text_is_shown_as_text_by_a_markdown_reader():
    from markdown_it import MarkdownIt

    text = conversation_markdown("corpus <b>", [(HOSTILE, _hostile_answer()), ("Still waiting?", None)], "now")
    assert "\x1b" not in text and "\x07" not in text
    html = MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough").render(text)
    # No tag the document wrote, no link, no emphasis, and only the export's own headings, quotes and lists.
    own = html.replace("<strong>Answer</strong>", "").replace("<em>Not answered.</em>", "")
    assert not re.search(r"<(script|img|a|b|em|strong|table|pre|del)\b", own)
    assert re.findall(r"<h(\d)>", html) == ["1", "2", "2"]
    assert html.count("<blockquote>") == 2 and html.count("<li>") == 1
    assert "alert(1)" in html and "&lt;script&gt;" in html  # shown, as text
    assert "<code>we`ird &lt;b&gt;.txt:1-7</code>" in html
    assert "<em>Not answered.</em>" in html


@pytest.mark.parametrize("raw", ["a `b` c", "``", "` start", "end `", "x ``` y", "plain.txt:3", "\x1b[2Jname.txt"])
def test_code_spans_hold_any_backticks_and_no_escapes(raw):
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark").renderInline(md_code(raw))
    expected = " ".join(raw.replace("\x1b[2J", "").split())
    assert html == f"<code>{expected.replace('<', '&lt;')}</code>"


@pytest.mark.parametrize("raw", ["1. first", "- dash", "+ plus", "=== setext", "# hash", "a\n> b", "C#", "x ##"])
def test_text_renders_as_the_same_words_whatever_it_starts_with(raw):
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark").render(f"> {md_text(raw)}\n")
    assert html == f"<blockquote>\n<p>{' '.join(raw.split()).replace('>', '&gt;')}</p>\n</blockquote>\n"


@pytest.mark.slow
@sync
async def test_real_model_conversation_export_over_seeds(seed_index_dir, real_embedder):
    from qa.config import RunConfig
    from tui.app import make_app

    app = make_app(RunConfig(corpus=(SEEDS,), index_dir=seed_index_dir), embedder=real_embedder, watch_seconds=None)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "who is josh earnest")
        await ask(pilot, "When will Hollande meet Angela Merkel?")
        await pilot.press("ctrl+s")
        await pilot.pause()
        text = _exported(app).read_text(encoding="utf-8")
        answers = [t.answer for t in app.query("TurnView")]
        assert [a.question for a in answers] == re.findall(r"^## Q: (.*)$", text, flags=re.M)
        for answer in answers:
            if answer.found:
                assert f"(confidence {answer.answer.confidence:.2f}, `{answer.answer.citation.label}`)" in text
            assert all(f"{p.rank}. `{p.citation.label}` chars" in text for p in answer.passages)
