"""Bench results as Rich Text for the bench screen: the metrics line, a row per question, a drill-down."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from rich.console import Group
from rich.padding import Padding
from rich.text import Text

from tui.display import LABEL, highlighted, one_line

if TYPE_CHECKING:
    from qa.bench import ModeResult, QuestionOutcome, RankedItem
    from qa.questions import Question

METRICS = (("hit@1", "Hit@1"), ("hit@5", "Hit@5"), ("mrr@10", "MRR"), ("ndcg@10", "nDCG@10"))
ANSWER_FIGURES = (
    ("answer_right", "Answer right"),
    ("unanswerable_flagged", "Flagged"),
    ("answerable_refused", "Refused"),
    ("confidence_auc", "AUC"),
    ("overall_correct", "Overall"),
)
"""qa.answer_metrics.AnswerMetrics fields shown on the summary's second line, over every question."""
DEPTH = 100
"""Passages the bench retrieves per question (qa.bench's default), so 'miss' means not in this many."""


def verdict(outcome: QuestionOutcome) -> tuple[str, str]:
    """Where the first expected passage ranked: hit@1 / rank N / miss (or 'no evidence' for an unanswerable one)."""
    if not outcome.question.answerable:
        return "no evidence", "dim"
    rank = outcome.first_relevant_rank
    if rank == 1:
        return "hit@1", "green"
    return ("miss", "bold red") if rank is None else (f"rank {rank}", "yellow")


def is_problem(outcome: QuestionOutcome) -> bool:
    """What 'only problems' keeps: not found at rank 1, or the abstention was wrong."""
    return not outcome.abstention_correct or (outcome.question.answerable and outcome.first_relevant_rank != 1)


def abstention_mistake(outcome: QuestionOutcome) -> str:
    """'' when the engine answered exactly the answerable questions, else what it got wrong."""
    if outcome.abstention_correct:
        return ""
    return "abstained wrongly" if outcome.question.answerable else "should abstain"


def outcome_row(number: int, outcome: QuestionOutcome) -> Text:
    """One line: number, verdict, 'abstained ✗' / 'answered ✗' when the abstention was wrong, the question."""
    label, style = verdict(outcome)
    row = Text(f"{number:>3} ", style="dim", no_wrap=True, overflow="ellipsis")
    row.append(f"{label:<12}", style=style)
    mark = "" if outcome.abstention_correct else ("abstained ✗" if outcome.question.answerable else "answered ✗")
    row.append(f"{mark:<12}", style="bold magenta")
    row.append(one_line(outcome.question.question, 300))
    return row


def summary_text(results: dict[str, ModeResult], shown: str, modes: Sequence[str], running: str | None) -> Text:
    """Mode tabs (the shown one bold, unfinished ones dim) and the shown mode's metrics."""
    text = Text("mode ", style="dim")
    for mode in modes:
        style = "bold reverse" if mode == shown else ("" if mode in results else "dim")
        text.append(f" {mode} ", style=style)
        text.append(" ")
    text.append(" m switches\n", style="dim")
    result = results.get(shown)
    if result is None:
        state = (
            "running…"
            if running == shown
            else f"waiting for {running}…"
            if running
            else "not run (r runs the bench again)"
        )
        text.append(f"{shown}: {state}", style="dim")
        return text
    for key, label in METRICS:
        text.append(f"{label} ", style="bold")
        text.append(f"{result.metrics.get(key, 0.0):.3f}   ")
    if result.abstention_accuracy is not None:
        text.append("Abstention ", style="bold")
        text.append(f"{result.abstention_accuracy:.3f}   ")
    misses = sum(1 for o in result.outcomes if o.question.answerable and o.first_relevant_rank != 1)
    text.append(f"{len(result.outcomes)} questions, {result.n_queries} answerable, {misses} not at rank 1", style="dim")
    answers = result.answers.get("all")
    if answers is not None:
        text.append("\n")
        for key, label in ANSWER_FIGURES:
            value = getattr(answers, key)
            text.append(f"{label} ", style="bold")
            text.append("–   " if value is None else f"{value:.3f}   ")
    return text


def _item(item: RankedItem, question: str) -> Group:
    """A ranked passage: rank and file:lines, then (indented) its score breakdown and its preview
    (qa.bench.RankedItem.text, already the window to show), the question's words marked."""
    from qa.extract import highlight_spans  # deferred: numpy; help (via BenchScreen) imports this before the engine

    s = item.scores
    head = Text(f"{item.rank:>3}. ", style="bold green" if item.relevant else "bold")
    head.append(one_line(item.key, 80), style=LABEL)
    scores = Text(f"fused {s.fused:.3f} · bm25 {s.bm25:.2f} · dense {s.dense:.3f}", style="magenta")
    return Group(
        head, Padding(Group(scores, highlighted(item.text, highlight_spans(question, item.text))), (0, 0, 0, 5))
    )


def _heading(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")


def drill_down(number: int, outcome: QuestionOutcome) -> Group:
    """Everything about one question: the evidence, what ranked above it (with scores), where it ranked."""
    question = outcome.question
    label, style = verdict(outcome)
    head = Text(f"q{number}  ", style="bold")
    head.append(one_line(question.question, 400), style="bold")
    status = Text(label, style=style)
    status.append(" · the chat " + ("answered" if outcome.found else "said 'not in the documents'"))
    mistake = abstention_mistake(outcome)
    status.append(f" ✗ {mistake}" if mistake else " ✓", style="bold magenta" if mistake else "green")
    parts: list = [head, status]
    ranking = outcome.ranking
    if ranking is None:
        parts.append(Text("\nNo expected evidence: the documents do not answer this question.", style="dim"))
    else:
        parts.append(_heading("Expected evidence"))
        for evidence in question.evidence:
            parts.append(Text(one_line(evidence.source, 80), style=LABEL))
            parts.append(Padding(Text("“" + one_line(evidence.text, 300) + "”"), (0, 0, 0, 2)))
        rank = ranking.first_relevant_rank
        if ranking.above:
            if rank is None:
                title = f"Ranked first instead (top {len(ranking.above)})"
            else:
                shown = "" if rank - 1 == len(ranking.above) else f", the first {len(ranking.above)} shown"
                title = f"Ranked above it ({rank - 1}{shown})"
            parts.append(_heading(title))
            parts.extend(_item(item, question.question) for item in ranking.above)
        parts.append(_heading("Where the expected passage ranked"))
        if ranking.relevant_item is None:
            parts.append(Text(f"Not among the top {DEPTH} passages.", style="bold red"))
        else:
            parts.append(_item(ranking.relevant_item, question.question))
    parts.append(Text("\nenter asks this question in the chat", style="dim"))
    return Group(*parts)


def coverage_note(questions: Iterable[Question], sources: Iterable[str]) -> str:
    """A warning when the questions cite documents this index does not hold ('' when it holds them all)."""
    expected = {ev.source for q in questions for ev in q.evidence}
    missing = expected - set(sources)
    if not missing:
        return ""
    if missing == expected:
        return (
            f"This index holds none of the documents these questions cite ({len(expected)}): "
            "are they about other documents?"
        )
    return (
        f"{len(missing)} of the {len(expected)} documents these questions cite are not in this index; "
        "their questions count as misses."
    )
