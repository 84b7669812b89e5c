"""Sentence-aware chunking sized by the embedding model's own tokenizer, with exact char/line spans."""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class Tokenizer(Protocol):
    """Reports where each wordpiece of a text sits, as (start, end) character offsets."""

    def offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]: ...


@dataclass(frozen=True)
class ChunkSettings:
    """How documents are cut into passages; recorded in the index manifest."""

    max_tokens: int = 128
    """Wordpieces per chunk, excluding [CLS]/[SEP]; never above the model's limit."""
    overlap_tokens: int = 32
    """Up to this many wordpieces of whole trailing sentences are repeated in the next chunk."""
    dense_unit: str = "sentence"
    """What gets embedded: each 'sentence' (a chunk scores as its best sentence) or each whole 'chunk'."""


@dataclass(frozen=True)
class Chunk:
    """A passage of one document: its text is exactly document_text[char_start:char_end]."""

    ordinal: int
    """Position of the chunk within its document, from 0."""
    char_start: int
    """Offset of the first character in the document text."""
    char_end: int
    """Offset one past the last character."""
    line_start: int
    """1-based line of the first character."""
    line_end: int
    """1-based line of the last character."""
    n_tokens: int
    """Wordpieces the model sees (without special tokens)."""
    text: str
    """The passage, copied from the document text."""


# A sentence ends at . ! ? (plus closing quotes/brackets) followed by whitespace, or at a line break.
_SENTENCE_END = re.compile(r"""[.!?…]+["'”’)\]]*(?=\s)|\n""")
_LAST_WORD = re.compile(r"""([\w.]+)[.!?…]+["'”’)\]]*$""")
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "sen",
    "rep",
    "gov",
    "gen",
    "col",
    "lt",
    "st",
    "jr",
    "sr",
    "vs",
    "etc",
    "no",
    "nov",
    "dec",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "u.s",
    "u.k",
    "e.g",
    "i.e",
    "inc",
    "ltd",
    "co",
    "corp",
    "fig",
    "al",
}


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans (start, end) with surrounding whitespace trimmed; blank spans dropped. A line break
    ends a sentence unless it only wraps one (soft_breaks)."""
    spans: list[tuple[int, int]] = []
    start = 0
    soft = soft_breaks(text)
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        if match.group() == "\n":
            if match.start() in soft:
                continue
        else:
            # the word before the full stop (the last 40 characters hold any abbreviation and its stop)
            tail = max(start, end - 40)
            word = _LAST_WORD.search(text, tail, end)
            if word and (word.start() > tail or tail == start) and word.group(1).lower().rstrip(".") in _ABBREVIATIONS:
                continue
            nxt = re.match(r"\s+(\S)", text[end : end + 8])
            if nxt and nxt.group(1).islower():
                continue
        _append_trimmed(spans, text, start, end)
        start = end
    _append_trimmed(spans, text, start, len(text))
    return spans


_ENDS_CLAUSE = re.compile(r"""[.!?…:;]["'”’)\]]*$""")
_STARTS_BLOCK = re.compile(r"(?:#{1,6}(?:\s|$)|[>|]|[-*+•](?:\s|$)|\d{1,3}[.)](?:\s|$)|```|~~~)")
_FENCE = ("```", "~~~")


def starts_block(line: str) -> bool:
    """Whether a line (stripped) opens a block of its own: a heading, list item, quote, table row or code fence."""
    return bool(_STARTS_BLOCK.match(line))


