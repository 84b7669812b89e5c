"""Owns every path the tool writes to; QA_HOME moves all of it elsewhere (tests use it)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import platformdirs

APP_NAME = "qa-docs"
HOME_ENV = "QA_HOME"
MODEL_CACHE_ENV = "QA_MODEL_CACHE"


def _home() -> Path | None:
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser().resolve() if value else None


def cache_dir() -> Path:
    """Rebuildable state: indexes and the exported ONNX model."""
    home = _home()
    if home is not None:
        return home / "cache"
    return Path(platformdirs.user_cache_dir(APP_NAME))


def data_dir() -> Path:
    """State the user would miss: chat history."""
    home = _home()
    if home is not None:
        return home / "data"
    return Path(platformdirs.user_data_dir(APP_NAME))


def corpus_key(roots: list[Path]) -> str:
    """A stable folder name for the index of a corpus given by its root paths."""
    joined = "\n".join(sorted(str(p.resolve()) for p in roots))
    digest = hashlib.sha256(joined.encode("utf-8")).hexdigest()[:16]
    name = roots[0].resolve().name if len(roots) == 1 else "multi"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:40] or "corpus"
    return f"{safe}-{digest}"


def default_index_dir(roots: list[Path]) -> Path:
    return cache_dir() / "indexes" / corpus_key(roots)


def onnx_cache_dir() -> Path:
    """Where the ONNX exports of the bundled model live: QA_MODEL_CACHE if set, else the cache dir.

    Exports are keyed by the weights' hash, so one folder can serve many QA_HOMEs (the tests share one)."""
    value = os.environ.get(MODEL_CACHE_ENV)
    if value:
        return Path(value).expanduser().resolve()
    return cache_dir() / "models"


def history_db_path() -> Path:
    return data_dir() / "history.sqlite"


def default_corpus() -> Path:
    """seeds/ beside the packages (the repository checkout), else ./seeds."""
    beside = Path(__file__).resolve().parents[1] / "seeds"
    if beside.is_dir():
        return beside
    return Path.cwd() / "seeds"
