"""Holds a floor on answer quality over seeds/ with the real model: hit@k, MRR and abstention.

The current figures are in docs/benchmarks.md ("Accuracy").
"""

from __future__ import annotations

import pytest
from conftest import DATA

from qa.evaluate import evaluate_engine
from qa.questions import load_questions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reports(seed_engine):
    return {
        name: evaluate_engine(seed_engine, load_questions(DATA / f"{name}_questions.jsonl"), k=5)
        for name in ("seed", "heldout")
    }


def test_question_sets_are_big_enough():
    for name, answerable, unanswerable in (("seed", 40, 5), ("heldout", 40, 5)):
        questions = load_questions(DATA / f"{name}_questions.jsonl")
        assert sum(q.answerable for q in questions) >= answerable
        assert sum(not q.answerable for q in questions) >= unanswerable


@pytest.mark.parametrize(
    "name, hit1, mrr, hit5",
    [
        ("seed", 0.80, 0.85, 0.92),
        ("heldout", 0.875, 0.93, 1.00),
    ],
)
def test_retrieval_floor(reports, name, hit1, mrr, hit5):
    report = reports[name]
    assert report.hit_at[1] >= hit1, report.hit_at
    assert report.mrr >= mrr, report.mrr
    assert report.hit_at[5] >= hit5, report.hit_at


def test_off_topic_questions_are_flagged(seed_engine):
    for question in (
        "What is the capital of Australia?",
        "Who won the 2015 Rugby World Cup?",
        "How do I bake sourdough bread?",
    ):
        answer = seed_engine.ask(question)
        assert not answer.found, (question, answer.best_guess)
        assert answer.passages, "nearest passages are still offered"


@pytest.mark.parametrize("name, max_wrongly_flagged", [("seed", 13), ("heldout", 12)])
def test_answerable_questions_rarely_flagged(reports, name, max_wrongly_flagged):
    """A floor under today's answer model (seed 13 of 72, held-out 12 of 40 refused: its confidence, calibrated
    on SQuAD, transfers to these news articles only roughly; docs/design.md)."""
    report = reports[name]
    assert report.answerable_flagged <= max_wrongly_flagged, [
        r.question.question for r in report.results if r.question.answerable and r.abstained
    ]
    # every answer that is given cites a sentence from one of its passages
    for result in report.results:
        if result.answer.found:
            span = result.answer.answer.citation
            assert any(
                p.citation.source == span.source
                and p.citation.char_start <= span.char_start
                and span.char_end <= p.citation.char_end
                for p in result.answer.passages
            )


@pytest.mark.parametrize("name, min_flagged", [("seed", 14), ("heldout", 5)])
def test_unanswerable_questions_flagged(reports, name, min_flagged):
    """Near-miss questions (about the seeds' people and events, asking what they do not say) are flagged: a
    floor under today's answer model (seed 14 of 27, held-out 5 of 10)."""
    report = reports[name]
    assert report.unanswerable_flagged >= min_flagged, [
        r.question.question for r in report.results if not r.question.answerable and not r.abstained
    ]


def test_who_is_question_is_answered_by_the_sentence_naming_the_person(seed_engine):
    answer = seed_engine.ask("Who is Mark Toner?")
    assert answer.found, answer.best_guess
    assert "State Department spokesman Mark Toner" in answer.answer.citation.text


def test_a_headline_is_not_quoted_when_a_sentence_says_it(seed_engine):
    """ "Hollande to meet Obama on Russian cooperation against DAESH" (a headline) once answered where they met."""
    answer = seed_engine.ask("Where did Obama and Hollande hold their meeting?")
    assert answer.found and "at the White House" in answer.answer.citation.text, answer.answer.citation.text
