"""The model's one-time ONNX export says what it is doing (issue 19, item 4): the embedder announces it
(index/preparing.py), `qa index`/`qa ask` show it on a terminal's stderr, the chat on its status line."""

from __future__ import annotations

import io
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fakes import HashingEmbedder
from tui_helpers import fake_app, settle, static_text, sync, write_demo_corpus

from index.preparing import EXPECTED_SECONDS, ModelPreparation, announce, listen

REPO = Path(__file__).resolve().parents[1]


def _heard():
    steps: list[ModelPreparation] = []
    return steps, listen(steps.append)


def test_embedder_announces_the_export_before_and_after(tmp_path, monkeypatch):
    from index.embedder import SentenceTransformerEmbedder

    monkeypatch.setenv("QA_MODEL_CACHE", str(tmp_path / "models"))  # a fresh model cache: nothing exported yet
    embedder = SentenceTransformerEmbedder("onnx")
    during: list[list[str]] = []
    steps, stop = _heard()

    def export(folder: Path, file_name: str) -> None:  # stands in for the slow torch export
        during.append([s.stage for s in steps])
        (folder / file_name).parent.mkdir(parents=True)
        (folder / file_name).write_bytes(b"graph")

    monkeypatch.setattr(embedder, "_export_onnx", export)
    try:
        embedder.onnx_file()
        assert during == [["preparing"]]
        assert [(s.stage, s.backend) for s in steps] == [("preparing", "onnx"), ("ready", "onnx")]
        embedder.onnx_file()  # already exported: nothing to announce
        assert len(steps) == 2
    finally:
        stop()


def test_a_failed_export_is_announced_as_failed(tmp_path, monkeypatch):
    from index.embedder import SentenceTransformerEmbedder
    from index.errors import ModelError

    monkeypatch.setenv("QA_MODEL_CACHE", str(tmp_path / "models"))
    embedder = SentenceTransformerEmbedder("onnx")

    def export(folder: Path, file_name: str) -> None:
        raise ModelError("Exporting failed.", "Use --backend torch.")

    monkeypatch.setattr(embedder, "_export_onnx", export)
    steps, stop = _heard()
    try:
        with pytest.raises(ModelError):
            embedder.onnx_file()
    finally:
        stop()
    assert [s.stage for s in steps] == ["preparing", "failed"]


def test_cli_notice_on_a_terminal_and_nothing_when_piped():
    from rich.console import Console

    from qa.model_notice import model_notice, preparing_text

    started = time.monotonic() - 3
    outputs = []
    for terminal in (True, False):
        out = io.StringIO()
        console = Console(file=out, force_terminal=terminal, width=100)
        with model_notice(console):
            announce(ModelPreparation("preparing", "onnx", started, 15.0))
            time.sleep(0.3)  # the spinner draws
            announce(ModelPreparation("ready", "onnx", started, 15.0))
        outputs.append(out.getvalue())
    on_terminal, piped = outputs
    assert "Preparing the model (once, about 15 s): 3 s" in on_terminal
    assert "Prepared the model in 3 s (once; later runs reuse it)." in on_terminal
    assert piped == ""
    # Past the usual time it no longer promises it.
    late = ModelPreparation("preparing", "onnx", started, 30.0)
    assert preparing_text(late, started + 50) == "Preparing the model (once; longer than the usual 30 s): 50 s"
    assert preparing_text(late, started + 12) == "Preparing the model (once, about 30 s): 12 s"
    # Outside the block nothing listens any more.
    out = io.StringIO()
    announce(ModelPreparation("preparing", "onnx", started, 15.0))
    assert out.getvalue() == ""


class PreparingEmbedder(HashingEmbedder):
    """The fake, but its first use 'exports' the model as the real one does on a fresh cache."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release
        self._loaded = False

    def load(self) -> None:
        if not self._loaded:
            step = ModelPreparation("preparing", "onnx", time.monotonic() - 7, 15.0)
            announce(step)
            self.release.wait(20)
            announce(ModelPreparation("ready", "onnx", step.started, 15.0))
            self._loaded = True

    def embed(self, texts):
        self.load()
        return super().embed(texts)


@sync
async def test_chat_status_line_says_the_model_is_being_prepared(tmp_path):
    from tui.widgets.status import StatusLine

    release = threading.Event()
    app = fake_app(write_demo_corpus(tmp_path / "corpus"), PreparingEmbedder(release))
    async with app.run_test(size=(120, 40)) as pilot:
        state = app.query_one(StatusLine).query_one("#status-state")
        for _ in range(100):
            await pilot.pause(0.05)
            if "Preparing" in static_text(state):
                break
        first = static_text(state).strip()
        assert first.startswith("Preparing the model (once, about 15 s): "), first
        await pilot.pause(1.3)
        later = static_text(state).strip()
        assert later != first and later.startswith("Preparing the model (once, about 15 s): "), later  # it ticks
        release.set()
        await settle(pilot)
        assert app.engine is not None
        assert static_text(state).startswith("Ready · 3 documents")
    import index.preparing

    assert not index.preparing._listeners  # the closed chat no longer listens


@pytest.mark.slow
def test_qa_index_on_a_terminal_says_it_prepares_the_model(tmp_path):
    """The real export into a fresh model cache, `qa index` run on a pseudo-terminal as a user would."""
    corpus = write_demo_corpus(tmp_path / "corpus")
    env = {
        **os.environ,
        "QA_HOME": str(tmp_path / "home"),
        "QA_MODEL_CACHE": str(tmp_path / "models"),
        "COLUMNS": "120",
        "TERM": "xterm-256color",
    }
    main, child = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "qa", "index", str(corpus)],
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=child,
        env=env,
        cwd=REPO,
    )
    os.close(child)
    shown = b""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        elif process.poll() is not None:
            break
    os.close(main)
    assert process.wait(timeout=60) == 0, shown.decode(errors="replace")
    text = shown.decode(errors="replace")
    assert f"Preparing the model (once, about {EXPECTED_SECONDS['onnx']:.0f} s)" in text, text
    assert "Prepared the model in " in text, text
    assert "3 new" in text
    assert any((tmp_path / "models").glob("*/onnx/model.onnx"))
