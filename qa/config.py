"""One settings object for a run: corpus paths, index location, backend and chunker settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from index.backends import DEFAULT_BACKEND
from index.chunker import ChunkSettings
from index.locations import default_corpus, default_index_dir


@dataclass(frozen=True)
class RunConfig:
    """Where the documents are, where their index lives, and how it is built."""

    corpus: tuple[Path, ...] = ()
    """Files or folders to index; empty means seeds/."""
    index_dir: Path | str | None = None
    """Explicit index folder or store URL (index.stores.open_store); None means the per-corpus folder in the
    cache dir."""
    backend: str = DEFAULT_BACKEND
    chunking: ChunkSettings = field(default_factory=ChunkSettings)

    @property
    def paths(self) -> list[Path]:
        return [Path(p) for p in self.corpus] or [default_corpus()]

    @property
    def resolved_index_dir(self) -> Path | str:
        return self.index_dir or default_index_dir(self.paths)
