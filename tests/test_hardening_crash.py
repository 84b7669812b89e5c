"""Hardening: kill -9 or Ctrl-C at any moment of indexing never loses or corrupts the previous index."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO
from fakes import IMPORTABLE

KILL_TRIALS_AT_EVENTS = 14
KILL_TRIALS_AT_TIMES = 10
SEED = 20240611

# A long-lived helper process: imports once, then forks one indexer per trial (cheap) and kills it.
# The indexer child counts I/O steps (writes, renames, fsyncs, deletes, progress) and SIGKILLs
# itself at the chosen step; or the helper SIGKILLs it after a chosen delay.
FORK_DRIVER = (
    IMPORTABLE
    + r"""
import json, os, shutil, signal, sys, time, traceback
from pathlib import Path
import numpy as np, faiss
from index import store
from index.builder import build_index
from fakes import HashingEmbedder
from index.lexical import LexicalIndex, analyze
import bm25s, Stemmer
analyze("warm up the stemmer and stopwords")  # children then start with everything loaded

def run_child(cmd):
    steps = 0
    def step():
        nonlocal steps
        steps += 1
        if steps == cmd.get("kill_at_step"):
            os.kill(os.getpid(), signal.SIGKILL)
    def wrap(owner, name):
        real = getattr(owner, name)
        def wrapper(*args, **kwargs):
            step()
            out = real(*args, **kwargs)
            step()
            return out
        setattr(owner, name, wrapper)
    if cmd.get("delta_share") is not None:  # updates hard-link the FAISS and BM25 bases and write deltas beside them
        import index.lexical_delta
        import index.vectors
        index.vectors.DELTA_SHARE = cmd["delta_share"]
        index.lexical_delta.DELTA_SHARE = cmd["delta_share"]
    for owner, name in [(os, "replace"), (os, "fsync"), (os, "mkdir"), (os, "link"), (shutil, "rmtree"),
                        (shutil, "copyfile"), (faiss, "write_index"), (faiss, "read_index"), (np, "save"),
                        (LexicalIndex, "save"), (LexicalIndex, "build"), (store, "connect"), (Path, "write_text")]:
        wrap(owner, name)
    progress = lambda stage, done, total: step() if stage != "scan" else None
    build_index([Path(cmd["corpus"])], Path(cmd["index_dir"]), HashingEmbedder(), progress=progress)
    Path(cmd["report"]).write_text(str(steps))

for line in sys.stdin:
    cmd = json.loads(line)
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            run_child(cmd)
            code = 0
        except BaseException:
            traceback.print_exc()
            code = 1
        os._exit(code)
    if cmd.get("kill_after") is not None:
        time.sleep(cmd["kill_after"])
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"killed": os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL,
                      "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                      "seconds": time.perf_counter() - started}), flush=True)
"""
)

# The real `qa` CLI with a slowed hashing embedder, so Ctrl-C can land in the middle of a build.
SLOW_FAKE_QA = (
    IMPORTABLE
    + r"""
import os, time
import fakes, qa.service
class SlowHashingEmbedder(fakes.HashingEmbedder):
    def embed(self, texts):
        time.sleep(float(os.environ.get("FAKE_EMBED_DELAY", "0")))
        return super().embed(texts)
