"""Picking the best answer sentence from the top passages and scoring how sure we are."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from index.lexical import analyze
from index.normalize import WORD, fold
from qa.aliases import terms_present
from qa.verify import Support, has_answer_type, place_elsewhere


@dataclass(frozen=True)
class Calibration:
    """The confidence model: a logistic over features of the chosen answer sentence (qa/verify.py).

    confidence = logistic(bias + w_dense * cosine + w_coverage * key-word coverage + w_type_missing * [no answer of
    the asked-for kind]). Fitted on tests/data/seed_questions.jsonl (answerable vs unanswerable, unanswerable
    questions weighted 1.5; see docs/design.md, "The answer model"). The passage score and the
    weakest-word and missing-name features added nothing on the seed set once these three were known.
    """

    bias: float = -2.87
    w_dense: float = 5.15
    """Weight of the sentence's cosine to the question."""
    w_coverage: float = 1.64
    """Weight of the IDF-weighted coverage of the question's content words (word vectors for paraphrases)."""
    w_type_missing: float = -4.27
    """Added when the question wants a number, date, time, duration, age, sum or statement the sentence lacks."""
    w_rank_coverage: float = 0.3
    """Weight of IDF-weighted term coverage when choosing among sentences (not in the confidence)."""
    w_rank_passage: float = 0.2
    """Weight of the holding passage's ranking score (fused, plus any late-interaction bonus) when choosing among
    sentences."""
    w_rank_fragment: float = 0.1
    """Subtracted when choosing among sentences from a unit that does not end a sentence (a headline,
    a caption, a byline): it states a topic rather than a fact."""
    type_window: int = 6
    """How many of the best-ranked sentences are searched for one holding the kind of answer the question wants."""
    threshold: float = 0.5

    def confidence(self, support: Support) -> float:
        return logistic(
            self.bias
            + self.w_dense * support.dense
            + self.w_coverage * support.coverage
            + self.w_type_missing * float(support.type_missing)
        )


@dataclass(frozen=True)
class SentenceCandidate:
    """One sentence of a top passage with the features the ranking uses."""

    passage_index: int
    char_start: int
    char_end: int
    text: str
    dense: float
    coverage: float
    score: float


def term_coverage(question_terms: list[str], sentence: str, idf: dict[str, float]) -> float:
    """IDF-weighted share of the question's terms that occur in the sentence."""
    if not question_terms:
        return 0.0
    present = terms_present(question_terms, sentence)
    total = sum(idf.get(t, 1.0) for t in question_terms)
    hit = sum(idf.get(t, 1.0) for t in question_terms if t in present)
    return hit / total if total else 0.0


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


def logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def score_sentences(
    question: str,
    question_vec: np.ndarray,
    items: list[tuple[int, int, int, str, np.ndarray]],
    idf: dict[str, float],
    calibration: Calibration,
    passage_scores: list[float] | None = None,
) -> list[SentenceCandidate]:
    """Rank sentences [(passage_index, char_start, char_end, text, vector)] of the top passages."""
    if not items:
        return []
    sims = np.stack([v for *_, v in items]) @ question_vec
    q_terms = analyze(question)
    out = []
    for (p_index, start, end, sentence, _), sim in zip(items, sims):
        coverage = term_coverage(q_terms, sentence, idf)
        out.append(
            SentenceCandidate(
                passage_index=p_index,
                char_start=start,
                char_end=end,
                text=sentence,
                dense=float(sim),
                coverage=coverage,
                score=float(sim)
                - calibration.w_rank_fragment * float(is_fragment(sentence))
                + calibration.w_rank_coverage * coverage
                + calibration.w_rank_passage * (passage_scores[p_index] if passage_scores else 0.0),
            )
        )
    out.sort(key=lambda c: -c.score)
    return out


_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]]*\s*$")


def is_fragment(text: str) -> bool:
    """Whether a unit lacks a sentence's final punctuation (headlines, captions, bylines, list items)."""
    return not _SENTENCE_END.search(text)


def choose_answer(
    question: str, ranked: list[SentenceCandidate], kind: str | None, window: int, contexts: Sequence[str] = ()
) -> SentenceCandidate | None:
    """The best-ranked sentence that holds the kind of answer the question wants and does not put the place it asks
    about elsewhere (verify.place_elsewhere), among the first `window`;
    the best-ranked one when none does (its confidence then pays for the missing answer). contexts[i] is the
    text of passage i, where the question's names may be found when the sentence does not repeat them."""
    if not ranked:
        return None
    for candidate in ranked[:window]:
        context = contexts[candidate.passage_index] if contexts else ""
        if has_answer_type(kind, candidate.text, question, context) and not place_elsewhere(question, candidate.text):
            return candidate
    return ranked[0]


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
