"""Start-up speed guards: the chat's first frame needs no numpy, and the model preloads once, off the critical path."""

from __future__ import annotations

import threading
import time

from conftest import REPO
from test_import_hygiene import loaded_after

from index.embedder import SentenceTransformerEmbedder


def test_chat_imports_no_numpy_before_its_first_frame():
    loaded = loaded_after("import qa.cli, tui.app\nqa.cli._config((), None, None)")
    assert "numpy" not in loaded, "numpy (~0.1 s) would load before the chat's first frame"


def test_concurrent_loads_load_the_model_once(monkeypatch):
    calls = []

    def slow_load(self):
        calls.append(threading.get_ident())
        time.sleep(0.2)
        self._model = object()

    monkeypatch.setattr(SentenceTransformerEmbedder, "_load", slow_load)
    embedder = SentenceTransformerEmbedder()
    threads = [threading.Thread(target=embedder.load) for _ in range(3)]
    for t in threads:
        t.start()
    embedder.load()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert embedder.load_seconds is not None and embedder.load_seconds >= 0.2


def test_open_engine_with_preload_answers(tmp_path, monkeypatch):
    from fakes import HashingEmbedder

    import qa.engine
    import qa.service
    from qa.config import RunConfig
    from qa.service import index_corpus, open_engine

    monkeypatch.setenv("QA_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(qa.service, "make_embedder", lambda backend: HashingEmbedder())
    monkeypatch.setattr(qa.engine, "make_embedder", lambda backend: HashingEmbedder())
    config = RunConfig(corpus=(REPO / "seeds",))
    index_corpus(config)
    engine, report = open_engine(config, preload=True)
    try:
        assert report is None
        answer = engine.ask("Who did Hollande meet in Washington?")
        assert answer.passages
    finally:
        engine.close()
