"""qa.metrics agrees with the reference implementations (pytrec_eval, ir-measures) to 1e-6."""

from __future__ import annotations

import random

import ir_measures
import pytest
import pytrec_eval

from qa.metrics import evaluate_run, ndcg_at, parse_measure, rank_documents


def _random_case(seed: int, graded: bool):
    """A run with many score ties and qrels with unjudged, non-relevant and missing queries."""
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(60)]
    qrels, run = {}, {}
    for q in range(40):
        qid = f"q{q}"
        judged = rng.sample(docs, rng.randint(1, 8))
        qrels[qid] = {d: (rng.choice([0, 1, 2, 3]) if graded else rng.choice([0, 1, 1])) for d in judged}
        if q % 13 == 5:
            continue  # a query the system returned nothing for
        retrieved = rng.sample(docs, rng.randint(1, 50))
        # coarse scores so that ties are frequent and tie-breaking is exercised
        run[qid] = {d: float(rng.randint(0, 6)) for d in retrieved}
    run["not-in-qrels"] = {"d1": 1.0}
    return qrels, run


@pytest.mark.parametrize("graded", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ndcg_and_recall_match_pytrec_eval(seed, graded):
    qrels, run = _random_case(seed, graded)
    ours = evaluate_run(run, qrels, ("ndcg@10", "ndcg@5", "recall@10", "recall@100"))
    reference = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.5,10", "recall.10,100"}).evaluate(run)
    for qid, values in reference.items():
        assert ours.per_query[qid]["ndcg@10"] == pytest.approx(values["ndcg_cut_10"], abs=1e-6)
        assert ours.per_query[qid]["ndcg@5"] == pytest.approx(values["ndcg_cut_5"], abs=1e-6)
        assert ours.per_query[qid]["recall@10"] == pytest.approx(values["recall_10"], abs=1e-6)
        assert ours.per_query[qid]["recall@100"] == pytest.approx(values["recall_100"], abs=1e-6)
    # pytrec_eval leaves out queries without a run; with trec_eval -c they count as 0.
    missing = set(qrels) - set(reference)
    assert missing and all(ours.per_query[q]["ndcg@10"] == 0.0 for q in missing)


@pytest.mark.parametrize("graded", [False, True])
@pytest.mark.parametrize("seed", [4, 5])
def test_reciprocal_rank_and_success_match_pytrec_eval(seed, graded):
    qrels, run = _random_case(seed, graded)
    ours = evaluate_run(run, qrels, ("mrr@1000", "hit@1", "hit@5", "hit@10"))
    reference = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank", "success.1,5,10"}).evaluate(run)
    for qid, values in reference.items():
        # recip_rank has no cut-off in trec_eval; runs here hold at most 50 documents
        assert ours.per_query[qid]["mrr@1000"] == pytest.approx(values["recip_rank"], abs=1e-6)
        for k in (1, 5, 10):
            assert ours.per_query[qid][f"hit@{k}"] == pytest.approx(values[f"success_{k}"], abs=1e-6)


@pytest.mark.parametrize("seed", [6, 7])
def test_means_match_ir_measures(seed):
    qrels, run = _random_case(seed, graded=True)
    # ir-measures computes RR@10 with the msmarco provider, which orders ties differently:
    # give every document a distinct score so the comparison is about the cut-off and the mean.
    run = {qid: {doc: score + 1e-3 * int(doc[1:]) for doc, score in docs.items()} for qid, docs in run.items()}
    names = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "hit@1", "hit@10")
    ours = evaluate_run(run, qrels, names).means
    measures = {
        "ndcg@10": ir_measures.nDCG @ 10,
        "recall@10": ir_measures.R @ 10,
        "recall@100": ir_measures.R @ 100,
        "mrr@10": ir_measures.RR @ 10,
        "hit@1": ir_measures.Success @ 1,
        "hit@10": ir_measures.Success @ 10,
    }
    reference = ir_measures.calc_aggregate(list(measures.values()), qrels, run)
    for name, measure in measures.items():
        assert ours[name] == pytest.approx(reference[measure], abs=1e-6), name


def test_ties_are_broken_by_document_id_descending():
    assert rank_documents({"a": 1.0, "c": 1.0, "b": 2.0}) == ["b", "c", "a"]
    # With that order the relevant doc "a" sits at rank 3, not 2.
    assert ndcg_at(rank_documents({"a": 1.0, "c": 1.0, "b": 2.0}), {"a": 1}, 10) == pytest.approx(0.5)


def test_unknown_measure_is_refused():
    assert parse_measure("recall@100") == ("recall", 100)
    with pytest.raises(ValueError):
        parse_measure("map@10")
