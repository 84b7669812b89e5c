"""Rows into PostgreSQL with binary COPY, for the store's catalog and BM25 writers."""

from __future__ import annotations

from collections.abc import Sequence


def copy_rows(conn, target: str, types: Sequence[str], rows) -> None:
    """COPY rows into target ("table (columns)") in PostgreSQL's binary format: no text to format on this side
    nor to parse on the server's (types: the columns' type names, in order)."""
    with conn.cursor().copy(f"COPY {target} FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)
