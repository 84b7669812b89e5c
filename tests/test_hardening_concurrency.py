"""Hardening: concurrent `qa index` runs take turns, and `qa ask` keeps answering from the last complete index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, write_corpus
from fakes import FAKE_AWARE_QA, IMPORTABLE

# The real `qa` CLI with a hashing embedder that blocks in embed() until a gate file exists,
# so a test can hold an index run in the middle of its work for as long as it needs.
GATED_FAKE_QA = (
    IMPORTABLE
    + r"""
import os, time
import fakes, qa.service
class GatedHashingEmbedder(fakes.HashingEmbedder):
    def embed(self, texts):
        gate = os.environ.get("FAKE_EMBED_GATE")
        while gate and not os.path.exists(gate):
            time.sleep(0.01)
        return super().embed(texts)
qa.service.make_embedder = lambda backend="torch": GatedHashingEmbedder()
import qa.cli
qa.cli.main()
"""
)

# Rebuilds the index over and over, to race readers against generation swaps.
REBUILD_LOOP = (
    IMPORTABLE
    + r"""
import sys
from pathlib import Path
from index.builder import build_index
from fakes import HashingEmbedder
for _ in range(int(sys.argv[3])):
    build_index([Path(sys.argv[1])], Path(sys.argv[2]), HashingEmbedder(), rebuild=True)
"""
)

CORPUS_A = {
    "harbour.txt": "The harbour master of Valletta is Marco Zammit. He inspects every ship at dawn.\n",
    "orchard.md": "The orchard in Kent grows Bramley apples. Picking starts in late September.\n",
    "notes/observatory.txt": "The observatory on La Palma hosts the Gran Telescopio Canarias.\n",
}
QUESTION = "Who is the harbour master of Valletta?"


def _qa(*args: str, gate: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "FAKE_EMBED_GATE": str(gate) if gate else ""}
    return subprocess.Popen(
        [sys.executable, "-c", GATED_FAKE_QA, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )


def _wait_for_lock_holder(index_dir: Path, proc: subprocess.Popen, known: set[str], timeout: float = 60) -> None:
    """Until the run holds the lock and has started a new generation (it then blocks at the gate)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if index_dir.is_dir() and any(n.startswith("gen-") and n not in known for n in os.listdir(index_dir)):
            return
        time.sleep(0.01)
    raise AssertionError("the index run never started writing")


def _ask_json(index_dir: Path) -> dict:
    from fakes import HashingEmbedder

    from qa.engine import Engine

    engine = Engine.open(index_dir, HashingEmbedder())
    try:
        return engine.ask(QUESTION, k=5).to_json()
    finally:
        engine.close()


def _intact(index_dir: Path) -> bool:
    names = sorted(os.listdir(index_dir))
    return names == sorted(["CURRENT", ".lock", ".readers", (index_dir / "CURRENT").read_text().strip()])


