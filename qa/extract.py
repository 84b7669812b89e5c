"""What the answer stage shows around its choice: the question's words highlighted, and a Markdown heading
carried on to the sentence under it."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

from index.lexical import analyze
from index.normalize import WORD, fold


@dataclass(frozen=True)
class SentenceCandidate:
    """One sentence of a top passage: which passage (its index among those read), its span and its text."""

    passage_index: int
    char_start: int
    char_end: int
    text: str


def highlight_spans(question: str, sentence: str) -> tuple[tuple[int, int], ...]:
    """Character spans of words in the sentence whose stems occur in the question."""
    wanted = set(analyze(question))
    spans = []
    folded = fold(sentence)
    for match in WORD.finditer(folded):
        if _first_term(match.group()) in wanted:
            spans.append(match.span())
    return tuple(spans)


@lru_cache(maxsize=65536)
def _first_term(word: str) -> str | None:
    """The BM25 term of one word (None for a stop word); words recur, so this is remembered."""
    terms = analyze(word)
    return terms[0] if terms else None


_HEADING = re.compile(r"#{1,6}[ \t]+\S")


def with_what_follows_a_heading(
    top: SentenceCandidate, ranked: list[SentenceCandidate], passage_start: int, passage_text: str
) -> SentenceCandidate:
    """A Markdown heading ("## Running the tests") names a topic; what answers is the sentence under it. When the
    chosen unit is one, the answer runs on to the end of the next sentence of its passage (none: it stays)."""
    if not _HEADING.match(top.text):
        return top
    after = [c for c in ranked if c.passage_index == top.passage_index and c.char_start >= top.char_end]
    if not after:
        return top
    end = min(after, key=lambda c: c.char_start).char_end
    return replace(top, char_end=end, text=passage_text[top.char_start - passage_start : end - passage_start])
