"""Answer metrics of `qa bench` (qa/answer_metrics.py) on hand-made cases, and the question selection it uses."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.errors import InputError
from qa.answer_metrics import AnswerOutcome, answer_metrics, answer_outcome, roc_auc, sentence_right
from qa.bench import QuestionOutcome, answer_groups, question_run
from qa.metrics import evaluate_run
from qa.questions import Evidence, Question, article_names, load_questions, select_questions
from qa.results import Answer, AnswerSpan, Citation, Passage, Scores

# "The cat sat on the mat." at 100..123 of a.txt; the gold answer "the mat" at 115..122
SQUAD = Question("Where did the cat sit?", (Evidence("a.txt", "The cat sat on the mat."),), "a.txt", ((115, 122),))
UNANSWERABLE = Question("Where did the dog sit?", (), "a.txt")


def span(source: str, start: int, end: int, confidence: float = 0.9, text: str = "") -> AnswerSpan:
    return AnswerSpan(Citation(source, 3, 3, start, end, text or "x" * (end - start)), confidence, 1)


def answer(best: AnswerSpan | None, found: bool, passages: tuple[Passage, ...] = ()) -> Answer:
    return Answer("q", found, best if found else None, passages, best_guess=best)


def outcome(answerable: bool, given: bool, right: bool = False, confidence: float = 0.5) -> AnswerOutcome:
    return AnswerOutcome(answerable, given, right and given, right, confidence)


# -- ROC AUC ---------------------------------------------------------------------------------


def test_auc_of_separated_reversed_and_tied_scores():
    assert roc_auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert roc_auc([0.1, 0.2], [0.9, 0.8]) == 0.0
    assert roc_auc([0.5, 0.5], [0.5]) == 0.5
    # pairs: 0.9 beats both; each 0.5 ties the 0.5 (half) and beats 0.1 -> (2 + 1.5 + 1.5) / 6
    assert roc_auc([0.9, 0.5, 0.5], [0.5, 0.1]) == pytest.approx(5 / 6)
    assert roc_auc([], [0.3]) is None and roc_auc([0.3], []) is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([0.0, 0.1, 0.5, 0.5, 0.9, 1.0]), min_size=1, max_size=30),
    st.lists(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), min_size=1, max_size=30),
)
def test_auc_equals_the_share_of_pairs_ordered_right_with_ties_half(positives, negatives):
    pairs = [(p > n) + 0.5 * (p == n) for p in positives for n in negatives]
    assert roc_auc(positives, negatives) == pytest.approx(sum(pairs) / len(pairs))


# -- answer sentence right -------------------------------------------------------------------


def test_a_sentence_covering_a_gold_span_in_the_article_is_right():
    assert sentence_right(SQUAD, span("a.txt", 100, 123))
    assert sentence_right(SQUAD, span("a.txt", 115, 122))  # exactly the answer


def test_the_same_place_in_another_article_is_wrong():
    assert not sentence_right(SQUAD, span("b.txt", 100, 123))


def test_a_sentence_that_only_overlaps_the_span_is_wrong():
    assert not sentence_right(SQUAD, span("a.txt", 100, 118))  # "The cat sat on th"
    assert not sentence_right(SQUAD, span("a.txt", 118, 140))
    assert not sentence_right(SQUAD, span("a.txt", 0, 99))


def test_without_spans_the_sentence_must_hold_the_evidence_in_its_source():
    seed = Question("Who met?", (Evidence("s.txt", "Obama  met Hollande"),))
    assert sentence_right(seed, span("s.txt", 0, 40, text="On Tuesday Obama met Hollande in Washington."))
    assert not sentence_right(seed, span("t.txt", 0, 40, text="On Tuesday Obama met Hollande in Washington."))
    assert not sentence_right(seed, span("s.txt", 0, 10, text="Obama met"))  # part of the evidence only
    assert not sentence_right(seed, None)


def test_an_unanswerable_question_has_no_right_sentence():
    assert not sentence_right(UNANSWERABLE, span("a.txt", 100, 123))


# -- refused, flagged, overall ---------------------------------------------------------------


def test_outcome_separates_the_given_answer_from_the_best_guess():
    right = span("a.txt", 100, 123, confidence=0.3)
    refused = answer_outcome(SQUAD, answer(right, found=False))
    assert (refused.given, refused.right, refused.best_right, refused.confidence) == (False, False, True, 0.3)
    assert not refused.correct  # answerable and refused
    given_wrong = answer_outcome(SQUAD, answer(span("b.txt", 100, 123), found=True))
    assert given_wrong.given and not given_wrong.right and not given_wrong.correct
    flagged = answer_outcome(UNANSWERABLE, answer(span("a.txt", 100, 123, 0.2), found=False))
    assert flagged.correct and not flagged.answerable and flagged.confidence == 0.2
    nothing = answer_outcome(UNANSWERABLE, answer(None, found=False))
    assert nothing.confidence == 0.0 and nothing.correct


def test_refused_counts_answerable_ones_and_flagged_counts_unanswerable_ones():
    outcomes = [
        outcome(True, given=True, right=True, confidence=0.9),  # right
        outcome(True, given=True, right=False, confidence=0.8),  # answered, wrong sentence
        outcome(True, given=False, right=True, confidence=0.4),  # refused (its best guess was right)
        outcome(False, given=False, confidence=0.1),  # flagged
        outcome(False, given=True, confidence=0.85),  # answered an unanswerable one
    ]
    m = answer_metrics(outcomes)
    assert (m.n_answerable, m.n_unanswerable) == (3, 2)
    assert m.answer_right == pytest.approx(1 / 3)
    assert m.best_sentence_right == pytest.approx(2 / 3)
    assert m.answerable_refused == pytest.approx(1 / 3)
    assert m.unanswerable_flagged == pytest.approx(1 / 2)
    assert m.overall_correct == pytest.approx(2 / 5)
    # confidences: answerable 0.9, 0.8, 0.4 vs unanswerable 0.1, 0.85 -> pairs won: 2 + 1 + 1 of 6
    assert m.confidence_auc == pytest.approx(4 / 6)


def test_always_refusing_is_right_on_exactly_the_unanswerable_ones():
    m = answer_metrics([outcome(True, False), outcome(True, False), outcome(False, False), outcome(False, False)])
    assert m.overall_correct == 0.5 and m.answer_right == 0.0 and m.unanswerable_flagged == 1.0
    assert m.answerable_refused == 1.0 and m.confidence_auc == 0.5


def test_shares_without_a_denominator_are_none():
    m = answer_metrics([outcome(True, True, True)])
    assert m.unanswerable_flagged is None and m.confidence_auc is None and m.answer_right == 1.0
    assert answer_metrics([]).overall_correct is None


def test_groups_keep_each_kind_of_unanswerable_apart():
    def qo(answerable: bool, given: bool, extra: bool = False) -> QuestionOutcome:
        question = SQUAD if answerable else UNANSWERABLE
        return QuestionOutcome(question, given, None, outcome(answerable, given, right=answerable), extra)

    outcomes = [qo(True, True), qo(True, False), qo(False, True), qo(False, False, extra=True), qo(False, False, True)]
    groups = answer_groups(outcomes)
    assert set(groups) == {"all", "file", "extra"}
    assert (groups["all"].n_answerable, groups["all"].n_unanswerable) == (2, 3)
    assert groups["file"].unanswerable_flagged == 0.0 and groups["file"].n_unanswerable == 1
    assert groups["extra"].unanswerable_flagged == 1.0 and groups["extra"].n_unanswerable == 2
    assert groups["extra"].answerable_refused == groups["file"].answerable_refused == 0.5
    assert set(answer_groups(outcomes[:3])) == {"all"}


# -- passages against answer spans (hit@k) ---------------------------------------------------


def _passage(rank: int, source: str, start: int, end: int, also: tuple[Citation, ...] = ()) -> Passage:
    return Passage(rank, 100 + rank, Citation(source, 1, 1, start, end, "x" * (end - start)), Scores(1, 1, 1), also)


def test_a_passage_is_relevant_when_it_covers_a_span_of_the_article_and_only_the_first_counts():
    passages = (
        _passage(1, "b.txt", 0, 500),  # the same offsets, another article
        _passage(2, "a.txt", 0, 118),  # cuts the answer
        _passage(3, "other.txt", 0, 10, also=(Citation("a.txt", 1, 1, 110, 130, "y" * 20),)),
        _passage(4, "a.txt", 100, 200),  # covers it too, but the answer was found at 3
    )
    run, qrels, items = question_run(answer(None, False, passages), SQUAD)
    assert qrels == {"answer": 1}
    assert [i.relevant for i in items] == [False, False, True, False]
    metrics = evaluate_run({"q": run}, {"q": qrels}, ("hit@1", "hit@5", "mrr@10"))
    assert metrics.means == {"hit@1": 0.0, "hit@5": 1.0, "mrr@10": pytest.approx(1 / 3)}


# -- question files and selection ------------------------------------------------------------


def test_squad_lines_load_with_article_spans_and_id(tmp_path):
    path = tmp_path / "q.jsonl"
    rows = [
        {"id": 7, "question": "A?", "article": "a.txt", "answers": ["x"], "answer_spans": [[1, 2]], "evidence": []},
        {"id": "u", "question": "B?", "article": "a.txt", "answers": [], "answer_spans": [], "evidence": []},
        {"question": "C?", "evidence": [{"source": "s.txt", "text": "t"}]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    a, b, c = load_questions(path)
    assert (a.id, a.article, a.answer_spans, a.answerable) == ("7", "a.txt", ((1, 2),), True)
    assert not b.answerable and b.articles == {"a.txt"}
    assert c.articles == {"s.txt"} and c.id is None and c.answerable
    assert not a.as_unanswerable().answerable and a.as_unanswerable().article == "a.txt"


def test_spans_without_an_article_are_refused_with_the_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question": "A?", "answer_spans": [[1, 2]]}) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"q\.jsonl:1"):
        load_questions(path)


def test_article_names_from_a_list_a_json_file_or_its_keys(tmp_path):
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"about": "text", "dev": ["A.txt", "B.txt"], "extra": ["C.txt"]}), encoding="utf-8")
    assert article_names("A.txt, D.txt") == {"A.txt", "D.txt"}
    assert article_names(str(split)) == {"A.txt", "B.txt", "C.txt"}
    assert article_names(f"{split}:extra") == {"C.txt"}
    assert article_names(f"{split}:dev,extra") == {"A.txt", "B.txt", "C.txt"}
    with pytest.raises(InputError, match="no list named nope") as info:
        article_names(f"{split}:nope")
    assert "dev, extra" in info.value.one_line()
    with pytest.raises(InputError, match="Cannot read"):
        article_names(str(tmp_path / "missing.json"))


def test_selection_by_article_then_a_seeded_sample_in_file_order():
    questions = [Question(f"q{i}?", (), f"{'AB'[i % 2]}.txt") for i in range(40)]
    only_a = select_questions(questions, frozenset({"A.txt"}))
    assert len(only_a) == 20 and all(q.article == "A.txt" for q in only_a)
    sample = select_questions(questions, None, sample=7, seed=3)
    assert len(sample) == 7 and sample == sorted(sample, key=questions.index)
    assert sample == select_questions(questions, None, sample=7, seed=3)
    assert sample != select_questions(questions, None, sample=7, seed=4)
    assert select_questions(questions, None, sample=100) == questions
