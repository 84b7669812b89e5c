"""Ranking metrics with trec_eval semantics: nDCG@k, Recall@k, MRR@k and Hit@k over a run and qrels."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Run = Mapping[str, Mapping[str, float]]
"""query id -> {document id: retrieval score}; higher is better."""
Qrels = Mapping[str, Mapping[str, int]]
"""query id -> {document id: relevance grade}; grades <= 0 count as not relevant."""

DEFAULT_MEASURES = ("hit@1", "hit@5", "hit@10", "recall@10", "recall@100", "mrr@10", "ndcg@10")
KINDS = ("ndcg", "recall", "mrr", "hit")


def rank_documents(scores: Mapping[str, float]) -> list[str]:
    """Document ids best first, breaking score ties by document id descending, as trec_eval does."""
    return [doc for doc, _ in sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)]


def ndcg_at(ranking: Sequence[str], grades: Mapping[str, int], k: int) -> float:
    """DCG@k / ideal DCG@k with linear gain (the grade) and a log2(rank + 1) discount."""
    dcg = sum(max(grades.get(doc, 0), 0) / math.log2(rank + 2) for rank, doc in enumerate(ranking[:k]))
    ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranking: Sequence[str], grades: Mapping[str, int], k: int) -> float:
    """Share of the query's relevant documents found in the top k."""
    relevant = {doc for doc, g in grades.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def first_relevant_rank(ranking: Sequence[str], grades: Mapping[str, int]) -> int | None:
    """1-based rank of the first relevant document, or None."""
    for rank, doc in enumerate(ranking, 1):
        if grades.get(doc, 0) > 0:
            return rank
    return None


def mrr_at(ranking: Sequence[str], grades: Mapping[str, int], k: int) -> float:
    """Reciprocal rank of the first relevant document within the top k (0 if none)."""
    rank = first_relevant_rank(ranking[:k], grades)
    return 1.0 / rank if rank else 0.0


def hit_at(ranking: Sequence[str], grades: Mapping[str, int], k: int) -> float:
    """1 if any relevant document is in the top k, else 0."""
    return 1.0 if first_relevant_rank(ranking[:k], grades) else 0.0


_FUNCTIONS = {"ndcg": ndcg_at, "recall": recall_at, "mrr": mrr_at, "hit": hit_at}


def parse_measure(name: str) -> tuple[str, int]:
    """'ndcg@10' -> ('ndcg', 10)."""
    kind, _, cut = name.partition("@")
    if kind not in _FUNCTIONS or not cut.isdigit() or int(cut) < 1:
        raise ValueError(f"unknown measure {name!r}; use e.g. ndcg@10, recall@100, mrr@10, hit@1")
    return kind, int(cut)


@dataclass(frozen=True)
class RunMetrics:
    """Per-query and mean values of each measure over every query that has qrels."""

    measures: tuple[str, ...]
    """Measure names such as 'ndcg@10', in display order."""
    per_query: dict[str, dict[str, float]]
    """query id -> {measure: value}; a query missing from the run scores 0 (trec_eval -c)."""
    rankings: dict[str, list[str]]
    """query id -> its ranked document ids, as evaluated (ties broken like trec_eval)."""

    def mean(self, measure: str) -> float:
        if not self.per_query:
            return 0.0
        return sum(values[measure] for values in self.per_query.values()) / len(self.per_query)

    @property
    def means(self) -> dict[str, float]:
        return {m: self.mean(m) for m in self.measures}


def evaluate_run(run: Run, qrels: Qrels, measures: Sequence[str] = DEFAULT_MEASURES) -> RunMetrics:
    """Score a run against qrels; averages cover all qrels queries, like `trec_eval -c` and ir-measures."""
    parsed = [(m, *parse_measure(m)) for m in measures]
    per_query: dict[str, dict[str, float]] = {}
    rankings: dict[str, list[str]] = {}
    for qid, grades in qrels.items():
        ranking = rank_documents(run.get(qid, {}))
        rankings[qid] = ranking
        per_query[qid] = {name: _FUNCTIONS[kind](ranking, grades, k) for name, kind, k in parsed}
    return RunMetrics(tuple(measures), per_query, rankings)