def soft_breaks(text: str) -> set[int]:
    """Offsets of the line breaks that only wrap a sentence: hard-wrapped prose (Markdown notes, plain-text
    books, mail, README files) would otherwise give one unit per line, cut mid-sentence.

    A break wraps when its line holds text that does not end a sentence or clause (. ! ? : ; but "e.g."
    and other abbreviations do not end one), is not a heading or table row, and the next line continues
    it: it is not blank, does not start a block (heading, list item, quote, table row, code fence), and
    either starts in lower case or, in a hard-wrapped text, was wrapped there (wrapped_at). Lines inside
    code fences stay lines.
    """
    if "\n" not in text:
        return set()
    lines = text.split("\n")
    width = wrap_width(lines)
    return {
        offset
        for offset, line, here, nxt in _text_line_pairs(lines)
        if not here.startswith(("#", "|"))
        and not _ends_clause(here)
        and not _STARTS_BLOCK.match(nxt)
        and (nxt[0].islower() or wrapped_at(line, nxt, width))
    }


def _text_line_pairs(lines: list[str]):
    """(offset of the break after it, line, line stripped, next line stripped) for each line that holds text
    and is followed by a line of text, outside code fences (the fence lines themselves left out)."""
    offset = -1
    fenced = False
    for line, following in zip(lines, lines[1:]):
        here, nxt = line.strip(), following.strip()
        offset += len(line) + 1
        if here.startswith(_FENCE):
            fenced = not fenced
        elif not fenced and here and nxt:
            yield offset, line, here, nxt


WRAP_FILL = 0.8
"""A line at least this share of the wrap width was wrapped (it did not end a paragraph early)."""


def _ends_clause(line: str) -> bool:
    """Whether a (stripped) line ends a sentence or clause: . ! ? : ; but not an abbreviation's full stop."""
    if not _ENDS_CLAUSE.search(line):
        return False
    word = _LAST_WORD.search(line)
    return not (word and line.rstrip("\"'”’)]").endswith(".") and word.group(1).lower().rstrip(".") in _ABBREVIATIONS)


def wrapped_at(line: str, following: str, width: int | None) -> bool:
    """Whether a text wrapped at width (wrap_width) broke this line only for want of room: the line is
    filled to WRAP_FILL of the width, or the next line's first word would not have fitted on it (a
    long word or code span goes whole to the next line, leaving this one short)."""
    if width is None:
        return False
    used = len(line.rstrip())
    following = following.strip()
    closing = following.find("`", 1) if following.startswith("`") else -1
    first = (
        following[: closing + 1] if closing > 0 else following.split(maxsplit=1)[0] if following else ""
    )  # a code span moves whole
    return used >= WRAP_FILL * width or used + 1 + len(first) > width


def wrap_width(lines: list[str]) -> int | None:
    """The column a hard-wrapped text was wrapped at, or None when its lines are not wrapped.

    Counted over the lines that a next line of text follows (a paragraph's last line is short by nature;
    headings, list items, table rows and code are not prose): at least 3 of them, and half of them fill
    80-100 % of their 90th-percentile width, itself 40-160 columns.
    """
    widths = [
        len(line.rstrip())
        for _, line, here, nxt in _text_line_pairs(lines)
        if not _STARTS_BLOCK.match(here) and not _STARTS_BLOCK.match(nxt)
    ]
    if len(widths) < 3:
        return None
    widths.sort()
    width = widths[int(0.9 * (len(widths) - 1))]
    if not 40 <= width <= 160:
        return None
    filled = sum(1 for w in widths if WRAP_FILL * width <= w <= width)
    return width if filled >= 0.5 * len(widths) else None


def _append_trimmed(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))


class LineIndex:
    """Maps character offsets to 1-based line numbers in O(log n)."""

    def __init__(self, text: str) -> None:
        self._breaks = [m.start() for m in re.finditer("\n", text)]

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self._breaks, offset - 1) + 1 if offset > 0 else 1


