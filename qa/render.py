"""Printing answers for people (Rich, markup never parsed from documents) and for scripts (JSON)."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from qa.results import Answer, Citation
from qa.sanitize import safe_line, safe_text_and_spans, unwrapped
from qa.snippet import snippet


def count(n: int, noun: str) -> str:
    """ "1 document", "2 documents": nouns that take an s."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


class PipeConsole(Console):
    """A Console whose closed pipe (`qa ask ... | head -2`) raises BrokenPipeError for qa.cli.main to end
    quietly; Rich's own handling exits with status 1."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


def check_note(c: Citation) -> str | None:
    """What the check of a quote found, when it is not the usual "matches the file" (qa/cite.py check_passage)."""
    if c.check == "hash":
        return (
            "NOT VERIFIED: file not reachable, and the stored text does not match its hash"
            if c.stale
            else "verified by the stored text's hash (file not reachable)"
        )
    if c.check == "none":
        return "NOT VERIFIED: file not reachable, and no stored hash to check against (run qa index)"
    return "STALE: file changed since indexing, run qa index" if c.stale else None


def _cite_label(c: Citation) -> Text:
    label = Text(f"{safe_line(c.label)}", style="bold cyan")
    label.append(f"  chars {c.char_start}-{c.char_end}", style="dim")
    note = check_note(c)
    if note is not None:
        label.append(f"  {note}", style="bold red" if c.stale else "dim")
    return label


def _marked(text: str, spans) -> Text:
    """Untrusted text, escape sequences left out, with spans (offsets into it) in bold yellow."""
    shown, moved = safe_text_and_spans(text, spans)
    body = Text(shown)
    for start, end in moved:
        body.stylize("bold yellow", start, end)
    return body


def skipped_stale_note(answer: Answer, fix: str) -> str | None:
    """Which better-ranked passages the answer passed over because their files changed, and fix (how to
    re-index), as one printable line; None when there were none."""
    if not answer.skipped_stale:
        return None
    return (
        f"Better-ranked passages are in files changed since indexing ({safe_line(', '.join(answer.skipped_stale))}): "
        f"{fix}, then ask again."
    )


def _print_indented(console: Console, text: Text, indent: int) -> None:
    """Each line of text indented, with no trailing spaces (neither Rich's padding nor the file's), and not
    re-wrapped: the terminal wraps long lines, a pipe gets them whole."""
    for line in text.split("\n"):
        line.rstrip()
        console.print(Text(" " * indent) + line if line.plain else line, soft_wrap=True)


def render_answer(answer: Answer, console: Console, show_scores: bool = True, full: bool = False) -> None:
    """Answer sentence with highlighted matches, then the numbered cited passages (the question's words marked):
    a one-line snippet around the question's words of each, or with full, each passage whole."""
    from qa.extract import highlight_spans  # numpy and the stemmer: not on the chat's start-up path

    if answer.sources:  # what was left out of the search shapes the answer: say so before it
        console.print(Text(f"Searched only: {safe_line(', '.join(answer.sources))}", style="dim"), soft_wrap=True)
    if answer.found and answer.answer is not None:
        span = answer.answer
        head = Text("Answer", style="bold green")
        head.append(f"  (confidence {span.confidence:.2f})  ", style="green")
        head.append_text(_cite_label(span.citation))
        console.print(head, soft_wrap=True)  # soft_wrap: Rich's wrapping would leave trailing spaces
        _print_indented(console, _marked(*unwrapped(span.citation.text, span.highlights)), 2)
    else:
        best = answer.best_guess.confidence if answer.best_guess else 0.0
        console.print(
            Text("Not in the documents", style="bold yellow")
            + Text(f" (best confidence {best:.2f} < {answer.threshold:.2f}). Nearest passages:", style="yellow"),
            soft_wrap=True,
        )
    note = skipped_stale_note(answer, "run qa index")
    if note is not None:
        console.print(Text(note, style="yellow"), soft_wrap=True)
    console.print()
    for passage in answer.passages:
        line = Text(f"[{passage.rank}] ", style="bold")
        line.append_text(_cite_label(passage.citation))
        if show_scores:
            s = passage.scores
            late = "" if s.late is None else f", late {s.late:.3f}"
            line.append(
                f"  score {s.score:.3f} (bm25 {s.bm25:.2f}, dense {s.dense:.3f}, fused {s.fused:.3f}{late})",
                style="dim",
            )
        console.print(line, soft_wrap=True)
        for other in passage.also_in:
            console.print(Text("    also in ", style="dim") + _cite_label(other), soft_wrap=True)
        text = passage.citation.text
        if full:
            body = _marked(text, highlight_spans(answer.question, text))
        else:
            preview = snippet(text, answer.question)
            body = Text(preview.text)
            for start, end in preview.highlights:
                body.stylize("bold yellow", start, end)
        _print_indented(console, body, 4)
        console.print()
