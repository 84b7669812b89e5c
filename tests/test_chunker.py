"""Chunker invariants: exact spans, 1-based lines, overlap of whole sentences, never over the token limit."""

from __future__ import annotations

import re

import pytest
from conftest import SEEDS
from fakes import HashingEmbedder
from hypothesis import given, settings
from hypothesis import strategies as st

from index.chunker import (
    Chunk,
    ChunkSettings,
    LineIndex,
    chunk_text,
    segment_text,
    segment_texts,
    split_sentences,
    wrap_width,
)

FAKE = HashingEmbedder()


class ContextTokenizer:
    """A tokenizer whose tokens for joined text exceed the sum of its parts.

    A word right after a line break becomes two tokens, so a sentence alone has fewer tokens than
    the same sentence inside a chunk. Real wordpiece tokenizers can also disagree between a text
    alone and in context; this one makes it common so the chunker's re-check has to act.
    """

    def offsets(self, texts):
        out = []
        for t in texts:
            spans = []
            for m in re.finditer(r"\w+|[^\w\s]", t):
                s, e = m.span()
                if s > 0 and t[s - 1] == "\n" and e - s > 1:
                    spans.extend([(s, s + 1), (s + 1, e)])
                else:
                    spans.append((s, e))
            out.append(spans)
        return out


def check_invariants(text: str, chunks: list[Chunk], tokenizer, limit: int, exact_count: bool = True) -> None:
    """Everything a citation relies on, checked against the document text itself.

    exact_count: the tokenizer is context-free, so a chunk's n_tokens must equal its own count.
    """
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert 0 <= c.char_start < c.char_end <= len(text)
        assert c.text == text[c.char_start : c.char_end]
        assert c.text == c.text.strip(), "chunks are trimmed"
        assert c.line_start == text.count("\n", 0, c.char_start) + 1
        assert c.line_end == text.count("\n", 0, c.char_end - 1) + 1
        assert c.line_end - c.line_start == c.text.count("\n")
        n = len(tokenizer.offsets([c.text])[0])
        assert n <= limit, f"chunk {c.ordinal} has {n} tokens > {limit}"
        if exact_count:
            assert c.n_tokens == n
    if exact_count:
        # Order is only promised when counts are context-free: a group the re-check has to re-split
        # may leave a fragment that overlaps the next chunk (harmless for citations, rare for BERT).
        starts = [c.char_start for c in chunks]
        ends = [c.char_end for c in chunks]
        assert starts == sorted(starts) and len(set(starts)) == len(starts)
        assert ends == sorted(ends) and len(set(ends)) == len(ends)
    # Every visible token of the document is inside some chunk: nothing is silently dropped.
    covered = [(c.char_start, c.char_end) for c in chunks]
    for s, e in tokenizer.offsets([text])[0]:
        if not text[s:e].strip():
            continue
        assert any(a <= s and e <= b for a, b in covered), f"token {text[s:e]!r} at {s} is in no chunk"


def test_split_sentences_keeps_abbreviations_and_breaks_at_lines():
    text = "Mr. Obama met Dr. Smith on Nov. 13 in the U.S. capital. It rained!  Then:\nnew line? yes. Done"
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == [
        "Mr. Obama met Dr. Smith on Nov. 13 in the U.S. capital.",
        "It rained!",
        "Then:",
        "new line? yes.",
        "Done",
    ]


WRAPPED_NOTE = """# Tides and ferries

The harbour master publishes the tide tables every Monday morning, and the
ferry timetable follows them. Boats that arrive after dark must call the
Harbour Office on channel twelve before they enter the inner basin, where
the berths are allocated by length.

- Fishing boats keep the north quay all year round, and visiting yachts
  moor along the south wall in the summer months.
- The fuel pontoon opens at seven.

| Berth | Length |
| A | 12 m |

```
ferry --list
timetable --week
```
Tide tables
are printed in the harbour office window every week for the coming month.
"""


def test_hard_wrapped_prose_is_split_into_sentences_not_lines():
    spans = [WRAPPED_NOTE[s:e] for s, e in split_sentences(WRAPPED_NOTE)]
    assert spans == [
        "# Tides and ferries",
        "The harbour master publishes the tide tables every Monday morning, and the\nferry timetable follows them.",
        "Boats that arrive after dark must call the\nHarbour Office on channel twelve before they enter "
        "the inner basin, where\nthe berths are allocated by length.",
        "- Fishing boats keep the north quay all year round, and visiting yachts\n"
        "  moor along the south wall in the summer months.",
        "- The fuel pontoon opens at seven.",
        "| Berth | Length |",
        "| A | 12 m |",
        "```",
        "ferry --list",
        "timetable --week",
        "```",
        "Tide tables\nare printed in the harbour office window every week for the coming month.",
    ]


