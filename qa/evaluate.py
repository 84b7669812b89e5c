"""Question-set metrics: hit@k, MRR and abstention accuracy, computed from real engine answers."""

from __future__ import annotations

from dataclasses import dataclass, field

from index.normalize import squash
from qa.questions import Question, covers_answer
from qa.results import Answer


@dataclass(frozen=True)
class QuestionResult:
    """How one question went."""

    question: Question
    answer: Answer
    first_hit_rank: int | None
    """Rank of the first passage (or its also_in duplicate) that contains the evidence; None if missed."""

    @property
    def abstained(self) -> bool:
        return not self.answer.found

    @property
    def answer_correct(self) -> bool:
        """The best sentence (shown or not) overlaps an evidence span in the right source."""
        guess = self.answer.best_guess
        if guess is None:
            return False
        sentence = squash(guess.citation.text)
        return any(
            guess.citation.source == ev.source and (squash(ev.text) in sentence or sentence in squash(ev.text))
            for ev in self.question.evidence
        )


@dataclass(frozen=True)
class QuestionSetReport:
    """Aggregate figures over a question set."""

    n_answerable: int
    n_unanswerable: int
    hit_at: dict[int, float]
    mrr: float
    unanswerable_flagged: int
    answerable_flagged: int
    answer_accuracy: float = 0.0
    """Share of answerable questions whose best sentence contains (or lies within) the evidence."""
    results: tuple[QuestionResult, ...] = field(repr=False, default=())

    @property
    def abstention_accuracy(self) -> float:
        total = self.n_answerable + self.n_unanswerable
        correct = self.unanswerable_flagged + (self.n_answerable - self.answerable_flagged)
        return correct / total if total else 0.0


def first_hit(answer: Answer, question: Question) -> int | None:
    for passage in answer.passages:
        cites = (passage.citation, *passage.also_in)
        if any(covers_answer(question, c.source, c.char_start, c.char_end, c.text) for c in cites):
            return passage.rank
    return None


def evaluate_answers(pairs: list[tuple[Question, Answer]], ks: tuple[int, ...] = (1, 3, 5)) -> QuestionSetReport:
    results = tuple(QuestionResult(q, a, first_hit(a, q) if q.answerable else None) for q, a in pairs)
    answerable = [r for r in results if r.question.answerable]
    unanswerable = [r for r in results if not r.question.answerable]
    n = len(answerable) or 1
    hit_at = {k: sum(1 for r in answerable if r.first_hit_rank is not None and r.first_hit_rank <= k) / n for k in ks}
    mrr = sum(1.0 / r.first_hit_rank for r in answerable if r.first_hit_rank) / n
    return QuestionSetReport(
        n_answerable=len(answerable),
        n_unanswerable=len(unanswerable),
        hit_at=hit_at,
        mrr=mrr,
        unanswerable_flagged=sum(1 for r in unanswerable if r.abstained),
        answerable_flagged=sum(1 for r in answerable if r.abstained),
        answer_accuracy=sum(1 for r in answerable if r.answer_correct) / n,
        results=results,
    )


def evaluate_engine(
    engine, questions: list[Question], k: int = 5, mode: str | None = None, ks: tuple[int, ...] = (1, 3, 5)
) -> QuestionSetReport:
    return evaluate_answers([(q, engine.ask(q.question, k=k, mode=mode)) for q in questions], ks)
