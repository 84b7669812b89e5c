"""Checking quoted text against the file's current contents before it is shown."""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

from index.documents import FileStat, UndecodableError, page_at, read_text

_EXTRACTED_MAX = 32
"""Extracted texts (PDF, HTML) kept between answers, keyed by path and stat."""
_extracted: OrderedDict[tuple[str, FileStat], str] = OrderedDict()
_extracted_lock = threading.Lock()


class SourceReader:
    """Reads each source file once per answer and tells whether a span still matches."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, str | None] = {}

    def text_of(self, source: str) -> str | None:
        """Current text of a source (decoded exactly as the indexer does), or None if unreadable."""
        if source not in self._cache:
            try:
                text = current_text(self.root / source)
            except (OSError, UndecodableError):
                text = None
            self._cache[source] = text
        return self._cache[source]

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
