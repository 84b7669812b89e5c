"""Test doubles for the model: a deterministic hashing embedder for fast unit tests (never shipped in qa/ or index/)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parent
IMPORTABLE = f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n"
"""Prefix for `python -c` code run in a child process, so it can import this module (and tui_helpers)."""

_WORD = re.compile(r"\w+|[^\w\s]")


class HashingEmbedder:
    """Deterministic fake for fast tests: bag of hashed words, so shared words mean high cosine."""

    name = "fake/hashing"
    backend = "fake"

    def __init__(self, dim: int = 64, max_tokens: int = 254) -> None:
        self.dim = dim
        self.max_tokens = max_tokens

    def fingerprint(self) -> str:
        return f"hashing-{self.dim}"

    def load(self) -> None:
        return None

    joins_on_whitespace = True  # its tokens are regex matches that never span whitespace

    def offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return [[m.span() for m in _WORD.finditer(text)] for text in texts]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for column, sign in self._hashed_words(text):
                out[row, column] += sign
            norm = np.linalg.norm(out[row])
            if norm == 0:
                out[row, 0] = 1.0
            else:
                out[row] /= norm
        return out

    def embed_query(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        return self.embed([text])[0], self.token_vectors([text])[0]

    def token_vectors(self, texts: Sequence[str]) -> list[np.ndarray]:
        """One signed one-hot vector per word: the same word in two texts scores 1, others 0 (or -1)."""
        out = []
        for text in texts:
            words = self._hashed_words(text)
            rows = np.zeros((len(words), self.dim), dtype=np.float32)
            for row, (column, sign) in enumerate(words):
                rows[row, column] = sign
            out.append(rows)
        return out

    def _hashed_words(self, text: str) -> list[tuple[int, float]]:
        from index.normalize import fold

        words = []
        for word in re.findall(r"\w+", fold(text).lower()):
            h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
            words.append((h % self.dim, 1.0 if (h >> 32) & 1 else -1.0))
        return words


def resolve_fake_backend(setattr_=setattr) -> None:
    """Make the "fake" backend name (stored in the manifests of indexes built with HashingEmbedder) open
    HashingEmbedder wherever qa looks a backend up, so an index a test built reopens with its own embedder.
    setattr_: monkeypatch.setattr in tests (undone after each), plain setattr in a child process."""
    import index.embedder
    import qa.engine
    import qa.service

    real = index.embedder.make_embedder

    def make_embedder(backend: str = index.embedder.DEFAULT_BACKEND):
        return HashingEmbedder() if backend == "fake" else real(backend)

    for module in (index.embedder, qa.engine, qa.service):
        setattr_(module, "make_embedder", make_embedder)


FAKE_AWARE_QA = IMPORTABLE + "import fakes\nfakes.resolve_fake_backend()\nfrom qa.cli import main\nmain()\n"
"""`python -c FAKE_AWARE_QA ARGS`: the real `qa` command line, able to reopen an index built with HashingEmbedder."""
