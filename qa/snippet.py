"""A one-line preview of a passage around what the question asks (keyword in context), with the
question's words marked: the part of a passage that made it rank, not its first line."""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass

from qa.sanitize import safe_text_and_spans

ELLIPSIS = "…"
_SPACE = re.compile(r"\s+")
_LEAD = 40
"""At most this many characters shown before the first matched word, to give it context."""


@dataclass(frozen=True)
class Snippet:
    """Printable one-line text (escape sequences left out, whitespace runs as one space) and the
    (start, end) offsets in it of the question's words."""

    text: str
    highlights: tuple[tuple[int, int], ...]


def snippet(text: str, question: str, width: int = 160, focus: tuple[int, int] | None = None) -> Snippet:
    """The `width`-character window of `text` that holds the most distinct words of the question.

    With `focus` (offsets into text, e.g. the answer sentence), the window starts where the focus
    does. A window that does not start or end with the passage is marked with "…" there.
    """
    from qa.extract import highlight_spans  # numpy and the stemmer: not on the chat's start-up path

    words = list(highlight_spans(question, text))
    marks = words + ([focus] if focus is not None else [])
    flat, moved = _flatten(text, marks)
    spans = moved[: len(words)]
    if focus is not None:
        start = moved[-1][0]
    elif spans:
        start = _sentence_start(flat, _densest(flat, spans, width), _LEAD)
    else:
        start = 0
    if len(flat) <= width:  # it all fits: shown whole
        start = 0
    elif start and len(flat) - start < width - 1:  # room left at the end: show more before instead
        start = flat.find(" ", len(flat) - (width - 1)) + 1
    end = min(len(flat), start + width - (1 if start else 0))
    if end < len(flat):
        cut = flat.rfind(" ", start, end)
        end = cut if cut > start + width // 2 else end - 1
    shown = (ELLIPSIS if start else "") + flat[start:end] + (ELLIPSIS if end < len(flat) else "")
    shift = (1 if start else 0) - start
    kept = tuple((a + shift, b + shift) for a, b in spans if start <= a and b <= end)
    return Snippet(shown, kept)


def _flatten(text: str, spans: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """safe_text(text) with each whitespace run made one space (none at the ends), and spans moved
    to cover the same characters."""
    shown, spans = safe_text_and_spans(text, spans)
    runs = [(m.start(), m.end(), 0 if m.start() == 0 or m.end() == len(shown) else 1) for m in _SPACE.finditer(shown)]
    starts = [a for a, _, _ in runs]
    removed = [0]
    for a, b, kept in runs:
        removed.append(removed[-1] + (b - a - kept))

    def moved(i: int) -> int:
        k = bisect_left(starts, i)  # runs starting before i
        if k and i < runs[k - 1][1]:  # inside a run: onto its space
            a, _, kept = runs[k - 1]
            return a - removed[k - 1] + min(i - a, kept)
        return i - removed[k]

    flat = "".join(shown[lo:hi] + (" " if kept else "") for lo, hi, kept in _gaps(runs, len(shown)))
    return flat, [(moved(a), moved(b)) for a, b in spans]


def _gaps(runs: list[tuple[int, int, int]], length: int):
    """(start, end, space after) of the text between whitespace runs."""
    previous = 0
    for a, b, kept in runs:
        yield previous, a, kept
        previous = b
    yield previous, length, 0


def _densest(flat: str, spans: list[tuple[int, int]], width: int) -> int:
    """Start of the first matched word from which the next `width` characters hold the most distinct words."""
    best, best_count = spans[0][0], 0
    for i, (a, _) in enumerate(spans):
        seen = {flat[s:e].casefold() for s, e in spans[i:] if e <= a + width - _LEAD}
        if len(seen) > best_count:
            best, best_count = a, len(seen)
    return best


def _sentence_start(flat: str, at: int, lead: int) -> int:
    """`at` moved back to the start of its sentence when that is at most `lead` characters back,
    else to a word start about `lead` characters back (0 when that reaches the passage's start)."""
    if at <= lead:
        return 0
    for i in range(at - 1, at - lead - 1, -1):
        if flat[i] == " " and flat[i - 1] in ".!?:;\"”'’":
            return i + 1
    space = flat.find(" ", at - lead, at)
    return space + 1 if space >= 0 else at
