"""Tables as text: a row on its own line, its cells named by the header row when there is one, so a
row read alone still says what its values are ("| Berth: A1 | Fee per night: 40 EUR |")."""

from __future__ import annotations

from typing import Sequence


def table_lines(rows: Sequence[Sequence[str]], header: Sequence[str] | None = None) -> list[str]:
    """One line per row, written as a Markdown table row ("| A1 | 40 EUR |": the chunker then never joins two
    rows into one sentence), empty cells left out: the header row's cells, then each other row as "heading:
    value" pairs when it has as many cells as the header, else its cells as they are."""
    lines = [[c for c in header if c]] if header else []
    for cells in rows:
        if header and len(cells) == len(header):
            lines.append([f"{h}: {v}" if h else v for h, v in zip(header, cells) if v])
        else:
            lines.append([c for c in cells if c])
    return [f"| {' | '.join(cells)} |" for cells in lines if cells]
