"""Hardening: a damaged or tampered index gives one clear line with the rebuild command; nothing in it is unpickled."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import run_main, write_corpus

CORPUS = {
    "harbour.txt": "The harbour master of Valletta is Marco Zammit. He inspects every ship at dawn.\n" * 3,
    "orchard.md": "The orchard in Kent grows Bramley apples. Picking starts in late September.\n" * 3,
    "observatory.txt": "".join(f"Night {i}: the observatory on La Palma tracked comet {i}.\n" for i in range(300)),
}
QUESTION = "Who is the harbour master of Valletta?"


class _Payload:
    """Unpickling this creates a marker file: proof that something ran code from the index folder."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    from fakes import HashingEmbedder

    from index.builder import build_index

    base = tmp_path_factory.mktemp("tamper")
    corpus = write_corpus(base / "corpus", CORPUS)
    build_index([corpus], base / "index", HashingEmbedder())
    return base / "index"


@pytest.fixture
def index_dir(pristine, tmp_path):
    """A private copy of a good index for one test to damage."""
    copy = tmp_path / "index"
    shutil.copytree(pristine, copy)
    return copy


def _generation(index_dir: Path) -> Path:
    return index_dir / (index_dir / "CURRENT").read_text().strip()


def _assert_one_line_rebuild_error(index_dir: Path, capsys, monkeypatch, *, contains: str, code: int = 1) -> str:
    exit_code, out, err = run_main(monkeypatch, capsys, "ask", QUESTION, "--index-dir", str(index_dir))
    lines = err.strip().splitlines()
    assert exit_code == code and out == "", err
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "qa index --rebuild" in lines[0] and contains in lines[0], lines[0]
    return lines[0]


def _rewrite_manifest(generation: Path, **changes) -> None:
    path = generation / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def test_intact_index_answers(index_dir, capsys, monkeypatch):
    """The control case: the same command on an undamaged copy answers."""
    code, out, err = run_main(monkeypatch, capsys, "ask", QUESTION, "--index-dir", str(index_dir))
    assert code == 0 and "harbour.txt" in out, err


def test_truncated_faiss_file(index_dir, capsys, monkeypatch):
    path = _generation(index_dir) / "vectors.faiss"
    os.truncate(path, path.stat().st_size // 2)
    _assert_one_line_rebuild_error(
        index_dir, capsys, monkeypatch, contains="wrong size vectors.faiss (truncated or modified)"
    )


def test_faiss_file_overwritten_with_garbage_of_the_same_size(index_dir, capsys, monkeypatch):
    path = _generation(index_dir) / "vectors.faiss"
    data = bytearray(path.read_bytes())
    data[:64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    _assert_one_line_rebuild_error(index_dir, capsys, monkeypatch, contains="cannot be read (RuntimeError")


@pytest.mark.parametrize("page", [0, 1, "middle", "last"])
def test_corrupt_sqlite_page(index_dir, capsys, monkeypatch, page):
    """Random bytes over one 4 KiB page, same size: caught when the index is opened, not mid-answer."""
    path = _generation(index_dir) / "meta.sqlite"
    data = bytearray(path.read_bytes())
    pages = len(data) // 4096
    number = {"middle": pages // 2, "last": pages - 1}.get(page, page)
    data[number * 4096 : (number + 1) * 4096] = np.random.default_rng(number).bytes(4096)
    path.write_bytes(bytes(data))
    _assert_one_line_rebuild_error(index_dir, capsys, monkeypatch, contains="cannot be read (DatabaseError")


def test_manifest_from_another_model(index_dir, capsys, monkeypatch):
    """A manifest naming another model: refused with the exact rebuild command for this corpus."""
    root = json.loads((_generation(index_dir) / "manifest.json").read_text())["root"]
    _rewrite_manifest(
        _generation(index_dir),
        model="sentence-transformers/all-mpnet-base-v2",
        model_fingerprint="0123456789abcdef:torch",
        dim=768,
        backend="torch",
    )
    line = _assert_one_line_rebuild_error(index_dir, capsys, monkeypatch, contains="all-mpnet-base-v2")
    assert line.endswith(f"qa index --rebuild '{root}'")


def test_unreadable_manifest(index_dir, capsys, monkeypatch):
    (_generation(index_dir) / "manifest.json").write_bytes(pickle.dumps({"format_version": 1}))
    _assert_one_line_rebuild_error(index_dir, capsys, monkeypatch, contains="manifest")


def test_current_pointing_outside_the_index(index_dir, capsys, monkeypatch):
    (index_dir / "CURRENT").write_text("../../etc")
    _assert_one_line_rebuild_error(index_dir, capsys, monkeypatch, contains="not an index generation")


def test_planted_pickle_file_is_refused_and_never_loaded(index_dir, tmp_path, capsys, monkeypatch):
    marker = tmp_path / "pwned"
    (_generation(index_dir) / "vectors.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    _assert_one_line_rebuild_error(
        index_dir, capsys, monkeypatch, contains="unexpected file(s) vectors.pkl (never loaded)"
    )
    assert not marker.exists()


@pytest.mark.parametrize("name", ["bm25_ids.npy", "bm25/data.csc.index.npy", "vectors.faiss", "bm25/vocab.index.json"])
def test_pickle_inside_a_known_file_is_not_unpickled(index_dir, tmp_path, capsys, monkeypatch, name):
    """Even with the manifest's sizes forged to match, a pickle where data belongs is rejected, not run."""
    marker = tmp_path / "pwned"
    generation = _generation(index_dir)
    target = generation / name
    if name.endswith(".npy"):
        np.save(target, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    else:
        target.write_bytes(pickle.dumps(_Payload(marker)))
    files = json.loads((generation / "manifest.json").read_text())["files"]
    files[name] = target.stat().st_size
    _rewrite_manifest(generation, files=files)
    _assert_one_line_rebuild_error(index_dir, capsys, monkeypatch, contains="cannot be read")
    assert not marker.exists()


def test_opening_and_asking_never_calls_pickle(index_dir, monkeypatch):
    """With every unpickling entry point booby-trapped, an intact index still opens and answers."""
    from fakes import HashingEmbedder

    from qa.engine import Engine

    def trap(*args, **kwargs):
        raise AssertionError("something tried to unpickle data from the index folder")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, trap)
    engine = Engine.open(index_dir, HashingEmbedder())
    try:
        assert engine.ask(QUESTION).passages[0].citation.source == "harbour.txt"
    finally:
        engine.close()
