"""Plain text files: decoding their bytes, and the text conventions every reader shares (page breaks)."""

from __future__ import annotations

import codecs
import re

from index.errors import UndecodableError

SUFFIXES = frozenset({".txt", ".md", ".markdown", ".text", ".rst", ".org", ".adoc"})
"""Plain text and the light markups people write notes and documentation in, read as they are."""
VERSION = 2
"""Raise when what this reader makes of the same bytes changes (index/readers/__init__.py EXTRACTORS)."""


def read(data: bytes) -> tuple[str, str]:
    """A text file's (text, encoding): decoded as it is, line endings kept so offsets match the file."""
    return decode_bytes(data)


PAGE_BREAK = "\f"
"""Ends a page in a document's text (PDFs; plain text files that use form feeds count the same way)."""


CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
"""Control characters other than tabs and line breaks: they carry no words in extracted text (PDF, Word), and NUL
would also stop SQLite text."""


def page_at(text: str, offset: int) -> int | None:
    """1-based page of text[offset] when the text has page breaks, else None."""
    return text.count(PAGE_BREAK, 0, offset) + 1 if PAGE_BREAK in text else None


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode file bytes: BOM-marked UTF-8/16/32, then UTF-8, then cp1252; binary is refused.

    Returns (text, encoding). Line endings are kept as they are so offsets match the file.
    """
    for bom, name in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(name), name
            except UnicodeDecodeError as exc:
                raise UndecodableError(f"has a {name} byte-order mark but invalid {name} data") from exc
    if b"\x00" in data[:8192]:
        raise UndecodableError("looks binary (contains NUL bytes)")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    text = data.decode("cp1252", errors="replace")
    controls = sum(1 for ch in text[:8192] if ord(ch) < 32 and ch not in "\n\r\t\f")
    if controls > 0.05 * min(len(text), 8192):
        raise UndecodableError("looks binary (not UTF-8 and full of control bytes)")
    return text, "cp1252"
