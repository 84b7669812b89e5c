"""`qa bench`'s printed report: the metrics and answers tables and the --failures drill-down, byte for byte.

The expected output lives in tests/data/bench_render/; after an intended change to the report's look,
rewrite it with `QA_WRITE_GOLDEN=1 pytest tests/test_bench_render.py` and review the diff."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from rich.console import Console

from qa.answer_metrics import AnswerMetrics
from qa.bench import BenchReport, Failure, ModeResult, RankedItem
from qa.bench_render import render_report
from qa.results import Scores

GOLDEN = Path(__file__).resolve().parent / "data" / "bench_render"


def _answers(n_answerable: int, n_unanswerable: int, base: float, auc: float | None) -> AnswerMetrics:
    return AnswerMetrics(
        n_answerable=n_answerable,
        n_unanswerable=n_unanswerable,
        answer_right=base,
        best_sentence_right=base + 0.1,
        unanswerable_flagged=None if n_unanswerable == 0 else 0.5,
        answerable_refused=0.125,
        confidence_auc=auc,
        overall_correct=base - 0.05,
    )


def _report() -> BenchReport:
    item = RankedItem(
        rank=1, key="notes.md#2", text="A  passage\nthat spans lines.", scores=Scores(3.5, 0.61, 0.033), relevant=False
    )
    relevant = RankedItem(rank=4, key="guide.md#1", text="The answer.", scores=Scores(2.25, 0.7, 0.02), relevant=True)
    failures = (
        Failure("q1", "What is it?", ("the answer",), 4, (item,), relevant),
        Failure("q2", "Where?", ("here", "there"), None, (item,), None),
        Failure("q3", "Why?", ("because",), 2, (item,), relevant),
    )
    hybrid = ModeResult(
        mode="hybrid",
        metrics={"hit@1": 0.5, "hit@5": 0.75, "hit@10": 1.0, "recall@10": 0.875, "mrr@10": 0.6, "ndcg@10": 0.6543},
        n_queries=4,
        seconds=0.5,
        abstention_accuracy=0.75,
        failures=failures,
        answers={
            "all": _answers(3, 1, 0.6667, 0.8),
            "file": _answers(3, 0, 0.5, None),
            "extra": _answers(3, 2, 0.4, 1),
        },
    )
    bm25 = ModeResult(
        mode="bm25",
        metrics={"hit@1": 0.25, "hit@5": 0.5, "hit@10": 0.5, "recall@10": 0.5, "recall@100": 1.0},
        n_queries=4,
        seconds=0.1,
        answers={"all": _answers(3, 1, 0.3333, 0.5), "odd": _answers(2, 2, 0.25, 0.25)},
    )
    return BenchReport(
        dataset="seed questions",
        n_documents=3,
        n_chunks=12,
        n_queries=4,
        n_unanswerable=1,
        index_seconds=1.25,
        results=(hybrid, bm25),
        settings={},
    )


@pytest.mark.parametrize(
    ("name", "terminal"),
    [("pipe.txt", False), ("terminal.ansi", True)],
)
def test_the_report_prints_as_it_always_has(name, terminal):
    out = io.StringIO()
    console = Console(file=out, width=100, force_terminal=terminal, color_system="standard" if terminal else None)
    render_report(_report(), console, failures=True, max_failures=2)
    if os.environ.get("QA_WRITE_GOLDEN"):
        (GOLDEN / name).write_text(out.getvalue(), encoding="utf-8")
    assert out.getvalue() == (GOLDEN / name).read_text(encoding="utf-8")
