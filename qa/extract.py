"""Picking the best answer sentence from the top passages and scoring how sure we are."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from index.lexical import analyze
from index.normalize import fold

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


@dataclass(frozen=True)
class Calibration:
    """The confidence model: logistic over the answer sentence's cosine to the question.

    Fitted on tests/data/seed_questions.jsonl (answerable vs unanswerable; see README): term coverage
    and passage scores added nothing once the sentence cosine was known, so they only rank sentences.
    The boundary (confidence 0.5) sits at cosine 0.40.
    """

    bias: float = -3.2
    w_dense: float = 8.0
    w_rank_coverage: float = 0.3
    """Weight of IDF-weighted term coverage when choosing among sentences (not in the confidence)."""
    w_rank_passage: float = 0.2
    """Weight of the holding passage's fused score when choosing among sentences."""
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
    score: float
    confidence: float


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
        z = calibration.bias + calibration.w_dense * float(sim)
        out.append(
            SentenceCandidate(
                passage_index=p_index,
                char_start=start,
                char_end=end,
                text=sentence,
                dense=float(sim),
                coverage=coverage,
                score=float(sim)
                + calibration.w_rank_coverage * coverage
                + calibration.w_rank_passage * (passage_scores[p_index] if passage_scores else 0.0),
                confidence=logistic(z),
            )
        )
    out.sort(key=lambda c: -c.score)
    return out
