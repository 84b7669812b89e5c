"""Reading one file into text: a reader per format, chosen by the file's suffix."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from index.errors import UndecodableError
from index.readers import docx, html, pdf, text


@dataclass(frozen=True)
class Reader:
    """One way of turning a file's bytes into text."""

    kind: str
    """Its name in the manifest and in EXTRACTORS: text, html, pdf or docx."""
    suffixes: frozenset[str]
    """The lower-case suffixes of the files it reads."""
    read: Callable[[bytes], tuple[str, str]]
    """bytes -> (text, encoding); raises UndecodableError with a reason the user can act on."""


READERS = (
    Reader("text", text.SUFFIXES, text.read),
    Reader("html", html.SUFFIXES, html.read),
    Reader("pdf", pdf.SUFFIXES, pdf.read),
    Reader("docx", docx.SUFFIXES, docx.read),
)
_BY_SUFFIX = {suffix: reader for reader in READERS for suffix in reader.suffixes}
SUPPORTED_SUFFIXES = frozenset(_BY_SUFFIX)
SUPPORTED_NOTE = "indexes .txt, .md, .rst, .org, .adoc, .html, .pdf, .docx"
EXTRACTORS = {"text": text.VERSION, "html": html.VERSION, "pdf": pdf.VERSION, "docx": docx.VERSION}
"""Version of each reader, recorded in the manifest. A reader's VERSION goes up when what it makes of the same
bytes changes: an incremental run then reads that kind of file again, instead of keeping text that the stale
check, which extracts anew, no longer finds; a file whose passages come out the same is kept, not embedded again
(index/builder.py)."""
DEFAULT_MAX_FILE_BYTES = 20_000_000  # the CLI's --max-file-mb default (20, in 10^6 bytes)


@dataclass(frozen=True)
class Document:
    """One readable document, with the exact text that citations point into."""

    source: str
    """Path relative to the corpus root, with forward slashes; what citations name."""
    path: Path
    """Absolute path of the file on disk."""
    text: str
    """Decoded text (extracted text for HTML); char and line offsets refer to this."""
    sha256: str
    """Hash of the file's bytes, used to detect changes between index runs."""
    encoding: str
    """How the bytes were decoded: utf-8, utf-16, cp1252, or the reader's kind (html, pdf, docx)."""


def suffix_of(name: str) -> str:
    """A file name's suffix in lower case, as pathlib's Path.suffix gives it ("" for ".bashrc" or "notes.")."""
    dot = name.rfind(".")
    return name[dot:].lower() if 0 < dot < len(name) - 1 else ""


def reader_of(name: str) -> Reader:
    """The reader of a file, by its suffix; plain text for a suffix no reader claims."""
    return _BY_SUFFIX.get(suffix_of(name), READERS[0])


def extractor_of(source: str) -> str:
    """Which EXTRACTORS entry reads this file."""
    return reader_of(source).kind


def read_text(path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> tuple[str, str, str]:
    """Read one file as (text, encoding, sha256 of bytes). Raises OSError/UndecodableError."""
    size = path.stat().st_size
    if size > max_bytes:
        raise UndecodableError(
            f"is {size / 1e6:.0f} MB, over the {max_bytes / 1e6:.0f} MB limit (raise it with --max-file-mb)"
        )
    data = path.read_bytes()
    read = reader_of(path.name).read
    return *read(data), hashlib.sha256(data).hexdigest()


def relative_source(path: Path, root: Path) -> str:
    """A file's source name: its path relative to root with forward slashes (its name alone outside root)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def load_document(
    path: Path, root: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES, source: str | None = None
) -> Document:
    """Read one file into a Document (source: its name, when the caller has it already); raises OSError or
    UndecodableError with a usable reason."""
    content, encoding, digest = read_text(path, max_bytes)
    return Document(
        source=source or relative_source(path, root), path=path, text=content, sha256=digest, encoding=encoding
    )
