"""Answer: choose the sentence of the top passages that answers the question, with a confidence.

One function, answer_span, is the stage. It pre-selects the sentences of the top passages closest to
the question (cosine plus IDF-weighted word coverage), lets the answer model (qa/reader.py) read each
with the question, takes the sentence with the highest logit, and turns that logit with three retrieval
features into a confidence by a logistic fitted on SQuAD's training-side articles (training/calibrate.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.lexical import analyze
from qa.extract import SentenceCandidate, highlight_spans, with_what_follows_a_heading
from qa.reader import MODEL_DIR, AnswerModel
from qa.results import Passage

CALIBRATION_FILE = MODEL_DIR / "calibration.json"
FEATURES = ("logit", "cosine", "coverage", "fused")
"""What the confidence reads, per chosen sentence: the answer model's logit, the sentence's cosine to the
question, the IDF-weighted share of the question's words it holds, and its passage's fused score."""


@dataclass(frozen=True)
class Calibration:
    """confidence = logistic(bias + sum(weights[f] * feature f)); answered when confidence >= threshold."""

    bias: float = 0.0
    weights: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0)
    threshold: float = 0.5
    choice: tuple[float, float] = (0.0, 0.0)
    """The answer sentence is the one with the highest logit + choice[0] * cosine + choice[1] * coverage."""
    rerank: float = 0.0
    """The passages the model read are re-ranked by their ranking score + rerank x their best sentence's logit."""
    preselect: int = 10
    """Sentences the answer model reads per question (the closest by cosine + coverage)."""

    @classmethod
    def bundled(cls, path: Path = CALIBRATION_FILE) -> Calibration:
        """The calibration shipped beside the answer model (the defaults when it is missing)."""
        try:
            data = json.loads(path.read_text())
            weights = tuple(float(w) for w in data["weights"])
            choice = tuple(float(w) for w in data.get("choice", (0.0, 0.0)))
            rerank = float(data.get("rerank", 0.0))
            return cls(float(data["bias"]), weights, float(data["threshold"]), (choice[0], choice[1]), rerank)
        except (OSError, ValueError, KeyError, TypeError):
            return cls()

    def confidence(self, features: Sequence[float]) -> float:
        return logistic(self.bias + sum(w * f for w, f in zip(self.weights, features)))


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
    model: AnswerModel | None
    """None: no answer model (fast tests with a fake embedder); the logit is then the cosine."""
    calibration: Calibration = field(default_factory=Calibration)


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
    features: tuple[float, ...] = ()
    """The confidence's inputs, in FEATURES order."""
    read: tuple[ReadSentence, ...] = ()
    """Every sentence the answer model read, with its features (for calibration and for the curious)."""
    read_passages: tuple[Passage, ...] = ()
    """The passages the sentences come from (ReadSentence.passage_index indexes this)."""


@dataclass(frozen=True)
class ReadSentence:
    """One sentence the answer model read: where it is and what the choice and the confidence see."""

    passage_index: int
    char_start: int
    char_end: int
    logit: float
    cosine: float
    coverage: float


def logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


def coverage(question_terms: Sequence[str], sentence: str, idf: dict[str, float]) -> float:
    """IDF-weighted share of the question's analysed terms that the sentence holds."""
    if not question_terms:
        return 0.0
    present = set(analyze(sentence))
    total = sum(idf.get(t, 1.0) for t in question_terms)
    return sum(idf.get(t, 1.0) for t in question_terms if t in present) / total if total else 0.0


def answer_span(
    question: str, qvec: np.ndarray, readings: Sequence[Reading], context: AnswerContext
) -> AnswerChoice | None:
    """The best answering span among the readings' sentences (None when they have none)."""
    items = [(p, s) for p, reading in enumerate(readings) for s in reading.sentences]
    if not items:
        return None
    terms = analyze(question)
    idf = context.idf(terms)
    cosines = np.stack([s.vector for _, s in items]) @ qvec
    covers = np.array([coverage(terms, s.text, idf) for _, s in items])
    near = np.argsort(-(cosines + 0.5 * covers), kind="stable")[: context.calibration.preselect]
    if context.model is not None:
        logits = context.model.logits(question, [items[i][1].text for i in near])
    else:
        logits = cosines[near]
    w_cosine, w_coverage = context.calibration.choice
    chosen = int(np.argmax(logits + w_cosine * cosines[near] + w_coverage * covers[near]))
    best = int(near[chosen])
    p_index, sentence = items[best]
    passage = readings[p_index].passage
    features = (float(logits[chosen]), float(cosines[best]), float(covers[best]), float(passage.scores.fused))
    read = tuple(
        ReadSentence(
            items[i][0], items[i][1].char_start, items[i][1].char_end, float(lg), float(cosines[i]), float(covers[i])
        )
        for i, lg in zip(near, logits)
    )
    cited = passage.citation
    candidates = [SentenceCandidate(p, s.char_start, s.char_end, s.text) for p, s in items]
    top = with_what_follows_a_heading(candidates[best], candidates, cited.char_start, cited.text)
    text = cited.text[top.char_start - cited.char_start : top.char_end - cited.char_start]
    return AnswerChoice(
        passage=passage,
        char_start=top.char_start,
        char_end=top.char_end,
        confidence=context.calibration.confidence(features),
        highlights=highlight_spans(question, text),
        features=features,
        read=read,
        read_passages=tuple(r.passage for r in readings),
    )
