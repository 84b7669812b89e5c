"""Opening the engine off the UI thread: the default loader (build on first run) and error wording."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from index.errors import CancelledError, IndexLockedError, QAError
from qa.config import RunConfig
from tui.display import one_line

if TYPE_CHECKING:
    from index.embedder import Embedder
    from qa.engine import Engine

EngineLoader = Callable[..., "tuple[Engine, object]"]
"""loader(progress, cancelled, rebuild) -> (engine, build report or None); runs in a worker thread.
progress(stage, done, total, update=False): update marks steps of bringing an existing index up to date."""

WAIT_FAILED = "Waiting: the index could not be opened (see the status line); fix it, then press ctrl+r."
STAGES = {"scan": "reading files", "recheck": "checking passages", "embed": "embedding", "save": "saving"}


def default_loader(config: RunConfig, embedder: Embedder | None = None, explicit_backend: bool = False) -> EngineLoader:
    """Open the corpus's index, building it first (with progress and cancel) when there is none, and
    bringing it up to date first when files were added, changed or removed since it was built."""

    def load(progress, cancelled, rebuild: bool = False):
        # deferred: numpy, the model and the store load here in the worker, after the first frame
        from index.builder import pending_changes
        from index.embedder import make_embedder
        from index.stores import open_store
        from qa.service import check_paths, index_corpus, open_engine

        check_paths(config.paths)
        model = embedder
        report = None
        if rebuild or open_store(config.resolved_index_dir).manifest() is None:
            model = model or make_embedder(config.backend)
            report = index_corpus(config, model, rebuild=rebuild, wait=True, progress=progress, cancelled=cancelled)
        engine, _ = open_engine(config, model, build_if_missing=False, explicit_backend=explicit_backend, preload=True)
        if report is None and pending_changes(config.paths, engine.index.catalog, manifest=engine.index.manifest):
            # Update only what changed (the model is loading meanwhile); on cancel, or while another
            # `qa index` holds the lock, answer from the index as it is (stale citations are flagged).
            try:
                report = index_corpus(
                    config, engine.embedder, progress=lambda *step: progress(*step, update=True), cancelled=cancelled
                )
            except (CancelledError, IndexLockedError):
                return engine, None
            engine.close()
            engine, _ = open_engine(config, engine.embedder, build_if_missing=False, explicit_backend=explicit_backend)
        return engine, report

    return load


def warm_up(engine: Engine) -> None:
    """Load the model and run it once now, so 'Ready' means the first answer comes quickly."""
    load = getattr(engine.embedder, "load", None)
    if load is not None:
        load()
    engine.embedder.embed(["warm up"])


def describe(exc: BaseException) -> str:
    """One line for the user, never a traceback."""
    if isinstance(exc, QAError):
        return exc.one_line()
    return one_line(f"Unexpected {type(exc).__name__}: {exc}", 300)
