"""Turns and whole conversations as Markdown (copy, export), and writing an export without overwriting a file.

Questions, document text and file names are untrusted: they are written so a Markdown reader shows them as text
(no HTML, links, emphasis, headings or lists of their own, no way out of a quote), and without terminal escapes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from qa.render import count
from qa.results import Answer
from qa.sanitize import safe_text

_INLINE = re.compile(r"([\\`*_\[\]<>&~|$#])")
"""Characters that start Markdown (CommonMark and GitHub's) inline syntax or raw HTML and entities."""
_LINE_START = re.compile(r"^([-+=]|\d+[.)])")
"""What makes a line a heading, list item or setext underline when it starts it."""
_BACKTICKS = re.compile(r"`+")


def md_text(text: str) -> str:
    """Untrusted text as one line of literal Markdown text: control characters and escapes dropped,
    whitespace (line breaks too) collapsed, every character with Markdown meaning backslash-escaped."""
    flat = " ".join(safe_text(text).split())
    flat = _INLINE.sub(r"\\\1", flat)
    return _LINE_START.sub(lambda m: m.group(1)[:-1] + "\\" + m.group(1)[-1], flat, count=1)


def md_code(text: str) -> str:
    """Untrusted text (a file name, a label) as an inline code span that no backtick inside it can end."""
    flat = " ".join(safe_text(text).split())
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def _scope(sources: Sequence[str]) -> str:
    return "all documents" if not sources else ", ".join(md_code(s) for s in sources)


def answer_markdown(answer: Answer) -> str:
    """One turn: the question, mode and filter, the answer (or 'not in the documents') and its citations."""
    lines = [
        f"## Q: {md_text(answer.question)}",
        "",
        f"Mode: {md_text(answer.mode)} · filter: {_scope(answer.sources)}",
        "",
    ]
    if answer.found and answer.answer is not None:
        span = answer.answer
        lines += [
            f"**Answer** (confidence {span.confidence:.2f}, {md_code(span.citation.label)}):",
            "",
            f"> {md_text(span.citation.text)}",
            "",
        ]
    else:
        lines += ["**Not in the documents.** Nearest passages:", ""]
    for p in answer.passages:
        c = p.citation
        stale = " (stale)" if c.stale else ""
        lines.append(
            f"{p.rank}. {md_code(c.label)} chars {c.char_start}-{c.char_end}, score {p.scores.score:.3f}{stale}"
        )
        lines.append(f"   > {md_text(c.text)}")
    return "\n".join(lines) + "\n"


def unanswered_markdown(question: str) -> str:
    """A turn that has no answer (still waiting, failed, or the chat closed first)."""
    return f"## Q: {md_text(question)}\n\n*Not answered.*\n"


def conversation_markdown(corpus: str, turns: Sequence[tuple[str, Answer | None]], when: str) -> str:
    """Every turn, oldest first, under a title naming the corpus and the time of the export."""
    head = f"# qa conversation over {md_text(corpus)}\n\nExported {md_text(when)}; {count(len(turns), 'question')}.\n"
    parts = [answer_markdown(a) if a is not None else unanswered_markdown(q) for q, a in turns]
    return "\n".join([head, *parts])


def write_new(directory: Path, stem: str, text: str) -> Path:
    """Write text to directory/stem.md, or stem-2.md, stem-3.md… : never over an existing file (or link)."""
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = directory / (f"{stem}.md" if n == 1 else f"{stem}-{n}.md")
        try:
            with path.open("x", encoding="utf-8") as out:  # "x": fails if the name exists, even as a symlink
                out.write(text)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"{directory / stem}.md and 998 numbered variants exist")
