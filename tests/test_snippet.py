"""The one-line passage previews: the part of a passage the question matched, its words marked."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from qa.snippet import ELLIPSIS, snippet

FILLER = "Nothing of note happened on this day in the town. " * 6
PASSAGE = FILLER + "The council voted to rebuild the old bridge over the river in spring.\n\n" + FILLER


def marked(s) -> list[str]:
    return [s.text[a:b] for a, b in s.highlights]


def test_the_preview_shows_where_the_question_words_are_not_the_first_line():
    s = snippet(PASSAGE, "When will they rebuild the bridge on the river?", width=120)
    assert s.text.startswith(ELLIPSIS + "The council voted") and s.text.endswith(ELLIPSIS)
    assert len(s.text) <= 120
    assert {w.lower() for w in marked(s)} >= {"bridge", "river", "rebuild"}


def test_a_focus_starts_the_preview_at_that_sentence():
    start = PASSAGE.index("The council")
    s = snippet(PASSAGE, "nothing", width=60, focus=(start, start + 20))
    assert s.text.startswith(ELLIPSIS + "The council voted") and s.text.endswith(ELLIPSIS)
    assert marked(s) == []  # "nothing" is only in the other sentences, outside the window


def test_no_match_shows_the_start_and_short_text_is_whole():
    s = snippet(PASSAGE, "zebra", width=80)
    assert s.text.startswith("Nothing of note") and s.text.endswith(ELLIPSIS) and len(s.text) <= 80
    short = snippet("  Paris is\n the capital.  ", "capital of France")
    assert short.text == "Paris is the capital." and marked(short) == ["capital"]


def test_a_passage_shorter_than_the_preview_is_shown_whole_and_a_late_match_fills_the_width():
    short = "Attack text: [bold red]x[/] here.\nThe injection document mentions markup."
    assert snippet(short, "injection markup", width=160).text == " ".join(short.split())
    exact = ("alpha " * 40)[:189] + " delta end."
    assert len(exact) == 200 and snippet(exact, "delta end", width=200).text == exact
    s = snippet(FILLER + "The bridge reopens in spring.", "When is spring?", width=100)
    assert s.text.startswith(ELLIPSIS) and not s.text.endswith(ELLIPSIS) and 90 <= len(s.text) <= 100


def test_escape_sequences_and_line_breaks_are_left_out_and_marks_stay_on_the_words():
    text = "Intro line.\r\n\x1b[31mThe \x1b]8;;http://x\x07bridge\x1b[0m\u00a0was\tclosed [bold]today[/bold].\n"
    s = snippet(text, "Why was the bridge closed today?")
    assert "\x1b" not in s.text and "\n" not in s.text and "\t" not in s.text and "\x07" not in s.text
    assert marked(s) == ["bridge", "closed", "today"]
    assert "[bold]today[/bold]" in s.text  # shown as text, never parsed as markup (tui.display uses Text)


def test_curly_quotes_and_no_break_spaces_still_match():
    s = snippet("He said the \u201cbudget\u201d\u00a0was cut.", 'Was the "budget" cut?')
    assert marked(s) == ["budget", "cut"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["river", "bridge", "town", ".", " ", "\n", "\t", "\u00a0", "\x1b[1m", "  \r\n"]), max_size=60
    )
)
def test_marks_cover_the_same_words_whatever_the_whitespace(pieces):
    text = "".join(pieces)
    s = snippet(text, "river bridge", width=60)
    assert "  " not in s.text and "\n" not in s.text and "\x1b" not in s.text
    assert all(s.text[a:b] in ("river", "bridge") for a, b in s.highlights)
    inner = s.text.strip(ELLIPSIS)
    assert inner == inner.strip() and inner in " ".join(text.replace("\x1b[1m", "").split())
