"""Printing a bench report: one metrics table (a row per mode) and the --failures drill-down."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from qa.bench import BenchReport, Failure, ModeResult, RankedItem
from qa.sanitize import safe_line

COLUMNS = (
    ("hit@1", "Hit@1"),
    ("hit@5", "Hit@5"),
    ("hit@10", "Hit@10"),
    ("recall@10", "R@10"),
    ("recall@100", "R@100"),
    ("mrr@10", "MRR@10"),
    ("ndcg@10", "nDCG@10"),
)


def _scores_table(title: str, columns: tuple[tuple[str, str], ...], caption: str | None = None) -> Table:
    """A left-titled table with the mode column and a right-aligned column per (key, label) of columns."""
    table = Table(
        title=title,
        title_justify="left",
        caption=caption,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
    )
    table.add_column("mode", no_wrap=True, min_width=6)
    for _, label in columns:
        table.add_column(label, justify="right", no_wrap=True, min_width=max(len(label), 5))
    return table


def metrics_table(report: BenchReport) -> Table:
    abstain = any(r.abstention_accuracy is not None for r in report.results)
    table = _scores_table(
        f"{report.dataset}: {report.n_queries} queries, {report.n_documents} documents, {report.n_chunks} chunks",
        COLUMNS,
    )
    if abstain:
        table.add_column("Abstain", justify="right", no_wrap=True, min_width=7)
    table.add_column("q/s", justify="right", no_wrap=True, min_width=5)
    for result in report.results:
        row = [result.mode, *(f"{result.metrics[name]:.3f}" if name in result.metrics else "-" for name, _ in COLUMNS)]
        if abstain:
            row.append("-" if result.abstention_accuracy is None else f"{result.abstention_accuracy:.3f}")
        row.append(f"{result.queries_per_second:.1f}")
        table.add_row(*row)
    return table


ANSWER_COLUMNS = (
    ("answer_right", "Answer"),
    ("best_sentence_right", "Best"),
    ("unanswerable_flagged", "Flagged"),
    ("answerable_refused", "Refused"),
    ("confidence_auc", "AUC"),
    ("overall_correct", "Overall"),
)
ANSWER_CAPTION = (
    "Answer: answered with a right sentence. Best: best sentence right, answered or not. Flagged: unanswerable "
    "ones said 'not in the documents'. Refused: answerable ones said so. AUC: confidence, answerable vs not. "
    "Overall: right answer or right refusal."
)
GROUP_LABELS = {"all": "", "file": " file", "extra": " extra"}
GROUP_NOTE = "file: with the question file's own unanswerable questions; extra: with the --unanswerable file's."


def answers_table(report: BenchReport) -> Table | None:
    """Answer figures, a row per mode (and per kind of unanswerable with --unanswerable); None for BEIR."""
    if not any(r.answers for r in report.results):
        return None
    grouped = any(len(r.answers) > 1 for r in report.results)
    table = _scores_table("answers", ANSWER_COLUMNS, caption=ANSWER_CAPTION + (" " + GROUP_NOTE if grouped else ""))
    table.add_column("Ans", justify="right", no_wrap=True)
    table.add_column("Unans", justify="right", no_wrap=True)
    for result in report.results:
        for group, metrics in result.answers.items():
            values = metrics.to_json()
            row = [result.mode + GROUP_LABELS.get(group, f" {group}")]
            row += ["-" if values[key] is None else f"{values[key]:.3f}" for key, _ in ANSWER_COLUMNS]
            table.add_row(*row, str(metrics.n_answerable), str(metrics.n_unanswerable))
    return table


def _item_line(item: RankedItem) -> Text:
    s = item.scores
    line = Text(f"  {item.rank:>3}. ", style="bold green" if item.relevant else "bold")
    line.append(safe_line(item.key), style="cyan")
    line.append(f"  fused {s.fused:.3f} (bm25 {s.bm25:.2f}, dense {s.dense:.3f})", style="dim")
    line.append("\n       " + safe_line(" ".join(item.text.split())[:140]))
    return line


def render_failure(failure: Failure, console: Console) -> None:
    where = (
        "not retrieved"
        if failure.first_relevant_rank is None
        else f"first relevant at rank {failure.first_relevant_rank}"
    )
    console.print(
        Text(f"{failure.query_id}  ", style="bold")
        + Text(safe_line(failure.query))
        + Text(f"  [{where}]", style="yellow")
    )
    for expected in failure.expected:
        console.print(Text("  expected: ", style="green") + Text(safe_line(expected[:160])))
    if failure.above:
        console.print(Text("  ranked above it:", style="dim"))
        for item in failure.above:
            console.print(_item_line(item))
    if failure.relevant_item is not None:
        console.print(Text("  the relevant one:", style="dim"))
        console.print(_item_line(failure.relevant_item))
    console.print()


def render_failures(result: ModeResult, console: Console, limit: int) -> None:
    """Missed queries of one mode, never-retrieved first, then the lowest-ranked."""
    ordered = sorted(result.failures, key=lambda f: -(f.first_relevant_rank or 10**9))
    console.print(
        Text(f"{result.mode}: {len(ordered)} queries without a relevant result at rank 1", style="bold underline")
    )
    for failure in ordered[:limit]:
        render_failure(failure, console)
    if len(ordered) > limit:
        console.print(Text(f"... {len(ordered) - limit} more (--max-failures, or --json for all)", style="dim"))


def render_report(report: BenchReport, console: Console, failures: bool = False, max_failures: int = 20) -> None:
    if failures:
        for result in report.results:
            render_failures(result, console, max_failures)
    if not console.is_terminal:
        console.width = max(console.width, 120)  # a pipe gets the whole table, not "0.8…"
    console.print(metrics_table(report))
    answers = answers_table(report)
    if answers is not None:
        console.print(answers)
    if report.index_seconds:
        console.print(Text(f"indexing took {report.index_seconds:.1f}s", style="dim"))