def test_a_line_left_short_by_a_long_code_span_or_ending_in_an_abbreviation_is_still_wrapped():
    """A wrapper moves a long code span whole to the next line, leaving this one short; "e.g." at a line's
    end is an abbreviation, not the end of a sentence (as it is inside a line)."""
    note = (
        "The chat runs its slow steps in\n"
        '`@work(thread=True, exclusive=True, group="load", exit_on_error=False)` workers that\n'
        "report back with messages. Indexes go to the user cache dir (platformdirs; e.g.\n"
        "`~/.cache/qa-docs/indexes/`), one per corpus, or to the folder given with the option.\n"
        "Each update writes a new generation beside the old one and swaps them at the very end.\n"
    )
    assert [note[s:e].split("\n")[0][:24] for s, e in split_sentences(note)] == [
        "The chat runs its slow s",
        "Indexes go to the user c",
        "Each update writes a new",
    ]


def test_lines_that_are_not_wrapped_stay_units():
    """A title, a byline and paragraphs one per line (the seed articles' layout) keep their breaks; in a
    text that is not hard-wrapped only a lower-case next line continues a sentence."""
    news = (
        "Obama, Hollande pledge solidarity against ISIS\n"
        "By Staff Writer\n"
        "WASHINGTON (AP) — President Barack Obama met French President Francois Hollande at the White House "
        "on Tuesday, pledging to intensify strikes.\n"
        "The two leaders spoke for an hour\n"
        "about Syria and the refugee crisis.\n"
    )
    assert wrap_width(news.split("\n")) is None
    assert [news[s:e] for s, e in split_sentences(news)] == [
        "Obama, Hollande pledge solidarity against ISIS",
        "By Staff Writer",
        "WASHINGTON (AP) — President Barack Obama met French President Francois Hollande at the White House "
        "on Tuesday, pledging to intensify strikes.",
        "The two leaders spoke for an hour\nabout Syria and the refugee crisis.",
    ]


def test_wrap_width_is_the_column_most_lines_fill():
    assert wrap_width(WRAPPED_NOTE.split("\n")) is not None
    gutenberg = ("It was the best of times, it was the worst of times, it was the age of\n" * 6).split("\n")
    assert wrap_width(gutenberg) == len(gutenberg[0])
    assert wrap_width(["short", "lines", "only", "here", "and", "there"]) is None  # under 40 columns
    assert wrap_width(["a" * 300] * 10) is None  # one paragraph per line


def test_split_sentences_closing_quotes_stay_with_their_sentence():
    text = "He said “we must act.” Then he left. ‘Why?’ She asked."
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "He said “we must act.”",
        "Then he left.",
        "‘Why?’",
        "She asked.",
    ]


def test_split_sentences_of_blank_text_is_empty():
    assert split_sentences("") == []
    assert split_sentences(" \n\u00a0\n\t ") == []


@pytest.mark.parametrize("text", ["", "a", "\n", "a\nb", "\n\nab\ncd\n", "x" * 5 + "\n" * 3 + "y"])
def test_line_index_matches_counting(text):
    lines = LineIndex(text)
    for offset in range(len(text) + 1):
        assert lines.line_of(offset) == text.count("\n", 0, offset) + 1


def test_chunks_of_seed_files_have_exact_spans_and_lines():
    for path in sorted(SEEDS.glob("*.txt")):
        text = path.read_bytes().decode("utf-8")
        for cs in (
            ChunkSettings(),
            ChunkSettings(max_tokens=40, overlap_tokens=10),
            ChunkSettings(max_tokens=254, overlap_tokens=0),
        ):
            chunks = chunk_text(text, FAKE, cs, FAKE.max_tokens)
            assert len(chunks) >= 1
            check_invariants(text, chunks, FAKE, cs.max_tokens)


def test_line_numbers_are_one_based_and_exact():
    text = "First line.\nSecond line.\n\nFourth line is here.\n"
    chunks = chunk_text(text, FAKE, ChunkSettings(max_tokens=4, overlap_tokens=0), 254)
    assert [(c.text, c.line_start, c.line_end) for c in chunks] == [
        ("First line.", 1, 1),
        ("Second line.", 2, 2),
        ("Fourth line is", 4, 4),  # cut where whitespace separates wordpieces, not before the "."
        ("here.", 4, 4),
    ]


def test_crlf_offsets_match_the_file_text():
    text = "One sentence here.\r\nAnother sentence there.\r\n\r\nA third.\r\n"
    chunks = chunk_text(text, FAKE, ChunkSettings(max_tokens=6, overlap_tokens=0), 254)
    check_invariants(text, chunks, FAKE, 6)
    assert [(c.text, c.line_start) for c in chunks] == [
        ("One sentence here.", 1),
        ("Another sentence there.", 2),
        ("A third.", 4),
    ]