qa.service.make_embedder = lambda backend="torch": SlowHashingEmbedder()
import qa.cli
qa.cli.main()
"""
)

WORDS = (
    "river mountain copper violin harbour lantern glacier orchard falcon meadow quartz saddle "
    "tundra beacon canyon ember fjord granite harvest island jasmine kettle lagoon marble nectar "
    "oasis pepper quiver raven summit thistle umber velvet willow yarrow zephyr anchor bramble"
).split()


def _write_corpus(root: Path, n_files: int = 60) -> list[str]:
    """Seeded documents with distinct vocabulary; returns one question per tenth file."""
    rng = random.Random(SEED)
    root.mkdir(parents=True)
    questions = []
    for i in range(n_files):
        sentences = []
        for s in range(12):
            words = rng.sample(WORDS, 8)
            sentences.append(
                f"Document {i} sentence {s} says the {words[0]} near the {words[1]} holds {' '.join(words[2:])}."
            )
        (root / f"doc_{i:03d}.txt").write_text("\n".join(sentences) + "\n", encoding="utf-8")
        if i % 20 == 0:
            questions.append(sentences[3].rstrip(".") + "?")
    return questions


def _change_corpus(root: Path) -> None:
    """State B: one file added, one changed, one removed."""
    (root / "zz_added.txt").write_text(
        "The added file describes the saffron lighthouse of Valparaiso.\n", encoding="utf-8"
    )
    (root / "doc_010.txt").write_text("Document ten now describes the obsidian clocktower instead.\n", encoding="utf-8")
    (root / "doc_020.txt").unlink()


def _answers(index_dir: Path, questions: list[str]) -> list[dict]:
    from fakes import HashingEmbedder

    from qa.engine import Engine

    engine = Engine.open(index_dir, HashingEmbedder())
    try:
        return [engine.ask(q, k=5).to_json() for q in questions]
    finally:
        engine.close()


def _layout(index_dir: Path) -> list[str]:
    return sorted(os.listdir(index_dir))


def _clean(index_dir: Path) -> bool:
    """Only the live generation, the pointer and the lock files remain."""
    names = [n for n in _layout(index_dir) if n != ".readers"]  # readers' lock: created by the first clean-up
    live = (index_dir / "CURRENT").read_text().strip()
    return names == sorted(["CURRENT", ".lock", live])


@pytest.fixture(scope="module")
def crash_setup(tmp_path_factory):
    """Corpus in state B on disk, the index of state A (previous) and of state B (what a full run makes)."""
    from fakes import HashingEmbedder

    from index.builder import build_index

    base = tmp_path_factory.mktemp("crash")
    corpus = base / "corpus"
    questions = _write_corpus(corpus)
    questions.append("Which lighthouse does the added file describe?")
    questions.append("What does document ten describe now?")
    ref_a = base / "ref_a"
    build_index([corpus], ref_a, HashingEmbedder())
    _change_corpus(corpus)
    ref_b = base / "ref_b"
    shutil.copytree(ref_a, ref_b)
    report = build_index([corpus], ref_b, HashingEmbedder())
    assert (report.new, report.changed, report.removed) == (1, 1, 1)
    answers_a = _answers(ref_a, questions)
    answers_b = _answers(ref_b, questions)
    assert answers_a != answers_b
    return {"base": base, "corpus": corpus, "ref_a": ref_a, "questions": questions, "a": answers_a, "b": answers_b}


@pytest.mark.slow
def test_kill_9_at_random_moments_never_loses_the_index(crash_setup):
    """>= 20 seeded SIGKILLs during an incremental update: the index always loads and answers exactly
    as before (or as after, if the kill came after the atomic swap); the next run cleans up."""
    from fakes import HashingEmbedder

    from index.builder import build_index

    base, corpus, questions = crash_setup["base"], crash_setup["corpus"], crash_setup["questions"]
    driver_path = base / "fork_driver.py"
    driver_path.write_text(FORK_DRIVER, encoding="utf-8")
    driver = subprocess.Popen(
        [sys.executable, str(driver_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    rng = random.Random(SEED)

    def run(trial: str, **kill) -> tuple[dict, Path]:
        index_dir = base / trial
        shutil.copytree(crash_setup["ref_a"], index_dir)
        # Every other run shares unchanged files with the old generation (hard links), the others rewrite them.
        share = 10.0 if not trial.startswith("trial") or int(trial.removeprefix("trial")) % 2 == 0 else None
        cmd = {
            "corpus": str(corpus),
            "index_dir": str(index_dir),
            "report": str(base / f"{trial}.steps"),
            "delta_share": share,
            **kill,
        }
        driver.stdin.write(json.dumps(cmd) + "\n")
        driver.stdin.flush()
        return json.loads(driver.stdout.readline()), index_dir

    try:
        calibration, index_dir = run("calibrate")
        assert calibration["exit"] == 0 and _clean(index_dir)
        total_steps = int((base / "calibrate.steps").read_text())
        plan = [{"kill_at_step": s} for s in sorted(rng.sample(range(1, total_steps + 1), KILL_TRIALS_AT_EVENTS))]
        # The last steps come after the atomic swap (fsync of the folder, removal of the old generation):
        # always kill there too, so both sides of the swap are tried whatever the seed picks.
        plan += [{"kill_at_step": total_steps - k} for k in (2, 0)]
        plan += [{"kill_after": round(rng.uniform(0, calibration["seconds"]), 4)} for _ in range(KILL_TRIALS_AT_TIMES)]
        outcomes = {"previous": 0, "updated": 0, "leftovers": 0}
        for i, kill in enumerate(plan):
            result, index_dir = run(f"trial{i}", **kill)
            if "kill_at_step" in kill:
                assert result["killed"], (kill, result)
            had_leftovers = not _clean(index_dir)
            answers = _answers(index_dir, questions)
            assert answers in (crash_setup["a"], crash_setup["b"]), kill
            outcomes["previous" if answers == crash_setup["a"] else "updated"] += 1
            outcomes["leftovers"] += had_leftovers
            # The next run finishes the job and removes whatever the killed one left behind.
            build_index([corpus], index_dir, HashingEmbedder())
            assert _clean(index_dir), _layout(index_dir)
            assert _answers(index_dir, questions) == crash_setup["b"]
            shutil.rmtree(index_dir)
    finally:
        driver.stdin.close()
        driver.wait(timeout=30)
    print(
        f"kill -9 trials: {len(plan)} ({total_steps} I/O steps per run, "
        f"run takes {calibration['seconds']:.2f} s): {outcomes}"
    )
    assert len(plan) >= 20
    # The plan must actually have hit both sides of the swap and left debris to clean up.
    assert outcomes["previous"] > 0 and outcomes["updated"] > 0 and outcomes["leftovers"] > 0


def _wait_for_generation(index_dir: Path, proc: subprocess.Popen, known: set[str], timeout: float = 60) -> None:
    """Block until the indexer has taken the lock and started writing a new generation."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"indexer ended early: {proc.communicate()}")
        if any(name.startswith("gen-") and name not in known for name in os.listdir(index_dir)):
            return
        time.sleep(0.005)
    raise AssertionError("indexer never started a new generation")


