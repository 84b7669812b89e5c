"""Making untrusted document text safe to print: no escape sequences, no control characters."""

from __future__ import annotations

import re
from collections.abc import Sequence

# CSI/OSC/other ESC sequences, then any remaining C0/C1 control characters except tab and newline.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|"
    r"\x9b[0-?]*[ -/]*[@-~]|\x9d[^\x07\x9c]*[\x07\x9c]?"
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_UNSAFE = re.compile(f"{_ESCAPES.pattern}|{_CONTROLS.pattern}")
"""Either, escape sequences first: removing them in one pass is removing escapes, then controls."""


def safe_text(text: str) -> str:
    """Strip terminal escape sequences and control characters; keep newlines and tabs. Length may change."""
    return _UNSAFE.sub("", text)


def safe_text_and_spans(text: str, spans: Sequence[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """safe_text(text), and spans (start, end) into text moved so they cover the same characters of it."""
    cuts = [m.span() for m in _UNSAFE.finditer(text)]

    def moved(i: int) -> int:
        return i - sum(min(end, i) - start for start, end in cuts if start < i)

    return _UNSAFE.sub("", text), [(moved(start), moved(end)) for start, end in spans]


def safe_line(text: str) -> str:
    """safe_text for names shown on one line (file names, labels): line breaks and tabs become \\n and \\t."""
    return safe_text(text.replace("\n", "\\n").replace("\t", "\\t"))


def safe_same_length(text: str) -> str:
    """Replace escape/control characters with U+FFFD one for one, so offsets still line up."""

    def blank(match: re.Match) -> str:
        return "\ufffd" * len(match.group())

    return _CONTROLS.sub(blank, _ESCAPES.sub(blank, text))


_LINE_BREAK = re.compile(r"[ \t]*\r?\n\s*")


_LEADING_MARKER = re.compile(r"(?:#{1,6}|[-*+•>]|\d{1,3}[.)])[ \t]+(?=\S)")


def unwrapped(text: str, spans: Sequence[tuple[int, int]] = ()) -> tuple[str, list[tuple[int, int]]]:
    """An answer sentence on one line: each line break, with the spaces around it (a hard-wrapped file's
    indentation), becomes one space, and a Markdown list, quote or heading marker it starts with ("- ",
    "1. ", "> ", "## ") is left out; a heading keeps its own line above what follows it. Spans (start,
    end) into text are moved to cover the same words. Citations keep the file's own offsets: only what
    is shown changes."""
    parts: list[str] = []
    where: list[int] = []  # where[i]: offset in the result of text[i]
    marker = _LEADING_MARKER.match(text)
    at = marker.end() if marker else 0
    where.extend([0] * at)
    shown = 0
    heading = marker is not None and marker.group().startswith("#")
    for match in _LINE_BREAK.finditer(text):
        kept = match.start() - at
        where.extend(range(shown, shown + kept))
        where.extend([shown + kept] * (match.end() - match.start()))
        parts += [text[at : match.start()], "\n" if heading else " "]
        heading = False
        shown += kept + 1
        at = match.end()
    where.extend(range(shown, shown + len(text) - at + 1))  # and one past the end
    parts.append(text[at:])
    return "".join(parts), [(where[start], where[end]) for start, end in spans]