def _split_long(
    span: tuple[int, int], offsets: list[tuple[int, int]], limit: int, text: str
) -> list[tuple[int, int, int]]:
    """Cut an over-long sentence at wordpiece boundaries (preferring whitespace) into <= limit pieces."""
    start, _ = span
    pieces: list[tuple[int, int, int]] = []
    i = 0
    n = len(offsets)
    while i < n:
        j = min(i + limit, n)
        if j < n:
            # back off to a boundary where whitespace separates the wordpieces, if one is near
            k = j
            while k > i + limit // 2 and offsets[k][0] == offsets[k - 1][1]:
                k -= 1
            if k > i + limit // 2:
                j = k
        piece_start = start + offsets[i][0]
        piece_end = start + offsets[j - 1][1]
        pieces.append((piece_start, piece_end, j - i))
        i = j
    return pieces


@dataclass(frozen=True)
class Unit:
    """A sentence (or a piece of an over-long one): the span that gets its own embedding."""

    char_start: int
    char_end: int
    n_tokens: int


@dataclass(frozen=True)
class Segmentation:
    """A document cut into embedding units and the display chunks made of them."""

    units: list[Unit]
    chunks: list[Chunk]
    members: list[list[int]]
    """members[i]: indexes into units of the units that overlap chunks[i]."""


def segment_text(text: str, tokenizer: Tokenizer, settings: ChunkSettings, model_limit: int) -> Segmentation:
    """Cut one document into sentence units and chunks of whole sentences, none over the model's limit."""
    return segment_texts([text], tokenizer, settings, model_limit)[0]


def segment_texts(
    texts: Sequence[str], tokenizer: Tokenizer, settings: ChunkSettings, model_limit: int
) -> list[Segmentation]:
    """segment_text for many documents, with one tokenizer call for all their sentences (and one to re-check)."""
    limit = min(settings.max_tokens, model_limit)
    sentences = [split_sentences(text) for text in texts]
    flat = _offsets(tokenizer, [text[s:e] for text, spans in zip(texts, sentences) for s, e in spans])
    joins_on_whitespace = getattr(tokenizer, "joins_on_whitespace", False)
    plans: list[_Plan] = []
    at = 0
    for text, spans in zip(texts, sentences):
        plans.append(_plan(text, spans, flat[at : at + len(spans)], limit, settings, joins_on_whitespace))
        at += len(spans)
    recheck = [(d, g) for d, plan in enumerate(plans) for g in plan.recheck]
    verified = dict(zip(recheck, _offsets(tokenizer, [texts[d][slice(*plans[d].span(g))] for d, g in recheck])))
    return [
        _segmentation(text, plan.units, plan.groups, {g: verified[d, g] for g in plan.recheck}, limit, settings)
        for d, (text, plan) in enumerate(zip(texts, plans))
    ]


@dataclass(frozen=True)
class _Plan:
    """One document's units (start, end, n_tokens), their packing into chunks, and the chunks to re-tokenise."""

    units: list[tuple[int, int, int]]
    groups: list[tuple[int, int]]
    recheck: list[int]

    def span(self, group: int) -> tuple[int, int]:
        """(start, end) of a group's joined text."""
        a, b = self.groups[group]
        return self.units[a][0], self.units[b - 1][1]


