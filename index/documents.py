"""Finding and reading documents: walk folders, decode bytes, extract HTML text."""

from __future__ import annotations

import codecs
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from index.errors import InputError

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES
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
    """How the bytes were decoded: utf-8, utf-16, cp1252 or html."""


@dataclass(frozen=True)
class Skipped:
    """A file (or folder) left out of the index, with the reason shown to the user."""

    path: str
    reason: str


class UndecodableError(ValueError):
    """The bytes are not text in any encoding we accept."""


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


def html_to_text(markup: str) -> str:
    """Visible text of an HTML page, one block per line, scripts and styles dropped."""
    from bs4 import BeautifulSoup, NavigableString

    soup = BeautifulSoup(markup, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    # Source line wraps and inline tags (<a>, <em>) must not cut a sentence: collapse ASCII
    # whitespace inside text (NBSP is content and stays), then break lines only at blocks.
    for node in soup.find_all(string=True):
        if type(node) is NavigableString and node.find_parent("pre") is None:
            node.replace_with(_HTML_SPACE.sub(" ", str(node)))
    for tag in soup.find_all(_HTML_BLOCKS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    lines = (line.strip(" \t\r\f\v") for line in soup.get_text().splitlines())
    return "\n".join(line for line in lines if line.strip())


_HTML_SPACE = re.compile(r"[ \t\r\n\f\v]+")
_HTML_BLOCKS = [
    "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div", "dl", "dt",
    "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
    "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "td", "th", "tr", "ul",
]


def read_text(path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> tuple[str, str, str]:
    """Read one file as (text, encoding, sha256 of bytes). Raises OSError/UndecodableError."""
    size = path.stat().st_size
    if size > max_bytes:
        raise UndecodableError(
            f"is {size / 1e6:.0f} MB, over the {max_bytes / 1e6:.0f} MB limit (raise it with --max-file-mb)"
        )
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    text, encoding = decode_bytes(data)
    if path.suffix.lower() in HTML_SUFFIXES:
        return html_to_text(text), "html", digest
    return text, encoding, digest


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def corpus_root(paths: list[Path]) -> Path:
    """The folder that sources are named relative to: the folder itself, or the common parent."""
    resolved = [p.resolve() for p in paths]
    if len(resolved) == 1:
        return resolved[0] if resolved[0].is_dir() else resolved[0].parent
    common = Path(os.path.commonpath([str(p) for p in resolved]))
    return common if common.is_dir() else common.parent


def _walk_folders(top: Path, skipped: list[Skipped]):
    """Top-down walk like os.walk, but without recursion (os.walk overflows the stack on deep
    trees before Python 3.12) and reporting unreadable folders instead of ignoring them.
    Yields (dirpath, dirnames, filenames); prune dirnames in place as with os.walk."""
    stack = [str(top)]
    while stack:
        here = stack.pop()
        try:
            with os.scandir(here) as entries:
                listing = [(entry.name, _is_dir(entry)) for entry in entries]
        except OSError as exc:
            skipped.append(Skipped(here, f"folder not readable: {describe_os_error(exc)}"))
            continue
        dirnames = [name for name, is_dir in listing if is_dir]
        filenames = [name for name, is_dir in listing if not is_dir]
        yield here, dirnames, filenames
        stack.extend(os.path.join(here, name) for name in reversed(dirnames))


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def iter_candidate_files(paths: list[Path]) -> tuple[list[Path], list[Skipped]]:
    """Every supported file under the given paths (recursively), plus what was skipped and why."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    seen: set[Path] = set()
    for given in paths:
        if not given.exists():
            raise InputError(f"No such file or folder: {given}.", "Check the path and try again.")
        if given.is_file():
            suffix = given.suffix.lower()
            if suffix not in SUPPORTED_SUFFIXES:
                skipped.append(Skipped(str(given), f"unsupported type '{suffix or 'no extension'}' (indexes .txt, .md, .html)"))
            elif given.resolve() not in seen:  # named twice (or also inside a named folder): read once
                seen.add(given.resolve())
                files.append(given.resolve())
            continue
        for dirpath, dirnames, filenames in _walk_folders(given, skipped):
            here = Path(dirpath)
            keep = []
            for name in sorted(dirnames):
                sub = here / name
                if name.startswith("."):
                    continue  # .git, .venv and friends: never documents
                if sub.is_symlink():
                    skipped.append(Skipped(str(sub), "symbolic link to a folder, not followed"))
                    continue
                keep.append(name)
            dirnames[:] = keep
            for name in sorted(filenames):
                path = here / name
                if name.startswith("."):
                    continue
                suffix = path.suffix.lower()
                if suffix not in SUPPORTED_SUFFIXES:
                    skipped.append(Skipped(str(path), f"unsupported type '{suffix or 'no extension'}' (indexes .txt, .md, .html)"))
                    continue
                try:
                    real = path.resolve(strict=True)
                except (OSError, RuntimeError):
                    skipped.append(Skipped(str(path), "broken or looping symbolic link"))
                    continue
                if not real.is_file():
                    skipped.append(Skipped(str(path), "not a regular file"))
                    continue
                if real in seen:
                    continue
                seen.add(real)
                files.append(path.absolute())
    return files, skipped


def load_document(path: Path, root: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Document:
    """Read one file into a Document; raises OSError or UndecodableError with a usable reason."""
    text, encoding, digest = read_text(path, max_bytes)
    return Document(source=_relative(path, root), path=path, text=text, sha256=digest, encoding=encoding)


def describe_os_error(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied (check the file's permissions)"
    return exc.strerror or str(exc)
