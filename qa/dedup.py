"""Collapsing near-duplicate passages (the same fact syndicated in two articles) into one hit."""

from __future__ import annotations

import re

from index.normalize import fold

_WORD = re.compile(r"\w+")


def shingles(text: str, n: int = 3) -> frozenset[tuple[str, ...]]:
    words = _WORD.findall(fold(text).lower())
    if len(words) < n:
        return frozenset([tuple(words)]) if words else frozenset()
    return frozenset(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def resemblance(a: frozenset, b: frozenset) -> float:
    """Containment of the smaller shingle set in the larger: 1.0 when one passage repeats the other."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def overlap_ratio(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0])
    if inter <= 0:
        return 0.0
    return inter / min(a[1] - a[0], b[1] - b[0])
