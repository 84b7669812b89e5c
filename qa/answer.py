"""Answer: choose the sentence of the top passages that answers the question, with a confidence.

One function, answer_span, is the stage: it sees the question and the top passages with their
sentences, and returns where the answer is. Today it ranks sentences with hand-written features
(qa/extract.py) and scores the choice with qa/verify.py; a learned answer model replaces it here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from index.lexical import analyze
from qa.extract import Calibration, choose_answer, highlight_spans, score_sentences, with_what_follows_a_heading
from qa.results import Passage
from qa.verify import WordVectors, expected_answer_type, support


@dataclass(frozen=True)
class Sentence:
    """A sentence unit of a passage: its span in the document's text, its text and its vector."""

    char_start: int
    char_end: int
    text: str
    vector: np.ndarray


@dataclass(frozen=True)
class Reading:
    """A top passage as the answer stage reads it: its citation and scores, and its sentences in order."""

    passage: Passage
    sentences: tuple[Sentence, ...]


@dataclass(frozen=True)
class AnswerContext:
    """What answering may consult besides the passages."""

    idf: Callable[[Sequence[str]], dict[str, float]]
    """The IDF of analysed terms over the index's sentences."""
    word_vectors: WordVectors
    calibration: Calibration


@dataclass(frozen=True)
class AnswerChoice:
    """Where the answer is: a span of one of the passages read, and how sure it is."""

    passage: Passage
    char_start: int
    char_end: int
    confidence: float
    """Calibrated, in [0, 1]; under the threshold the answer counts as not found."""
    highlights: tuple[tuple[int, int], ...]
    """(start, end) offsets, within the span's text, of words that match the question."""


def answer_span(
    question: str, qvec: np.ndarray, readings: Sequence[Reading], context: AnswerContext
) -> AnswerChoice | None:
    """The best answering span among the readings' sentences (None when they have none)."""
    calibration = context.calibration
    idf = context.idf(analyze(question))
    items = [
        (p_index, s.char_start, s.char_end, s.text, s.vector)
        for p_index, reading in enumerate(readings)
        for s in reading.sentences
    ]
    scores = [r.passage.scores.score for r in readings]
    scored = score_sentences(question, qvec, items, idf, calibration, scores)
    contexts = [r.passage.citation.text for r in readings]
    top = choose_answer(question, scored, expected_answer_type(question), calibration.type_window, contexts)
    if top is None:
        return None
    passage = readings[top.passage_index].passage
    cited = passage.citation
    top = with_what_follows_a_heading(top, scored, cited.char_start, cited.text)
    evidence = support(question, top.text, top.dense, context.idf, context.word_vectors, cited.text)
    text = cited.text[top.char_start - cited.char_start : top.char_end - cited.char_start]
    return AnswerChoice(
        passage=passage,
        char_start=top.char_start,
        char_end=top.char_end,
        confidence=calibration.confidence(evidence),
        highlights=highlight_spans(question, text),
    )
