"""Making untrusted document text safe to print: no escape sequences, no control characters."""

from __future__ import annotations

import re

# CSI/OSC/other ESC sequences, then any remaining C0/C1 control characters except tab and newline.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]|\x9d[^\x07\x9c]*[\x07\x9c]?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe_text(text: str) -> str:
    """Strip terminal escape sequences and control characters; keep newlines and tabs. Length may change."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


def safe_line(text: str) -> str:
    """safe_text for names shown on one line (file names, labels): line breaks and tabs become \\n and \\t."""
    return safe_text(text.replace("\n", "\\n").replace("\t", "\\t"))


def safe_same_length(text: str) -> str:
    """Replace escape/control characters with U+FFFD one for one, so offsets still line up."""

    def blank(match: re.Match) -> str:
        return "\ufffd" * len(match.group())

    return _CONTROLS.sub(blank, _ESCAPES.sub(blank, text))
