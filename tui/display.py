"""Turning answers and document text into Rich Text that is never parsed as markup or escapes."""

from __future__ import annotations

from rich.console import Group
from rich.padding import Padding
from rich.text import Text

from qa.render import skipped_stale_note
from qa.results import Answer, Citation, Passage
from qa.sanitize import safe_same_length, safe_text, safe_text_and_spans, unwrapped
from qa.snippet import snippet

HIGHLIGHT = "bold yellow underline"
LABEL = "bold cyan"
STALE_NOTE = "STALE: file changed since indexing (ctrl+r re-indexes)"
_BREAKS = str.maketrans(
    {
        # Separators Python's splitlines honours but our line numbers (counted by "\n") do not.
        "\u2028": "\ufffd",
        "\u2029": "\ufffd",
        "\t": " ",
        # A page break (PDFs) is a line of its own: drawn as a rule, not as an unprintable character.
        "\f": "─",
    }
)


def _breaks_shown(text: str) -> str:
    """Line and page breaks as the panes draw them, character for character (\r\n: a space, then the line break)."""
    return text.replace("\r\n", " \n").translate(_BREAKS)


def display_text(text: str) -> str:
    """Untrusted text made printable character for character, so citation offsets still index it."""
    return safe_same_length(_breaks_shown(text))


def highlighted(text: str, spans, style: str = HIGHLIGHT) -> Text:
    """Untrusted text with spans (offsets into it) styled; escape sequences and control characters are
    left out, not shown as placeholders."""
    shown, moved = safe_text_and_spans(_breaks_shown(text), spans)
    body = Text(shown)
    for start, end in moved:
        body.stylize(style, start, end)
    return body


def one_line(text: str, limit: int = 200) -> str:
    """A short single-line preview of untrusted text."""
    flat = " ".join(safe_text(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def label_text(citation: Citation) -> Text:
    label = Text(display_text(citation.label), style=LABEL)
    if citation.stale:
        label.append("  STALE" if citation.check == "file" else "  NOT VERIFIED (file not reachable)", style="bold red")
    elif citation.check == "hash":
        label.append("  verified by stored hash (file not reachable)", style="dim")
    return label


def answer_text(answer: Answer) -> Text:
    """The answer sentence with matched words highlighted, or a clear 'not in the documents'."""
    if answer.found and answer.answer is not None:
        span = answer.answer
        head = Text("Answer", style="bold green")
        head.append(f"  confidence {span.confidence:.2f}  ", style="green")
        head.append_text(label_text(span.citation))
        head.append(f"  [{span.passage_rank}]", style="dim")
        return Text("\n").join([head, highlighted(*unwrapped(span.citation.text, span.highlights))]) + stale_note(
            answer
        )
    best = answer.best_guess.confidence if answer.best_guess else 0.0
    text = Text("Not in the documents", style="bold yellow")
    text.append(f"  (best confidence {best:.2f} < {answer.threshold:.2f})", style="yellow")
    text.append_text(stale_note(answer))
    if answer.passages:
        text.append("\nThe nearest passages are listed below anyway.", style="dim")
    else:
        text.append("\nNothing in the index matched; check the document filter (ctrl+f).", style="dim")
    return text


def stale_note(answer: Answer) -> Text:
    """A line saying which better-ranked passages were passed over because their files changed (or nothing)."""
    note = skipped_stale_note(answer, "ctrl+r re-indexes")
    return Text() if note is None else Text("\n" + note, style="yellow")


def passage_text(
    passage: Passage, *, show_scores: bool, is_answer: bool, question: str = "", focus: tuple[int, int] | None = None
) -> Group:
    """One citation row: [n] file:lines, score, optional breakdown, an indented one-line preview of the
    passage around the question's words (or around `focus`, offsets into the passage), those words marked."""
    cite = passage.citation
    head = Text(f"[{passage.rank}] ", style="bold")
    head.append_text(label_text(cite))
    head.append(f"  score {passage.scores.score:.3f}", style="dim")
    if is_answer:
        head.append("  ← answer", style="green")
    body = []
    if show_scores:
        s = passage.scores
        late = "" if s.late is None else f" · late {s.late:.3f}"
        body.append(Text(f"bm25 {s.bm25:.2f} · dense {s.dense:.3f} · fused {s.fused:.3f}{late}", style="magenta"))
    preview = snippet(cite.text, question, 160, focus)
    body.append(highlighted(preview.text, preview.highlights))
    for other in passage.also_in:
        body.append(Text("also in ", style="dim") + label_text(other))
    return Group(head, Padding(Group(*body), (0, 0, 0, 4)))


def locate(text: str, citation: Citation) -> tuple[int, int] | None:
    """Where the cited text is in the current file: its offsets, or where it moved to, or None."""
    if text[citation.char_start : citation.char_end] == citation.text:
        return citation.char_start, citation.char_end
    moved = text.find(citation.text) if citation.text else -1
    return (moved, moved + len(citation.text)) if moved >= 0 else None
