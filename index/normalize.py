"""Unicode handling: a length-preserving fold for matching, so offsets into the original text stay valid."""

from __future__ import annotations

import re

# Every mapping is one character to one character, so a folded string can be
# searched and the match positions used directly on the original text.
_FOLD = str.maketrans(
    {
        "\u00a0": " ",  # no-break space
        "\u2007": " ",
        "\u202f": " ",
        "\u2009": " ",
        "\u200a": " ",
        "\u2002": " ",
        "\u2003": " ",
        "\u3000": " ",
        "\t": " ",
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u2010": "-",
        "\u2011": "-",
    }
)

_WS = re.compile(r"\s+")


def fold(text: str) -> str:
    """Map look-alike characters (NBSP, curly quotes, dashes) to ASCII, keeping the length."""
    return text.translate(_FOLD)


def squash(text: str) -> str:
    """Fold and collapse runs of whitespace: the form used to compare spans."""
    return _WS.sub(" ", fold(text)).strip()


WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
"""A word as the answer checks read it: letters and digits, with one inner apostrophe ("Putin's")."""