def test_overlap_repeats_whole_trailing_sentences_within_budget():
    sentences = [f"Sentence number {i} talks about topic {i}." for i in range(30)]  # 8 tokens each
    text = " ".join(sentences)
    cs = ChunkSettings(max_tokens=40, overlap_tokens=16)
    chunks = chunk_text(text, FAKE, cs, 254)
    check_invariants(text, chunks, FAKE, 40)
    assert len(chunks) > 3
    sentence_starts = {s for s, _ in split_sentences(text)}
    for prev, nxt in zip(chunks, chunks[1:]):
        assert nxt.char_start in sentence_starts, "chunks start at a sentence"
        assert nxt.char_start < prev.char_end, "consecutive chunks overlap"
        shared = text[nxt.char_start : prev.char_end]
        assert len(FAKE.offsets([shared])[0]) == 16, "two 8-token sentences fit the 16-token overlap"


def test_zero_overlap_means_disjoint_chunks():
    text = " ".join(f"Sentence number {i} talks about topic {i}." for i in range(30))
    chunks = chunk_text(text, FAKE, ChunkSettings(max_tokens=40, overlap_tokens=0), 254)
    check_invariants(text, chunks, FAKE, 40)
    for prev, nxt in zip(chunks, chunks[1:]):
        assert nxt.char_start > prev.char_end


def test_model_limit_caps_the_configured_size():
    text = " ".join(["word"] * 1000)
    chunks = chunk_text(text, FAKE, ChunkSettings(max_tokens=254, overlap_tokens=0), model_limit=50)
    check_invariants(text, chunks, FAKE, 50)
    assert max(c.n_tokens for c in chunks) == 50


def test_long_sentence_is_cut_at_whitespace_not_inside_words():
    text = " ".join(f"alpha{i}-beta" for i in range(300))  # 3 tokens per word, no sentence end
    chunks = chunk_text(text, FAKE, ChunkSettings(max_tokens=20, overlap_tokens=5), 254)
    check_invariants(text, chunks, FAKE, 20)
    for c in chunks:
        assert c.char_start == 0 or text[c.char_start - 1] == " "
        assert c.char_end == len(text) or text[c.char_end] == " "


def test_joined_text_with_more_tokens_is_re_split():
    tok = ContextTokenizer()
    text = "\n".join(f"Line {i} here" for i in range(200))  # 3 tokens per line + 1 per break
    chunks = chunk_text(text, tok, ChunkSettings(max_tokens=30, overlap_tokens=6), 254)
    check_invariants(text, chunks, tok, 30, exact_count=False)


def test_text_the_model_cannot_see_gives_no_chunks():
    assert chunk_text("   \n\n  ", FAKE, ChunkSettings(), 254) == []


def test_unicode_is_kept_in_chunks():
    text = "Obama said Turkey “has the right to defend its territory”.\nHollande\u00a0is likely to leave. Putin’s aims."
    chunks = chunk_text(text, FAKE, ChunkSettings(max_tokens=254, overlap_tokens=0), 254)
    assert len(chunks) == 1 and chunks[0].text == text


_WORDS = st.sampled_from(
    [
        "Obama",
        "met",
        "Hollande",
        "in",
        "Washington",
        "Mr.",
        "Nov.",
        "U.S.",
        "“quoted”",
        "it’s",
        "a\u00a0b",
        "x-y",
        "don't",
        "3.5",
        "e.g.",
        "…",
    ]
)
_SEPS = st.sampled_from([" ", " ", " ", ". ", "! ", "? ", "\n", "\n\n", ".\n", "\r\n", "\t", "  "])


@st.composite
def documents(draw):
    parts = draw(st.lists(st.tuples(_WORDS, _SEPS), min_size=0, max_size=300))
    return "".join(w + s for w, s in parts)


@settings(max_examples=150, deadline=None)
@given(text=documents(), max_tokens=st.integers(1, 60), overlap=st.integers(0, 40))
def test_invariants_hold_for_arbitrary_text(text, max_tokens, overlap):
    chunks = chunk_text(text, FAKE, ChunkSettings(max_tokens=max_tokens, overlap_tokens=overlap), 254)
    check_invariants(text, chunks, FAKE, max_tokens)


@settings(max_examples=60, deadline=None)
@given(text=documents(), max_tokens=st.integers(2, 40), overlap=st.integers(0, 20))
def test_invariants_hold_when_context_adds_tokens(text, max_tokens, overlap):
    tok = ContextTokenizer()
    chunks = chunk_text(text, tok, ChunkSettings(max_tokens=max_tokens, overlap_tokens=overlap), 254)
    check_invariants(text, chunks, tok, max_tokens, exact_count=False)


