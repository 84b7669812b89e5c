"""Answer metrics of a question set: answer sentence right, abstention, confidence ROC AUC, overall correct.

Pure functions over per-question outcomes, so they are tested by hand and used by `qa bench` alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from qa.questions import Question, covers_answer
from qa.results import Answer, AnswerSpan


@dataclass(frozen=True)
class AnswerOutcome:
    """What the answer stage did with one question."""

    answerable: bool
    """The documents answer it (the question file's evidence), or it counts as unanswerable."""
    given: bool
    """An answer was given (False: 'not in the documents')."""
    right: bool
    """The given answer's sentence is right (False when none was given)."""
    best_right: bool
    """The best sentence is right, given or not (the sentence choice alone, whatever the threshold)."""
    confidence: float
    """The best sentence's confidence (0 when there is none)."""

    @property
    def correct(self) -> bool:
        """Answered with a right sentence, or correctly refused."""
        return self.right if self.answerable else not self.given


@dataclass(frozen=True)
class AnswerMetrics:
    """Answer figures over a set of outcomes; a share is None when its denominator is empty."""

    n_answerable: int
    n_unanswerable: int
    answer_right: float | None
    """Share of answerable questions answered with a right sentence."""
    best_sentence_right: float | None
    """Share of answerable questions whose best sentence is right, given or not."""
    unanswerable_flagged: float | None
    """Share of unanswerable questions answered 'not in the documents'."""
    answerable_refused: float | None
    """Share of answerable questions answered 'not in the documents'."""
    confidence_auc: float | None
    """ROC AUC of the confidence, answerable (positive) vs unanswerable; ties count half."""
    overall_correct: float | None
    """Share of all questions answered with a right sentence or correctly refused."""

    def to_json(self) -> dict:
        return {
            k: (round(v, 6) if isinstance(v, float) else v)
            for k, v in {
                "n_answerable": self.n_answerable,
                "n_unanswerable": self.n_unanswerable,
                "answer_right": self.answer_right,
                "best_sentence_right": self.best_sentence_right,
                "unanswerable_flagged": self.unanswerable_flagged,
                "answerable_refused": self.answerable_refused,
                "confidence_auc": self.confidence_auc,
                "overall_correct": self.overall_correct,
            }.items()
        }


def sentence_right(question: Question, span: AnswerSpan | None) -> bool:
    """The sentence comes from the question's article and covers a gold answer span (or, for a question
    without spans, contains an evidence text in its source, as a passage must)."""
    if span is None or not question.answerable:
        return False
    c = span.citation
    return covers_answer(question, c.source, c.char_start, c.char_end, c.text)


def answer_outcome(question: Question, answer: Answer) -> AnswerOutcome:
    """One question's outcome from the engine's Answer (qa/results.py)."""
    guess = answer.best_guess
    given = answer.found and answer.answer is not None
    return AnswerOutcome(
        answerable=question.answerable,
        given=given,
        right=given and sentence_right(question, answer.answer),
        best_right=sentence_right(question, guess),
        confidence=guess.confidence if guess is not None else 0.0,
    )


def roc_auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """P(a positive's score > a negative's) + half P(equal): the Mann-Whitney form of the ROC AUC.
    None when either side is empty."""
    if not positives or not negatives:
        return None
    # rank-sum with mid-ranks for ties: O(n log n)
    pooled = sorted([(s, 1) for s in positives] + [(s, 0) for s in negatives], key=lambda item: item[0])
    rank_sum = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j < len(pooled) and pooled[j][0] == pooled[i][0]:
            j += 1
        mid_rank = (i + 1 + j) / 2  # ranks i+1..j share their mean
        rank_sum += mid_rank * sum(label for _, label in pooled[i:j])
        i = j
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _share(count: int, total: int) -> float | None:
    return count / total if total else None


def answer_metrics(outcomes: Iterable[AnswerOutcome]) -> AnswerMetrics:
    outcomes = list(outcomes)
    answerable = [o for o in outcomes if o.answerable]
    unanswerable = [o for o in outcomes if not o.answerable]
    return AnswerMetrics(
        n_answerable=len(answerable),
        n_unanswerable=len(unanswerable),
        answer_right=_share(sum(o.right for o in answerable), len(answerable)),
        best_sentence_right=_share(sum(o.best_right for o in answerable), len(answerable)),
        unanswerable_flagged=_share(sum(not o.given for o in unanswerable), len(unanswerable)),
        answerable_refused=_share(sum(not o.given for o in answerable), len(answerable)),
        confidence_auc=roc_auc([o.confidence for o in answerable], [o.confidence for o in unanswerable]),
        overall_correct=_share(sum(o.correct for o in outcomes), len(outcomes)),
    )
