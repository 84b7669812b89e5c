"""Picking the best answer sentence from the top passages and scoring how sure we are."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from index.chunker import split_sentences
from index.lexical import analyze
from index.normalize import fold

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


@dataclass(frozen=True)
class Calibration:
    """Weights of the confidence model: logistic over sentence features; fitted on the seed questions."""

    bias: float = -6.0
    w_dense: float = 9.0
    w_coverage: float = 3.0
    w_passage: float = 1.0
    threshold: float = 0.5


@dataclass(frozen=True)
class SentenceCandidate:
    """One sentence of a top passage with the features the confidence model uses."""

    passage_index: int
    char_start: int
    char_end: int
    text: str
    dense: float
    coverage: float
    passage_dense: float
    score: float
    confidence: float


def split_passage(text: str, offset: int) -> list[tuple[int, int, str]]:
    return [(offset + s, offset + e, text[s:e]) for s, e in split_sentences(text)]


def term_coverage(question_terms: list[str], sentence: str, idf: dict[str, float]) -> float:
    """IDF-weighted share of the question's terms that occur in the sentence."""
    if not question_terms:
        return 0.0
    present = set(analyze(sentence))
    total = sum(idf.get(t, 1.0) for t in question_terms)
    hit = sum(idf.get(t, 1.0) for t in question_terms if t in present)
    return hit / total if total else 0.0


def highlight_spans(question: str, sentence: str) -> tuple[tuple[int, int], ...]:
    """Character spans of words in the sentence whose stems occur in the question."""
    wanted = set(analyze(question))
    spans = []
    folded = fold(sentence)
    for match in _WORD.finditer(folded):
        terms = analyze(match.group())
        if terms and terms[0] in wanted:
            spans.append(match.span())
    return tuple(spans)


def logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def score_sentences(
    question: str,
    question_vec: np.ndarray,
    passages: list[tuple[int, str, float]],
    embed,
    idf: dict[str, float],
    calibration: Calibration,
) -> list[SentenceCandidate]:
    """Rank the sentences of passages [(char_start, text, passage_dense)] for the question."""
    items: list[tuple[int, int, int, str, float]] = []
    for p_index, (offset, text, p_dense) in enumerate(passages):
        for start, end, sentence in split_passage(text, offset):
            if len(sentence) >= 3:
                items.append((p_index, start, end, sentence, p_dense))
    if not items:
        return []
    vectors = embed([fold(s) for _, _, _, s, _ in items])
    sims = vectors @ question_vec
    q_terms = analyze(question)
    out = []
    for (p_index, start, end, sentence, p_dense), sim in zip(items, sims):
        coverage = term_coverage(q_terms, sentence, idf)
        z = (
            calibration.bias
            + calibration.w_dense * float(sim)
            + calibration.w_coverage * coverage
            + calibration.w_passage * float(p_dense)
        )
        out.append(
            SentenceCandidate(
                passage_index=p_index,
                char_start=start,
                char_end=end,
                text=sentence,
                dense=float(sim),
                coverage=coverage,
                passage_dense=float(p_dense),
                score=z,
                confidence=logistic(z),
            )
        )
    out.sort(key=lambda c: -c.score)
    return out