def test_overlap_never_makes_a_chunk_of_old_text_only():
    """When the next sentence cannot fit beside the overlap, the overlap is dropped, not emitted alone."""
    text = "A b c. D e. X y z w v u t s."  # 4, 3 and 9 tokens
    chunks = chunk_text(text, FAKE, ChunkSettings(max_tokens=10, overlap_tokens=4), 254)
    assert [c.text for c in chunks] == ["A b c. D e.", "X y z w v u t s."]
    for a in chunks:
        for b in chunks:
            if a is not b:
                assert not (b.char_start <= a.char_start and a.char_end <= b.char_end), "a chunk inside another"


def check_segmentation(text: str, settings: ChunkSettings, tokenizer, limit: int) -> None:
    """Embedding units: exact, ordered, disjoint, within the limit; each chunk lists exactly the units it overlaps."""
    seg = segment_text(text, tokenizer, settings, 254)
    assert seg.chunks == chunk_text(text, tokenizer, settings, 254)
    assert len(seg.members) == len(seg.chunks)
    units = seg.units
    for u in units:
        span = text[u.char_start : u.char_end]
        assert span and span == span.strip()
        assert len(tokenizer.offsets([span])[0]) <= limit, "every embedded text fits the model"
    if settings.dense_unit == "chunk":
        assert [(u.char_start, u.char_end) for u in units] == [(c.char_start, c.char_end) for c in seg.chunks]
        assert seg.members == [[i] for i in range(len(seg.chunks))]
        return
    for a, b in zip(units, units[1:]):
        assert a.char_end <= b.char_start, "units are sorted and disjoint"
    for chunk, members in zip(seg.chunks, seg.members):
        overlapping = [
            i for i, u in enumerate(units) if u.char_start < chunk.char_end and u.char_end > chunk.char_start
        ]
        assert members == overlapping and members


@pytest.mark.parametrize("dense_unit", ["sentence", "chunk"])
def test_segmentation_of_seed_files(dense_unit):
    for path in sorted(SEEDS.glob("*.txt")):
        text = path.read_bytes().decode("utf-8")
        check_segmentation(text, ChunkSettings(max_tokens=60, overlap_tokens=20, dense_unit=dense_unit), FAKE, 60)


@settings(max_examples=80, deadline=None)
@given(
    text=documents(),
    max_tokens=st.integers(1, 40),
    overlap=st.integers(0, 20),
    dense_unit=st.sampled_from(["sentence", "chunk"]),
)
def test_segmentation_invariants_hold_for_arbitrary_text(text, max_tokens, overlap, dense_unit):
    check_segmentation(
        text, ChunkSettings(max_tokens=max_tokens, overlap_tokens=overlap, dense_unit=dense_unit), FAKE, max_tokens
    )


class Rechecking:
    """The same tokenizer without joins_on_whitespace: every chunk's joined text is tokenised again."""

    def __init__(self, tokenizer) -> None:
        self._tokenizer = tokenizer
        self.calls: list[int] = []

    def offsets(self, texts):
        self.calls.append(len(texts))
        return self._tokenizer.offsets(texts)


@settings(max_examples=100, deadline=None)
@given(text=documents(), max_tokens=st.integers(1, 60), overlap=st.integers(0, 40))
def test_skipping_the_recheck_at_whitespace_junctions_changes_nothing(text, max_tokens, overlap):
    cs = ChunkSettings(max_tokens=max_tokens, overlap_tokens=overlap)
    assert segment_text(text, FAKE, cs, 254) == segment_text(text, Rechecking(FAKE), cs, 254)


def test_many_documents_are_tokenised_in_one_call_and_rechecked_only_when_needed():
    texts = [path.read_text(encoding="utf-8") for path in sorted(SEEDS.glob("*.txt"))] + ["", "One. Two three."]
    counting = Rechecking(FAKE)
    counting.joins_on_whitespace = True
    cs = ChunkSettings(max_tokens=90, overlap_tokens=8)  # no seed sentence is cut: nothing to re-check
    batched = segment_texts(texts, counting, cs, 254)
    assert batched == [segment_text(text, FAKE, cs, 254) for text in texts]
    n_sentences = sum(len(split_sentences(text)) for text in texts)
    assert counting.calls == [n_sentences]  # one call for every sentence of every document, no re-check
    slow = Rechecking(FAKE)
    assert segment_texts(texts, slow, cs, 254) == batched
    assert slow.calls == [n_sentences, sum(len(seg.chunks) for seg in batched)]