def _plan(
    text: str,
    spans: list[tuple[int, int]],
    offsets: list[list[tuple[int, int]]],
    limit: int,
    settings: ChunkSettings,
    joins_on_whitespace: bool,
) -> _Plan:
    units: list[tuple[int, int, int]] = []
    pieces: set[int] = set()  # units cut from an over-long sentence: counted in context, maybe inside a word
    for span, offs in zip(spans, offsets):
        if not offs:
            continue  # nothing the model would see (e.g. only control characters)
        if len(offs) <= limit:
            units.append((span[0], span[1], len(offs)))
        else:
            cut = _split_long(span, offs, limit, text)
            pieces.update(range(len(units), len(units) + len(cut)))
            units.extend(cut)
    groups = _pack(units, limit, min(settings.overlap_tokens, limit // 2))
    # A joined text has exactly its parts' wordpieces when every junction is plain whitespace and
    # the tokenizer splits words there (BERT's pre-tokenizer does); anything else is re-checked.
    recheck = [
        g
        for g, (a, b) in enumerate(groups)
        if not (
            joins_on_whitespace
            and not pieces.intersection(range(a, b))
            and all(_whitespace_gap(text, units[i - 1][1], units[i][0]) for i in range(a + 1, b))
        )
    ]
    return _Plan(units, groups, recheck)


def _offsets(tokenizer: Tokenizer, texts: list[str]) -> list[list[tuple[int, int]]]:
    return tokenizer.offsets(texts) if texts else []


def _whitespace_gap(text: str, end: int, start: int) -> bool:
    """Whether text[end:start] is non-empty and only what BERT's normaliser treats as whitespace."""
    return start > end and all(ch in " \t\n\r" or unicodedata.category(ch) == "Zs" for ch in text[end:start])


def _segmentation(
    text: str,
    units: list[tuple[int, int, int]],
    groups: list[tuple[int, int]],
    verified: dict[int, list[tuple[int, int]]],
    limit: int,
    settings: ChunkSettings,
) -> Segmentation:
    """Chunks from packed groups of units; a re-tokenised group over the limit is cut again."""
    if not units:
        return Segmentation([], [], [])
    lines = LineIndex(text)
    chunks: list[Chunk] = []
    for g, (a, b) in enumerate(groups):
        s, e = units[a][0], units[b - 1][1]
        offs = verified.get(g)
        if offs is None:
            parts = [(s, e, sum(u[2] for u in units[a:b]))]
        else:
            parts = [(s, e, len(offs))] if len(offs) <= limit else _split_long((s, e), offs, limit, text)
        for ps, pe, pn in parts:
            chunks.append(
                Chunk(
                    ordinal=len(chunks),
                    char_start=ps,
                    char_end=pe,
                    line_start=lines.line_of(ps),
                    line_end=lines.line_of(pe - 1),
                    n_tokens=pn,
                    text=text[ps:pe],
                )
            )
    if settings.dense_unit == "chunk":
        unit_list = [Unit(c.char_start, c.char_end, c.n_tokens) for c in chunks]
        return Segmentation(unit_list, chunks, [[i] for i in range(len(chunks))])
    unit_list = [Unit(s, e, n) for s, e, n in units]
    starts = [u.char_start for u in unit_list]
    members = []
    for chunk in chunks:
        # units are sorted and disjoint: the overlapping ones form one contiguous run
        first = max(0, bisect.bisect_right(starts, chunk.char_start) - 1)
        last = bisect.bisect_left(starts, chunk.char_end)
        members.append([i for i in range(first, last) if unit_list[i].char_end > chunk.char_start])
    return Segmentation(unit_list, chunks, members)


def chunk_text(text: str, tokenizer: Tokenizer, settings: ChunkSettings, model_limit: int) -> list[Chunk]:
    """Cut one document into chunks of whole sentences, none over the model's wordpiece limit."""
    return segment_text(text, tokenizer, settings, model_limit).chunks


def _pack(units: list[tuple[int, int, int]], limit: int, overlap: int) -> list[tuple[int, int]]:
    """Greedy packing of units into [a, b) groups within the limit, repeating trailing units as overlap."""
    groups: list[tuple[int, int]] = []
    a = 0
    n = len(units)
    while a < n:
        total = 0
        b = a
        while b < n and total + units[b][2] <= limit:
            total += units[b][2]
            b += 1
        if b == a:
            b = a + 1  # a unit is never above the limit, but guard anyway
        groups.append((a, b))
        if b >= n:
            break
        # next group starts with whole trailing units worth <= overlap tokens
        back = b
        kept = 0
        # ... and only as much as still lets unit b in, else the group would repeat old text only
        budget = min(overlap, limit - units[b][2])
        while back - 1 > a and kept + units[back - 1][2] <= budget:
            kept += units[back - 1][2]
            back -= 1
        a = back
    return groups
