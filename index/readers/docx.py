"""Word documents (.docx): their text, in reading order, through python-docx."""

from __future__ import annotations

import io
import zipfile

from index.errors import UndecodableError
from index.readers.text import CONTROL_CHARACTERS
from index.tables import table_lines

SUFFIXES = frozenset({".docx"})
VERSION = 2
"""Raise when what this reader makes of the same bytes changes (index/readers/__init__.py EXTRACTORS)."""
MOST_UNPACKED = 50
"""A .docx is a zip of XML: one that unpacks to more than this many times its size (and to over
UNPACKED_FLOOR bytes) is refused rather than read into memory (a zip bomb; real documents unpack to
2-10 times their size, their pictures hardly at all)."""
UNPACKED_FLOOR = 50_000_000


def read(data: bytes) -> tuple[str, str]:
    """A Word document's (text, "docx")."""
    return docx_to_text(data), "docx"


def docx_to_text(data: bytes) -> str:
    """The text of a Word document: each paragraph a line, in the order they appear, headings and list
    items included, each table row a line of its cells joined by " | " (a cell merged across columns
    once; named by a header row: index/tables.py). Headers, footers, comments and footnotes are left out.
    Raises UndecodableError for a file that is not a readable .docx (damaged, password-protected, a zip bomb)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise UndecodableError(
            "is not a readable Word document (damaged, or password-protected: save an unprotected copy)"
        ) from exc
    if unpacked > max(UNPACKED_FLOOR, MOST_UNPACKED * len(data)):
        raise UndecodableError(
            f"unpacks to {unpacked / 1e6:.0f} MB from {len(data) / 1e6:.1f} MB: not read (a zip bomb?)"
        )
    from docx import Document  # deferred: python-docx and lxml are slow to import, and only .docx needs them

    try:
        document = Document(io.BytesIO(data))
        lines = [line for block in document.iter_inner_content() for line in _lines(block)]
    except Exception as exc:  # python-docx and lxml raise many kinds on damaged files; all mean the same to the user
        raise UndecodableError(f"is not a readable Word document ({type(exc).__name__}: {str(exc)[:80]})") from exc
    cleaned = (CONTROL_CHARACTERS.sub(" ", line.replace("\r\n", "\n").replace("\r", "\n")).strip() for line in lines)
    return "\n".join(line for line in cleaned if line)


def _lines(block) -> list[str]:
    """A paragraph's text, or a table's rows (index/tables.py; tables inside cells read as their cells' text).
    The first row names the others' cells when Word marks it as the header ("Repeat as header row")."""
    from docx.table import Table  # deferred with docx_to_text's import

    if not isinstance(block, Table):
        return [block.text]
    rows = []
    for row in block.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell is listed once per column it spans
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(cell.text.split()))
        rows.append(cells)
    return table_lines(rows, header=bool(rows) and _is_header(block.rows[0]))


def _is_header(row) -> bool:
    from docx.oxml.ns import qn  # deferred with docx_to_text's import

    properties = row._tr.trPr
    flag = None if properties is None else properties.find(qn("w:tblHeader"))
    return flag is not None and flag.get(qn("w:val"), "true") not in ("false", "0", "off")
