"""Checking quoted text against the file's current contents before it is shown."""

from __future__ import annotations

from pathlib import Path

from index.documents import UndecodableError, read_text


class SourceReader:
    """Reads each source file once per answer and tells whether a span still matches."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, str | None] = {}

    def text_of(self, source: str) -> str | None:
        """Current text of a source (decoded exactly as the indexer does), or None if unreadable."""
        if source not in self._cache:
            try:
                text, _, _ = read_text(self.root / source, max_bytes=1 << 62)
            except (OSError, UndecodableError):
                text = None
            self._cache[source] = text
        return self._cache[source]

    def is_current(self, source: str, char_start: int, char_end: int, quoted: str) -> bool:
        text = self.text_of(source)
        return text is not None and text[char_start:char_end] == quoted