@pytest.mark.slow
def test_second_index_run_exits_with_a_clear_message_while_the_first_holds_the_lock(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", CORPUS_A)
    index_dir = tmp_path / "index"
    gate = tmp_path / "gate"
    first = _qa("index", str(corpus), "--index-dir", str(index_dir), gate=gate)
    try:
        _wait_for_lock_holder(index_dir, first, set())
        second = subprocess.run(
            [sys.executable, "-c", GATED_FAKE_QA, "index", str(corpus), "--index-dir", str(index_dir)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
        )
        assert second.returncode == 75  # EX_TEMPFAIL
        assert second.stderr.strip() == (
            f"Error: Another 'qa index' (pid {first.pid}) is updating {index_dir}. "
            "Wait for it to finish, or run again with --wait."
        )
    finally:
        gate.touch()
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert _intact(index_dir)
    assert _ask_json(index_dir)["passages"][0]["source"] == "harbour.txt"


@pytest.mark.slow
def test_two_index_runs_with_wait_take_turns(tmp_path):
    """Started together with --wait: both succeed, one does the work, the other finds nothing to do."""
    corpus = write_corpus(tmp_path / "corpus", CORPUS_A)
    index_dir = tmp_path / "index"
    runs = [_qa("index", str(corpus), "--index-dir", str(index_dir), "--wait") for _ in range(2)]
    results = [run.communicate(timeout=180) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results
    summaries = sorted(err.strip().splitlines()[-1].split("  (")[0] for _, err in results)
    assert summaries == [
        "0 new, 0 changed, 3 unchanged, 0 removed, 0 skipped",
        "3 new, 0 changed, 0 unchanged, 0 removed, 0 skipped",
    ]
    assert _intact(index_dir)


@pytest.mark.slow
def test_ask_during_a_build_answers_from_the_last_complete_index(tmp_path):
    """`qa ask` while an update is half written gives exactly the previous index's answer; afterwards the new one."""
    from fakes import HashingEmbedder

    from index.builder import build_index

    corpus = write_corpus(tmp_path / "corpus", CORPUS_A)
    index_dir = tmp_path / "index"
    build_index([corpus], index_dir, HashingEmbedder())
    (corpus / "harbour.txt").write_text(
        "The harbour master of Valletta is now Rita Borg, since March.\n", encoding="utf-8"
    )
    before = _ask_json(index_dir)  # the previous index, seen with the file as it now is on disk
    gate = tmp_path / "gate"
    known = set(os.listdir(index_dir))
    update = _qa("index", str(corpus), "--index-dir", str(index_dir), gate=gate)
    try:
        _wait_for_lock_holder(index_dir, update, known)
        asked = subprocess.run(
            [sys.executable, "-c", FAKE_AWARE_QA, "ask", QUESTION, "--index-dir", str(index_dir), "--json"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
        )
        assert update.poll() is None  # the update really was in progress the whole time
    finally:
        gate.touch()
        update.communicate(timeout=120)
    assert asked.returncode == 0, asked.stderr
    during = json.loads(asked.stdout)
    # The file already changed on disk, so the old passage is flagged stale, never silently re-quoted.
    assert during == before and during["passages"][0]["stale"] is True
    assert update.returncode == 0
    after = _ask_json(index_dir)
    assert after["passages"][0]["source"] == "harbour.txt" and "Rita Borg" in after["passages"][0]["text"]


@pytest.mark.slow
def test_readers_never_see_a_half_swapped_index(tmp_path, fake_embedder, monkeypatch):
    """Opening and asking in a loop while another process keeps committing new generations: zero
    failures, even when a load is slower than a whole rebuild; old generations do not pile up."""
    import index.store
    from index.builder import build_index
    from qa.engine import Engine

    corpus = write_corpus(tmp_path / "corpus", CORPUS_A)
    index_dir = tmp_path / "index"
    build_index([corpus], index_dir, fake_embedder)
    real_load = index.store.load_lexical

    def slow_load(folder, settings):
        time.sleep(0.05)  # a big index: the writer can commit and clean up while we are still loading
        return real_load(folder, settings)

    monkeypatch.setattr(index.store, "load_lexical", slow_load)
    writer = subprocess.Popen([sys.executable, "-c", REBUILD_LOOP, str(corpus), str(index_dir), "25"], cwd=REPO)
    opened, failures, most_generations = 0, [], 0
    try:
        while writer.poll() is None:
            try:
                engine = Engine.open(index_dir, fake_embedder)
                try:
                    assert engine.ask(QUESTION).passages[0].citation.source == "harbour.txt"
                finally:
                    engine.close()
                opened += 1
            except Exception as exc:  # collected and asserted on below
                failures.append(f"{type(exc).__name__}: {exc}")
            most_generations = max(most_generations, sum(n.startswith("gen-") for n in os.listdir(index_dir)))
    finally:
        writer.wait(timeout=180)
    print(
        f"reader opened the index {opened} times during 25 rebuilds; failures: {len(failures)}; "
        f"at most {most_generations} generations on disk"
    )
    assert writer.returncode == 0
    assert opened >= 20 and failures == []
    assert most_generations <= 3
