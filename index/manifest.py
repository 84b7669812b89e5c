"""What built an index (model, chunking, BM25 settings, folders): recorded with every version and checked on load."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from index.chunker import ChunkSettings
from index.errors import REBUILD_HINT, IndexCorruptError
from index.lexical import BM25Settings

FORMAT_VERSION = 3
"""The format of a generation without a BM25 delta (every index built from scratch)."""
DELTA_FORMAT_VERSION = 4
"""A generation with a BM25 delta (index/lexical_delta.py): a qa from before deltas refuses it, with
the rebuild command, instead of scoring the base alone; this one reads both."""
READ_FORMATS = (FORMAT_VERSION, DELTA_FORMAT_VERSION)


@dataclass(frozen=True, kw_only=True)
class BuildInfo:
    """What built an index: the builder tells the store, which records it in the manifest."""

    model: str
    model_fingerprint: str
    dim: int
    backend: str
    chunking: dict
    bm25: dict
    roots: list[str]
    root: str
    extractors: dict = field(default_factory=dict)
    """Version of each extractor that read the documents (index/readers EXTRACTORS); absent: 1."""


@dataclass(frozen=True, kw_only=True)
class Manifest(BuildInfo):
    """What built an index, and what the store wrote; loading with other settings is refused.

    format_version, faiss_kind and files describe the embedded store's generation folder."""

    format_version: int
    created_at: float
    n_documents: int
    n_chunks: int
    faiss_kind: str = "flat"
    files: dict = field(default_factory=dict)
    """Every file of the generation with its size; anything else in the folder is refused."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_path(cls, path: Path) -> Manifest:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(**raw)
        except FileNotFoundError:
            raise
        except (ValueError, TypeError) as exc:
            raise IndexCorruptError(f"The index manifest {path} is unreadable ({exc}).", REBUILD_HINT) from exc

    def chunk_settings(self) -> ChunkSettings:
        return ChunkSettings(**self.chunking)

    def bm25_settings(self) -> BM25Settings:
        return BM25Settings(**self.bm25)


def rebuild_command(roots) -> str | None:
    """`qa index --rebuild` with the folders a manifest names (None when it names none usable)."""
    if not isinstance(roots, list) or not roots or not all(isinstance(r, str) for r in roots):
        return None
    return "qa index --rebuild " + " ".join(f"'{r}'" for r in roots)


def rebuild_hint(roots) -> str:
    """The rebuild command for an index whose manifest names its folders (else REBUILD_HINT)."""
    command = rebuild_command(roots)
    return f"Rebuild it: {command}" if command else REBUILD_HINT


def formats() -> str:
    return " and ".join(str(v) for v in READ_FORMATS)


def expected_mismatch(
    manifest: Manifest, *, fingerprint: str | None, chunking: ChunkSettings | None, backend: str | None
) -> str | None:
    """Describe how the manifest differs from what the caller expects, or None."""
    if manifest.format_version not in READ_FORMATS:
        return f"index format {manifest.format_version}, this qa reads formats {formats()}"
    if backend is not None and manifest.backend != backend:
        return f"backend {manifest.backend}, you asked for {backend}"
    if fingerprint is not None and manifest.model_fingerprint != fingerprint:
        return f"model {manifest.model} [{manifest.model_fingerprint}], the installed model is [{fingerprint}]"
    if chunking is not None and manifest.chunking != asdict(chunking):
        return f"chunking {manifest.chunking}, you asked for {asdict(chunking)}"
    return None
