"""Finding and reading documents: walk folders, decode bytes, extract HTML, PDF and Word text."""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import stat as stat_mode
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from index.chunker import starts_block, wrap_width, wrapped_at
from index.errors import InputError

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text", ".rst", ".org", ".adoc"}
"""Plain text and the light markups people write notes and documentation in, read as they are."""
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
PDF_SUFFIXES = {".pdf"}
DOCX_SUFFIXES = {".docx"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES | DOCX_SUFFIXES
EXTRACTORS = {"text": 2, "html": 5, "pdf": 4, "docx": 2}
"""Version of each way of turning a file into text and sentences. Raise one when what it makes of the
same bytes changes: an incremental run then reads that kind of file again (recorded in the manifest),
instead of keeping text that the stale check, which extracts anew, no longer finds; a file whose
passages come out the same is kept, not embedded again (index/builder.py). pdf 2: a line ending in
an underscore is joined to the next without a space. text 2, html 2, pdf 3: a line break that only
wraps a sentence no longer ends it (index/chunker.py soft_breaks). html 3, docx 2: a table row is one line,
its cells named by a header row (index/tables.py); html tables used to give one line per cell. html 4: a
definition list's <dd> starts with its terms, which used to be lines of their own. pdf 4: running heads
and feet ("Page 3 of 12") are left out. html 5: menus (<nav>) are dropped, and a page's <main> or
<article>s stand for it (_keep_the_content)."""
SUPPORTED_NOTE = "indexes .txt, .md, .rst, .org, .adoc, .html, .pdf, .docx"
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
    other_type: bool = False
    """Left out for its type alone (a picture, a script): reports list many such files as one line."""


RACY_NS = 2_000_000_000
"""A file changed this close to the start of a scan may change again with the same times (coarse
file-system clocks; FAT keeps 2 s), so its stat is not trusted by the next run (git's "racy clean")."""


class FileStat(NamedTuple):
    """What os.stat said about a file when it was read; equal next run means unchanged, unread (as git does).

    A NamedTuple, not a dataclass: a scan builds and compares one per file, 5,000 in a few ms.
    """

    size: int
    mtime_ns: int
    ctime_ns: int
    """Changes on every write and cannot be set back (unlike mtime, which cp -p, rsync -t and tar restore)."""
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)

    def racy(self, scan_started_ns: int) -> bool:
        return max(self.mtime_ns, self.ctime_ns) >= scan_started_ns - RACY_NS


