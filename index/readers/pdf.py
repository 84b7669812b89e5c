"""PDF files: their text layer, through pypdf, with page breaks kept and line wrapping undone."""

from __future__ import annotations

import io
import logging
import re

from index.chunker import starts_block, wrap_width, wrapped_at
from index.errors import UndecodableError
from index.readers.text import CONTROL_CHARACTERS, PAGE_BREAK

SUFFIXES = frozenset({".pdf"})
VERSION = 4
"""Raise when what this reader makes of the same bytes changes (index/readers/__init__.py EXTRACTORS)."""


def read(data: bytes) -> tuple[str, str]:
    """A PDF's (text, "pdf"); pages are separated by PAGE_BREAK lines."""
    return pdf_to_text(data), "pdf"


def pdf_to_text(data: bytes) -> str:
    """The text layer of a PDF (pypdf), each page break a line holding only a form feed (PAGE_BREAK, as
    pdftotext writes them), so a citation's page can be counted from the text. Raises UndecodableError
    for a damaged or password-protected file; a scanned PDF without a text layer gives "" (pages only)."""
    from pypdf import PdfReader  # deferred: slow to import, and only PDFs need it

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings about odd files would reach the terminal
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UndecodableError("is a password-protected PDF (save an unprotected copy to index it)")
        pages = [page.extract_text() or "" for page in reader.pages]
    except UndecodableError:
        raise
    except Exception as exc:  # pypdf raises many kinds on damaged files; all mean the same to the user
        raise UndecodableError(f"is not a readable PDF ({type(exc).__name__}: {str(exc)[:80]})") from exc
    # Control characters (other than line breaks and tabs) carry no words; NUL would also stop SQLite text.
    pages = _without_running_lines(
        [CONTROL_CHARACTERS.sub(" ", page.replace("\r\n", "\n").replace("\r", "\n")).strip("\n") for page in pages]
    )
    cleaned = [_reflow(page) for page in pages]
    return f"\n{PAGE_BREAK}\n".join(cleaned) if any(page.strip() for page in cleaned) else ""


RUNNING_EDGE = 2
"""How many lines at the top and at the bottom of a page may be a running head or foot."""
RUNNING_SHARE = 0.6
"""A line is a running head or foot when it (its digits aside) opens or closes at least this share of the pages."""


def _without_running_lines(pages: list[str]) -> list[str]:
    """The pages without their running heads and feet: a line among the first or last RUNNING_EDGE of a page that
    recurs, its digits aside ("Page 3 of 12", "ACME annual report 2025"), at an edge of at least RUNNING_SHARE of
    the pages (3 at least). They would otherwise sit in the middle of passages, between a page's last sentence
    and the next page's first, and be matched by questions about them."""
    if len(pages) < 3:
        return pages

    def key(line: str) -> str:
        return _DIGITS.sub("#", " ".join(line.split()))

    def edges(lines: list[str]) -> set[int]:
        return set(range(min(RUNNING_EDGE, len(lines)))) | set(range(max(0, len(lines) - RUNNING_EDGE), len(lines)))

    def candidate(line: str) -> bool:  # short, and not a sentence: "Boats must call." on every page is content
        text = line.strip()
        return bool(text) and len(text) <= RUNNING_LONGEST and not _SENTENCE_END_AT.search(text)

    split = [page.split("\n") for page in pages]
    counts: dict[str, int] = {}
    for lines in split:
        for k in {key(lines[i]) for i in edges(lines) if candidate(lines[i])}:
            counts[k] = counts.get(k, 0) + 1
    running = {k for k, n in counts.items() if n >= max(3, RUNNING_SHARE * len(pages))}
    if not running:
        return pages
    kept = []
    for lines in split:
        edge = edges(lines)
        kept.append(
            "\n".join(
                line for i, line in enumerate(lines) if not (i in edge and candidate(line) and key(line) in running)
            ).strip("\n")
        )
    return kept


_DIGITS = re.compile(r"\d+")
_SENTENCE_END_AT = re.compile(r"[.!?…][\"'”’»)\]]*$")
RUNNING_LONGEST = 100
"""Running heads and feet are short lines: a longer one is kept whatever it repeats."""


def _reflow(page: str) -> str:
    """Undo a PDF's line wrapping inside sentences, which would cut them into one unit per line: a line
    that does not end a sentence, followed by one starting in lower case, continues it ("informa-" +
    "tion" → "information"; "asn1_der_" + "decoding()" → "asn1_der_decoding()"); on a page whose lines
    are wrapped at one width (index/chunker.py wrap_width), so does a line filled to it, followed by
    one that does not start a block ("New Jersey," + "United States"). Headings, list items and
    lines ending in . ! ? : ; stay lines."""
    width = wrap_width(page.split("\n"))

    def filled(m: re.Match) -> bool:
        line = page[page.rfind("\n", 0, m.start()) + 1 : m.start()]
        following = page[m.end() : page.find("\n", m.end()) % (len(page) + 1)]
        return wrapped_at(line, following, width) and not starts_block(following)

    def join(m: re.Match) -> str:
        before, after = page[: m.start()].rstrip("\"'”’»)]}"), page[m.end() : m.end() + 1]
        if not (after.islower() or filled(m)) or not before or before[-1].isspace() or before[-1] in ".!?:;…":
            return m.group()
        if m.group(1):  # a word hyphenated across the break
            return "" if before[-1].isalpha() else m.group()
        return "" if before[-1] == "_" else " "  # a name wrapped after an underscore

    return _PDF_LINE_END.sub(join, page)


_PDF_LINE_END = re.compile(r"(-?)[ \t]*\n[ \t]*(?=\S)")
