"""Shared fixtures: all state in a temp QA_HOME, a fast fake embedder, and one real-model seed index per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"
DATA = Path(__file__).resolve().parent / "data"

os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(autouse=True)
def qa_home(tmp_path_factory, monkeypatch):
    """Every test writes its state (indexes, caches, history) under a temporary QA_HOME."""
    home = tmp_path_factory.mktemp("qa_home")
    monkeypatch.setenv("QA_HOME", str(home))
    return home


@pytest.fixture
def fake_embedder():
    from index.embedder import HashingEmbedder

    return HashingEmbedder()


@pytest.fixture(scope="session")
def real_embedder():
    """The bundled all-MiniLM-L6-v2, loaded once per test session (about 10 s)."""
    from index.embedder import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder("torch")
    embedder.load()
    return embedder


@pytest.fixture(scope="session")
def seed_index_dir(tmp_path_factory, real_embedder):
    """A real-model index over seeds/, built once per session. Treat as read-only."""
    from index.builder import build_index

    index_dir = tmp_path_factory.mktemp("seed_index") / "index"
    build_index([SEEDS], index_dir, real_embedder)
    return index_dir


@pytest.fixture(scope="session")
def seed_engine(seed_index_dir, real_embedder):
    from qa.engine import Engine

    engine = Engine.open(seed_index_dir, real_embedder)
    yield engine
    engine.close()


def write_corpus(root: Path, files: dict[str, str | bytes]) -> Path:
    """Create a small corpus folder from {relative name: content}."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root
