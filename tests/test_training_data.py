"""The answer model's training data (training/squad_data.py) and its candidate metrics, on a small folder."""

from __future__ import annotations

import numpy as np
from conftest import write_corpus

from training.squad_data import Corpus, Miner, Question, is_answer_sentence
from training.train_answer_model import auc, candidate_metrics

ARTICLE = "Bridges\n\nThe bridge opened in 1932. It spans 500 m.\n\nTolls were dropped in 1990. Cars pay nothing.\n"


def test_sentences_keep_their_offsets_in_the_article(tmp_path):
    folder = write_corpus(tmp_path / "c", {"Bridges.txt": ARTICLE})
    corpus = Corpus(folder)
    assert [s.text for s in corpus.sentences] == [
        "The bridge opened in 1932.",
        "It spans 500 m.",
        "Tolls were dropped in 1990.",
        "Cars pay nothing.",
    ]
    for s in corpus.sentences:
        assert ARTICLE[s.start : s.end] == s.text
    assert [s.paragraph for s in corpus.sentences] == [0, 0, 1, 1]


def test_a_group_holds_the_answer_sentence_and_never_another_one_naming_the_answer(tmp_path):
    folder = write_corpus(tmp_path / "c", {"Bridges.txt": ARTICLE})
    corpus = Corpus(folder)
    start = ARTICLE.index("1932")
    q = Question("1", "When did the bridge open?", "Bridges.txt", ("1932",), (9, 53), ((start, start + 4),))
    assert is_answer_sentence(corpus.sentences[0], q) and not is_answer_sentence(corpus.sentences[1], q)
    vectors = np.eye(4, dtype=np.float32)
    miner = Miner(corpus, vectors, lambda text: text.lower().split())
    group = miner.group(q, vectors[0], 3, "answerable", np.random.default_rng(0))
    assert sorted(group.labels) == [0, 0, 1]
    assert group.candidates[group.labels.index(1)] == "The bridge opened in 1932."
    unanswerable = Question("2", "When did the bridge close?", "Bridges.txt", (), (9, 53), ())
    adversarial = miner.group(unanswerable, vectors[0], 3, "adversarial", np.random.default_rng(0))
    assert set(adversarial.labels) == {0} and len(adversarial.candidates) == 3


def test_candidate_metrics_count_choices_and_separation():
    groups = [
        {"kind": "answerable", "labels": [0, 1]},
        {"kind": "answerable", "labels": [1, 0]},
        {"kind": "adversarial", "labels": [0, 0]},
        {"kind": "off-corpus", "labels": [0, 0]},
    ]
    logits = [np.array([0.1, 2.0]), np.array([0.5, 1.0]), np.array([-1.0, 0.2]), np.array([-3.0, -2.0])]
    m = candidate_metrics(groups, logits)
    assert m["choose_right"] == 0.5
    assert m["auc_adversarial"] == 1.0 and m["auc_off_corpus"] == 1.0
    assert m["adversarial_flagged_at_0"] == 0.0 and m["off_corpus_flagged_at_0"] == 1.0
    assert auc(np.array([1.0, 0.0]), np.array([0.5])) == 0.5