@pytest.mark.slow
def test_ctrl_c_during_indexing_is_a_clean_message(crash_setup):
    """SIGINT at seeded moments of `qa index`: one-line message, exit 130, no traceback, old index intact."""
    base, corpus = crash_setup["base"], crash_setup["corpus"]
    rng = random.Random(SEED + 1)
    env = {**os.environ, "FAKE_EMBED_DELAY": "0.5"}
    for trial in range(3):
        index_dir = base / f"sigint{trial}"
        shutil.copytree(crash_setup["ref_a"], index_dir)
        known = set(os.listdir(index_dir))
        proc = subprocess.Popen(
            [sys.executable, "-c", SLOW_FAKE_QA, "index", str(corpus), "--index-dir", str(index_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=env,
        )
        _wait_for_generation(index_dir, proc, known)
        time.sleep(rng.uniform(0, 0.3))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Traceback" not in err and err.strip().splitlines() == ["Interrupted; the previous index is unchanged."]
        assert _clean(index_dir), _layout(index_dir)
        assert _answers(index_dir, crash_setup["questions"]) == crash_setup["a"]


@pytest.mark.slow
def test_ctrl_c_with_the_real_cli_and_model(tmp_path):
    """The installed `qa index` with the real model: Ctrl-C mid-build prints one line, exits 130, leaves nothing."""
    corpus = tmp_path / "corpus"
    _write_corpus(corpus, n_files=40)
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    qa = Path(sys.executable).with_name("qa")
    proc = subprocess.Popen(
        [str(qa), "index", str(corpus), "--index-dir", str(index_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    _wait_for_generation(index_dir, proc, set(), timeout=120)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "Interrupted; the previous index is unchanged."
    assert [name for name in os.listdir(index_dir) if name.startswith("gen-") or name.startswith("CURRENT")] == []
