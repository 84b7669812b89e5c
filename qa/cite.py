"""Cite: passages and answer spans as citations checked against the file's current contents (or, when the file is not
reachable, the stored text against its hash), duplicates collapsed."""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from index.errors import UndecodableError
from index.readers import read_text
from index.readers.text import PAGE_BREAK, page_at
from index.stores.base import PassageRecord, text_hash
from index.walk import FileStat
from qa.dedup import overlap_ratio, resemblance, shingles
from qa.fusion import Candidate
from qa.results import Citation, Passage

_EXTRACTED_MAX = 32
"""Extracted texts (PDF, HTML) kept between answers, keyed by path and stat."""
_extracted: OrderedDict[tuple[str, FileStat], str] = OrderedDict()
_extracted_lock = threading.Lock()


class SourceReader:
    """Reads each source file once per answer and tells whether a span still matches."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, str | None] = {}
        self._unreachable: set[str] = set()

    def text_of(self, source: str) -> str | None:
        """Current text of a source (decoded exactly as the indexer does), or None if unreadable."""
        if source not in self._cache:
            try:
                text = current_text(self.root / source)
            except OSError:  # gone, moved, or on another machine than the store
                text = None
                self._unreachable.add(source)
            except UndecodableError:  # there, but no longer text the indexer would read
                text = None
            self._cache[source] = text
        return self._cache[source]

    def reachable(self, source: str) -> bool:
        """Whether the source's file could be read (a file that no longer decodes counts as reachable: changed)."""
        self.text_of(source)
        return source not in self._unreachable

    def page_at(self, source: str, offset: int) -> int | None:
        """The page of a character of the source's current text (None: no page breaks, or unreadable)."""
        text = self.text_of(source)
        return None if text is None else page_at(text, offset)

    def is_current(self, source: str, char_start: int, char_end: int, quoted: str) -> bool:
        text = self.text_of(source)
        return text is not None and text[char_start:char_end] == quoted


def current_text(path: Path) -> str:
    """read_text(path)'s text. A PDF's, Word document's or HTML page's extracted text is reused while the file's stat is
    unchanged (extracting a 50-page PDF takes ~0.25 s, and every answer re-checks what it quotes); a
    file written in the last moments is always read again, as the indexer's scan does."""
    started = time.time_ns()
    stat = FileStat.of(os.stat(path))
    key = (str(path), stat)
    with _extracted_lock:
        if key in _extracted:
            _extracted.move_to_end(key)
            return _extracted[key]
    text, encoding, _ = read_text(path, max_bytes=1 << 62)
    if encoding in ("pdf", "html", "docx") and not stat.racy(started):
        with _extracted_lock:
            _extracted[key] = text
            while len(_extracted) > _EXTRACTED_MAX:
                _extracted.popitem(last=False)
    return text


StoredHashes = Callable[[Sequence[int]], Mapping[int, str]]
"""passage ids -> the hashes of their texts as indexed (index/stores/base.py Catalog.passage_hashes)."""


def check_passage(p: PassageRecord, reader: SourceReader, stored_hashes: StoredHashes | None) -> tuple[bool, str]:
    """(current, check): against the file when it is reachable ("file"); otherwise the stored text against the
    hash recorded when it was indexed ("hash"), or nothing to check it against ("none": not current)."""
    if reader.reachable(p.source):
        return reader.is_current(p.source, p.char_start, p.char_end, p.text), "file"
    stored = stored_hashes([p.id]).get(p.id) if stored_hashes is not None else None
    if stored is None:
        return False, "none"
    return stored == text_hash(p.text), "hash"


def cite_passages(
    ranked: Sequence[Candidate],
    records: Mapping[int, PassageRecord],
    reader: SourceReader,
    k: int,
    duplicate_resemblance: float,
    stored_hashes: StoredHashes | None = None,
) -> list[Passage]:
    """The first k distinct passages of ranked, each cited and checked (check_passage: against its file, or
    its stored hash when the file is not reachable; stale when the check fails). A passage overlapping a
    kept one of the same document by half is dropped; one whose shingles resemble a kept one of another
    document is listed in its also_in."""
    kept: list[tuple[Candidate, Citation, frozenset, list[Citation]]] = []
    for cand in ranked:
        if len(kept) >= k:
            break
        p = records[cand.chunk_id]
        source, c0, c1, text = p.source, p.char_start, p.char_end, p.text
        current, check = check_passage(p, reader, stored_hashes)
        cite = Citation(
            source,
            p.line_start,
            p.line_end,
            c0,
            c1,
            text,
            stale=not current,
            page=reader.page_at(source, c0) if current and check == "file" else None,
            check=check,
        )
        sh = shingles(text)
        duplicate = False
        for _, other, other_sh, also in kept:
            if other.source == source:
                if overlap_ratio((c0, c1), (other.char_start, other.char_end)) >= 0.5:
                    duplicate = True
                    break
            elif resemblance(sh, other_sh) >= duplicate_resemblance:
                also.append(cite)
                duplicate = True
                break
        if not duplicate:
            kept.append((cand, cite, sh, []))
    return [
        Passage(rank=i + 1, chunk_id=cand.chunk_id, citation=cite, scores=cand.scores, also_in=tuple(also))
        for i, (cand, cite, _, also) in enumerate(kept)
    ]


def quote(passage: Citation, char_start: int, char_end: int) -> Citation:
    """The citation of a span inside a cited passage: its own lines, page and text."""
    text = passage.text[char_start - passage.char_start : char_end - passage.char_start]
    prefix = passage.text[: char_start - passage.char_start]
    line_start = passage.line_start + prefix.count("\n")
    return replace(
        passage,
        line_start=line_start,
        line_end=line_start + text.count("\n"),
        char_start=char_start,
        char_end=char_end,
        text=text,
        page=None if passage.page is None else passage.page + prefix.count(PAGE_BREAK),
    )
