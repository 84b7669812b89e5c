"""Tables as text: a row on its own line, its cells named by the header row when there is one, so a
row read alone still says what its values are ("| Berth: A1 | Fee per night: 40 EUR |")."""

from __future__ import annotations

from collections.abc import Sequence


def table_lines(rows: Sequence[Sequence[str]], header: bool = False) -> list[str]:
    """One line per row, written as a Markdown table row ("| A1 | 40 EUR |": the chunker then never joins two
    rows into one sentence), empty cells left out. With header (and more than one row), the first row names
    the cells of each other row that has as many: "heading: value" pairs; other rows keep their cells as they are."""
    head = rows[0] if header and len(rows) > 1 else None
    lines = [[c for c in head if c]] if head else []
    for cells in rows[1:] if head else rows:
        if head and len(cells) == len(head):
            lines.append([f"{h}: {v}" if h else v for h, v in zip(head, cells) if v])
        else:
            lines.append([c for c in cells if c])
    return [f"| {' | '.join(cells)} |" for cells in lines if cells]