@dataclass(frozen=True)
class Scan:
    """The files of a corpus, split into what must be read and what a previous run saw unchanged."""

    root: Path
    documents: list[Document]
    """Files read this run (new, changed, or touched with the same bytes)."""
    stats: dict[str, FileStat]
    """source -> stat taken before reading, for read files whose stat can be trusted next run."""
    unchanged: dict[str, str]
    """source -> path of files whose stat equals the recorded one: not read."""
    skipped: list[Skipped]


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
    """Visible text of an HTML page, one block per line, scripts, styles and menus dropped; of a saved web
    page whose <main> (or <article>s) holds the text, that text and its headline alone (_keep_the_content)."""
    from bs4 import BeautifulSoup, NavigableString

    soup = BeautifulSoup(markup, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "head", "nav"]):
        tag.decompose()
    for tag in soup.find_all(attrs={"role": "navigation"}):
        tag.decompose()
    _keep_the_content(soup)
    # Source line wraps and inline tags (<a>, <em>) must not cut a sentence: collapse ASCII
    # whitespace inside text (NBSP is content and stays), then break lines only at blocks.
    for node in soup.find_all(string=True):
        if type(node) is NavigableString and node.find_parent("pre") is None:
            node.replace_with(_HTML_SPACE.sub(" ", str(node)))
    for table in reversed(soup.find_all("table")):  # inner tables first: an outer cell then holds their text
        table.replace_with("\n" + "\n".join(_html_table_lines(table)) + "\n")
    for terms in soup.find_all("dl"):
        _name_definitions(terms)
    for tag in soup.find_all(_HTML_BLOCKS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    lines = (line.strip(" \t\r\f\v") for line in soup.get_text().splitlines())
    return "\n".join(line for line in lines if line.strip())


CONTENT_WORDS = 20
"""A page's <main> or <article>s stand for the page only when they hold at least this many words."""


def _keep_the_content(soup) -> None:
    """A saved web page around its text: when <main> (or role="main"), else the page's <article>s, hold the
    text, only they and the <h1> headlines before them stay; site headers, sidebars, footers and "read more"
    lists go (they used to be passages: "© 2025 ACME. All rights reserved.", "Sign up for our newsletter")."""
    main = soup.find("main") or soup.find(attrs={"role": "main"})
    kept = [main] if main is not None else [a for a in soup.find_all("article") if a.find_parent("article") is None]
    if not kept or sum(len(k.get_text(" ").split()) for k in kept) < CONTENT_WORDS:
        return
    inside = {id(k) for k in kept}
    headlines = [h for h in soup.find_all("h1", limit=50) if not any(id(p) in inside for p in h.parents)]
    body = soup.body or soup
    parts = [part.extract() for part in headlines[:1] + kept]
    body.clear()
    for part in parts:
        body.append(part)


def _html_table_lines(table) -> list[str]:
    """A table's rows as lines (index/tables.py): a first row of <th> cells names the cells of the others."""
    from index.tables import table_lines

    rows = [
        tr.find_all(["td", "th"], recursive=False) for tr in table.find_all("tr") if tr.find_parent("table") is table
    ]
    return table_lines(
        [[_one_line(c) for c in row] for row in rows], header=bool(rows) and all(c.name == "th" for c in rows[0])
    )


def _one_line(element) -> str:
    """An element's text with its whitespace runs (line breaks, the gaps between its blocks) made one space."""
    return " ".join(element.get_text(" ").split())


def _name_definitions(terms) -> None:
    """A definition list's <dd> read alone does not say what it defines: each starts with its terms
    ("Berth: A place where a boat is moored."), and the <dt> lines go."""
    named: list[str] = []
    after_definition = False
    for item in terms.find_all(["dt", "dd"]):
        if item.find_parent("dl") is not terms:
            continue
        if item.name == "dt":
            named = [] if after_definition else named
            named.append(_one_line(item))
            after_definition = False
            item.decompose()
        else:
            if named:
                item.insert(0, " / ".join(t for t in named if t) + ": ")
            after_definition = True


def pdf_to_text(data: bytes) -> str:
    """The text layer of a PDF (pypdf), each page break a line holding only a form feed (PAGE_BREAK, as
    pdftotext writes them), so a citation's page can be counted from the text. Raises UndecodableError
    for a damaged or password-protected file; a scanned PDF without a text layer gives "" (pages only)."""
    import io
    import logging

    from pypdf import PdfReader

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
PAGE_BREAK = "\f"
"""Ends a page in a document's text (PDFs; plain text files that use form feeds count the same way)."""
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
"""Control characters other than tabs and line breaks: they carry no words in extracted text (PDF, Word), and NUL
would also stop SQLite text."""


def extractor_of(source: str) -> str:
    """Which EXTRACTORS entry reads this file, by its suffix (read_text dispatches on it)."""
    suffix = os.path.splitext(source)[1].lower()
    return (
        "pdf"
        if suffix in PDF_SUFFIXES
        else "docx"
        if suffix in DOCX_SUFFIXES
        else "html"
        if suffix in HTML_SUFFIXES
        else "text"
    )


def page_at(text: str, offset: int) -> int | None:
    """1-based page of text[offset] when the text has page breaks, else None."""
    return text.count(PAGE_BREAK, 0, offset) + 1 if PAGE_BREAK in text else None


_HTML_SPACE = re.compile(r"[ \t\r\n\f\v]+")
_HTML_BLOCKS = [
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "caption",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "td",
    "th",
    "tr",
    "ul",
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
    kind = extractor_of(path.name)
    if kind == "pdf":
        return pdf_to_text(data), "pdf", digest
    if kind == "docx":
        from index.word import docx_to_text

        return docx_to_text(data), "docx", digest
    text, encoding = decode_bytes(data)
    if kind == "html":
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


def _walk_folders(top: str, skipped: list[Skipped]):
    """Top-down walk like os.walk, but without recursion (os.walk overflows the stack on deep
    trees before Python 3.12) and reporting unreadable folders instead of ignoring them.
    Yields (dirpath, real dirpath, dirnames, file entries); prune dirnames in place as with os.walk.
    Sub-folders reached through symbolic links are never walked, so a folder's real path is its
    parent's plus its name: one realpath per walk, not one per file."""
    stack = [(top, os.path.realpath(top))]
    while stack:
        here, real_here = stack.pop()
        try:
            with os.scandir(here) as entries:
                listing = [(entry, _is_dir(entry)) for entry in entries]
        except OSError as exc:
            skipped.append(Skipped(here, f"folder not readable: {describe_os_error(exc)}"))
            continue
        dirnames = [entry.name for entry, is_dir in listing if is_dir]
        files = [entry for entry, is_dir in listing if not is_dir]
        yield here, real_here, dirnames, files
        stack.extend((os.path.join(here, name), os.path.join(real_here, name)) for name in reversed(dirnames))


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def iter_candidate_files(paths: list[Path]) -> tuple[list[Path], list[Skipped]]:
    """Every supported file under the given paths (recursively), plus what was skipped and why."""
    files, skipped = _candidate_files(paths)
    return [Path(f) for f in files], skipped


def _candidate_files(paths: list[Path]) -> tuple[list[str], list[Skipped]]:
    """iter_candidate_files with paths as strings: a scan of 5,000 unchanged files is mostly this walk,
    and pathlib costs several times the system calls here (d_type from scandir answers most questions)."""
    files: list[str] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()
    for given in paths:
        given = Path(given)
        if not given.exists():
            raise InputError(f"No such file or folder: {given}.", "Check the path and try again.")
        if given.is_file():
            suffix = given.suffix.lower()
            if suffix not in SUPPORTED_SUFFIXES:
                skipped.append(
                    Skipped(
                        str(given), f"unsupported type '{suffix or 'no extension'}' ({SUPPORTED_NOTE})", other_type=True
                    )
                )
            elif str(given.resolve()) not in seen:  # named twice (or also inside a named folder): read once
                seen.add(str(given.resolve()))
                files.append(str(given.resolve()))
            continue
        for here, real_here, dirnames, entries in _walk_folders(str(given.absolute()), skipped):
            keep = []
            for name in sorted(dirnames):
                if name.startswith("."):
                    continue  # .git, .venv and friends: never documents
                sub = os.path.join(here, name)
                if os.path.islink(sub):
                    skipped.append(Skipped(sub, "symbolic link to a folder, not followed"))
                    continue
                if is_index_folder(sub):
                    continue  # an --index-dir inside the corpus: ours, not the user's, so not reported either
                keep.append(name)
            dirnames[:] = keep
            real_prefix = os.path.join(real_here, "")
            for entry in sorted(entries, key=lambda e: e.name):
                name = entry.name
                if name.startswith(_NOT_DOCUMENTS):
                    continue
                path = entry.path  # here/name, made by scandir
                suffix = suffix_of(name)
                if suffix not in SUPPORTED_SUFFIXES:
                    skipped.append(
                        Skipped(
                            path, f"unsupported type '{suffix or 'no extension'}' ({SUPPORTED_NOTE})", other_type=True
                        )
                    )
                    continue
                try:
                    link = entry.is_symlink()
                except OSError:
                    link = True
                if link:
                    try:
                        real_path = Path(path).resolve(strict=True)
                    except (OSError, RuntimeError):
                        skipped.append(Skipped(path, "broken or looping symbolic link"))
                        continue
                    real, regular = str(real_path), real_path.is_file()
                else:
                    real, regular = real_prefix + name, _is_file(entry)
                if not regular:
                    skipped.append(Skipped(path, "not a regular file"))
                    continue
                if real in seen:
                    continue
                seen.add(real)
                files.append(path)
    return files, skipped


def suffix_of(name: str) -> str:
    """A file name's suffix in lower case, as pathlib's Path.suffix gives it ("" for ".bashrc" or "notes.")."""
    dot = name.rfind(".")
    return name[dot:].lower() if 0 < dot < len(name) - 1 else ""


def folder_prefix(folder: Path | str) -> str:
    """A folder's absolute path (not resolved: as the walk and the change feed name what is under it) with a
    trailing separator, for prefix tests."""
    return os.path.join(str(Path(folder).absolute()), "")


_NOT_DOCUMENTS = (".", "~$")
"""Names the walk never reads: hidden ones (.git, .venv, editors' swap files), and the owner files Microsoft
Office keeps beside a document while it is open ("~$rbour.docx", a few bytes that are no document)."""


def hidden_below(path: str, top: str) -> bool:
    """Whether a path under top (folder_prefix) has a part the walk never reads (_NOT_DOCUMENTS)."""
    *folders, name = path[len(top) :].split(os.sep)
    return name.startswith(_NOT_DOCUMENTS) or any(part.startswith(".") for part in folders)


INDEX_MARKERS = ("CURRENT", ".lock")
"""Files every qa index folder holds (index/store.py CURRENT and LOCK)."""


def is_index_folder(path: str) -> bool:
    """Whether a folder is a qa index (an --index-dir inside the corpus): its vocabulary files are .txt,
    and every update writes new ones, which would otherwise be indexed as documents, again and again."""
    return all(os.path.isfile(os.path.join(path, marker)) for marker in INDEX_MARKERS)


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def load_document(
    path: Path, root: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES, source: str | None = None
) -> Document:
    """Read one file into a Document (source: its name, when the caller has it already); raises OSError or
    UndecodableError with a usable reason."""
    text, encoding, digest = read_text(path, max_bytes)
    return Document(source=source or _relative(path, root), path=path, text=text, sha256=digest, encoding=encoding)


def scan_files(
    paths: list[Path],
    root: Path,
    known: Mapping[str, FileStat],
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
    progress: Callable[[str, int, int], None] = lambda stage, done, total: None,
    only: list[str] | None = None,
) -> Scan:
    """Walk paths; read every file whose stat differs from known[source] (unknown files included).
    only: look at these files instead of walking (changed_files' list; Scan.unchanged then lists only those).

    The stat is taken before reading: a write that lands during the read changes it again, so
    the next run reads the file once more instead of trusting stale text.
    """
    started = time.time_ns()
    files, skipped = _candidate_files(paths) if only is None else (only, [])
    documents: list[Document] = []
    stats: dict[str, FileStat] = {}
    unchanged: dict[str, str] = {}
    prefix = os.path.join(str(root), "")
    linked = _linked_folders(paths)
    for i, path in enumerate(files):
        progress("scan", i, len(files))
        source = _source_of(path, root, prefix, linked)
        try:
            st = os.stat(path)
            seen = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)  # equals a FileStat of the same values
            if st.st_size <= max_bytes and known.get(source) == seen:
                unchanged[source] = path
                continue
            stat = FileStat._make(seen)
            doc = load_document(Path(path), root, max_bytes, source)
        except UndecodableError as exc:
            skipped.append(Skipped(path, str(exc)))
            continue
        except OSError as exc:
            skipped.append(Skipped(path, describe_os_error(exc)))
            continue
        if not doc.text.strip():
            skipped.append(
                Skipped(
                    path,
                    "a PDF without a text layer (scanned? run OCR on it first)"
                    if doc.encoding == "pdf"
                    else "empty (no text to index)",
                )
            )
            continue
        documents.append(doc)
        if not stat.racy(started):
            stats[source] = stat
    progress("scan", len(files), len(files))
    return Scan(root, documents, stats, unchanged, skipped)


def _source_of(path: str, root: Path, prefix: str, linked: list[tuple[str, str]] = ()) -> str:
    """A file's source name (prefix: root with a trailing separator), as every scan names it. linked
    (_linked_folders): a path under a folder named through a symbolic link is first put in real terms,
    since root is a real path ("~/notes/sub/a.txt" with ~/notes -> /data/notes is "sub/a.txt")."""
    for named, real in linked:
        if path.startswith(named):
            path = real + path[len(named) :]
            break
    if path.startswith(prefix) and os.sep == "/":
        return path[len(prefix) :]
    return _relative(Path(path), root)


def _linked_folders(paths: list[Path]) -> list[tuple[str, str]]:
    """(folder as named + separator, its real path + separator) for each folder of paths that is reached
    through a symbolic link: the walk keeps the named form, sources are relative to real paths."""
    out = []
    for given in paths:
        named = folder_prefix(given)
        real = os.path.join(os.path.realpath(named), "")
        if named != real and os.path.isdir(named):
            out.append((named, real))
    return out


@dataclass(frozen=True)
class Hint:
    """What a change notification (index/changes.py) leaves to look at: an update reads these alone."""

    sources: tuple[str, ...]
    """Every source to look at again: read if it is a file now, removed from the index if it is gone."""
    files: list[str]
    """The paths of those that are files now."""
    missing: tuple[str, ...]
    """The sources of the changed paths that are gone, whatever their suffix: a gone path that was neither a
    document nor a folder of documents (an editor's "notes.txt~", vim's "4913") needs no walk."""


def changed_files(paths: list[Path], root: Path, changed: Iterable[str]) -> Hint | None:
    """The files a scan of paths would look at among the changed paths (absolute, as the change feed
    reports them under each folder), or None when only a walk can tell: a folder created or moved in,
    a symbolic link, an index folder, a path outside the folders, a file named on the command line
    rather than found in a folder. (A folder deleted or moved out is found by the builder: a gone
    path with documents under it.)"""
    tops = [folder_prefix(p) for p in paths]
    if not all(os.path.isdir(top) for top in tops):
        return None
    prefix = os.path.join(str(root), "")
    linked = _linked_folders(paths)
    sources: list[str] = []
    files: list[str] = []
    missing: list[str] = []
    for path in sorted(set(changed)):
        top = next((t for t in tops if path.startswith(t)), None)
        if top is None:
            return None
        if hidden_below(path, top):
            continue  # never read by a scan
        parts = path[len(top) :].split(os.sep)
        folder = top[:-1]
        for part in parts[:-1]:
            folder = os.path.join(folder, part)
            if os.path.islink(folder) or is_index_folder(folder):
                return None  # the walk skips these, with a reason: let it judge
        suffix = suffix_of(parts[-1])
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            missing.append(_source_of(path, root, prefix, linked))  # a document, a folder of them, or neither
            if suffix in SUPPORTED_SUFFIXES:
                sources.append(missing[-1])
            continue
        except OSError:
            return None
        if not stat_mode.S_ISREG(mode):
            return None  # a folder, a symbolic link, a pipe
        if suffix in SUPPORTED_SUFFIXES:
            sources.append(_source_of(path, root, prefix, linked))
            files.append(path)
    return Hint(tuple(sources), files, tuple(missing))


def describe_os_error(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied (check the file's permissions)"
    return exc.strerror or str(exc)
