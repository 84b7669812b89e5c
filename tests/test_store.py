"""The on-disk index: manifest, refusal of mismatches and tampering, incremental updates, atomic swap, lock."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, write_corpus
from fakes import HashingEmbedder

from index import store
from index.builder import build_index
from index.chunker import ChunkSettings
from index.errors import (
    CancelledError,
    EmptyCorpusError,
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexMissingError,
)
from index.stores import open_store
from qa.engine import Engine


class CountingEmbedder(HashingEmbedder):
    """The fake embedder, remembering every text it embedded; can fail after a number of calls."""

    def __init__(self, fail_after_calls: int | None = None) -> None:
        super().__init__()
        self.embedded: list[str] = []
        self.calls = 0
        self.fail_after_calls = fail_after_calls

    def embed(self, texts):
        if self.fail_after_calls is not None and self.calls >= self.fail_after_calls:
            raise RuntimeError("embedder exploded")
        self.calls += 1
        self.embedded.extend(texts)
        return super().embed(texts)


def small_corpus(root: Path, n: int = 3) -> Path:
    return write_corpus(
        root,
        {f"doc{i:02d}.txt": f"Document {i} is about topic{i}. It mentions word{i} twice: word{i}." for i in range(n)},
    )


def embedded_rows(conn) -> list[tuple[int, str]]:
    """(FAISS id, text) of what was embedded: sentence units when the index has them, else chunks."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    table = "units" if "units" in tables else "chunks"
    return conn.execute(f"SELECT id, text FROM {table} ORDER BY id").fetchall()


def assert_vectors_match_texts(loaded, embedder) -> None:
    """FAISS holds exactly one vector per embedded row, under the row's id, equal to its embedding."""
    rows = embedded_rows(loaded.conn)
    assert rows and loaded.dense.ntotal == len(rows)
    for rid, text in rows:
        np.testing.assert_allclose(loaded.dense.vectors([rid])[0], embedder.embed([text])[0], atol=1e-6)


# -- manifest -------------------------------------------------------------------


def test_manifest_records_what_built_the_index(tmp_path, fake_embedder):
    corpus = small_corpus(tmp_path / "docs")
    chunking = ChunkSettings(max_tokens=64, overlap_tokens=8)
    build_index([corpus], tmp_path / "idx", fake_embedder, chunking)
    manifest = store.read_manifest(tmp_path / "idx")
    assert manifest.format_version == store.FORMAT_VERSION
    assert manifest.model == fake_embedder.name
    assert manifest.model_fingerprint == fake_embedder.fingerprint()
    assert manifest.dim == fake_embedder.dim
    assert manifest.backend == "fake"
    assert manifest.chunking == asdict(chunking)
    assert manifest.n_documents == 3 and manifest.n_chunks >= 3
    assert manifest.root == str(corpus.resolve())
    gen = store.current_generation(tmp_path / "idx")
    assert set(manifest.files) == set(store.list_files(gen)) - {store.MANIFEST}
    assert {store.SQLITE, store.FAISS, store.BM25_IDS} <= set(manifest.files)
    assert any(name.startswith(store.BM25_DIR + "/") for name in manifest.files)
    raw = json.loads((store.current_generation(tmp_path / "idx") / store.MANIFEST).read_text())
    assert raw["model_fingerprint"] == fake_embedder.fingerprint()


def test_round_trip_save_close_load_search(tmp_path, fake_embedder):
    corpus = small_corpus(tmp_path / "docs", 5)
    build_index([corpus], tmp_path / "idx", fake_embedder)
    loaded = store.load_index(tmp_path / "idx")
    try:
        rows = loaded.conn.execute("SELECT id, text FROM chunks ORDER BY id").fetchall()
        assert len(rows) == loaded.n_chunks == loaded.manifest.n_chunks
        assert loaded.bm25_ids.tolist() == [r[0] for r in rows]
        assert_vectors_match_texts(loaded, fake_embedder)
        scores = loaded.lexical.scores("topic3")
        assert rows[int(np.argmax(scores))][1].startswith("Document 3")
    finally:
        loaded.close()


# -- refusal --------------------------------------------------------------------


def test_other_model_is_refused_with_the_command_to_run(tmp_path, fake_embedder):
    corpus = small_corpus(tmp_path / "docs")
    build_index([corpus], tmp_path / "idx", fake_embedder)
    with pytest.raises(IndexMismatchError) as err:
        Engine.open(tmp_path / "idx", HashingEmbedder(dim=32))
    message = err.value.one_line()
    assert "hashing-64" in message and "hashing-32" in message
    assert f"qa index --rebuild '{corpus.resolve()}'" in message
    assert "\n" not in message


def test_other_chunker_settings_are_refused(tmp_path, fake_embedder):
    build_index([small_corpus(tmp_path / "docs")], tmp_path / "idx", fake_embedder)
    with pytest.raises(IndexMismatchError, match=r"chunking .* qa index --rebuild"):
        Engine.open(tmp_path / "idx", fake_embedder, chunking=ChunkSettings(max_tokens=64))
    Engine.open(tmp_path / "idx", fake_embedder, chunking=ChunkSettings()).close()


def test_other_backend_is_refused(tmp_path, fake_embedder):
    build_index([small_corpus(tmp_path / "docs")], tmp_path / "idx", fake_embedder)
    with pytest.raises(IndexMismatchError, match=r"backend fake, you asked for torch.*--backend torch"):
        Engine.open(tmp_path / "idx", fake_embedder, backend="torch")


def test_other_format_version_is_refused(tmp_path, fake_embedder):
    build_index([small_corpus(tmp_path / "docs")], tmp_path / "idx", fake_embedder)
    path = store.current_generation(tmp_path / "idx") / store.MANIFEST
    raw = json.loads(path.read_text())
    raw["format_version"] = max(store.READ_FORMATS) + 1
    path.write_text(json.dumps(raw))
    with pytest.raises(IndexMismatchError, match="qa index --rebuild") as err:
        Engine.open(tmp_path / "idx", fake_embedder)
    assert f"qa index --rebuild '{(tmp_path / 'docs').resolve()}'" in str(err.value)  # the folder to rebuild, not PATH


def test_a_planted_file_in_the_generation_is_refused(tmp_path, fake_embedder):
    build_index([small_corpus(tmp_path / "docs")], tmp_path / "idx", fake_embedder)
    gen = store.current_generation(tmp_path / "idx")
    (gen / "evil.pkl").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(IndexCorruptError, match=r"unexpected file\(s\) evil.pkl.*qa index --rebuild"):
        store.load_index(tmp_path / "idx")


def test_a_truncated_file_is_refused(tmp_path, fake_embedder):
    build_index([small_corpus(tmp_path / "docs")], tmp_path / "idx", fake_embedder)
    vectors = store.current_generation(tmp_path / "idx") / store.FAISS
    vectors.write_bytes(vectors.read_bytes()[:100])
    with pytest.raises(IndexCorruptError, match=f"wrong size {store.FAISS}"):
        store.load_index(tmp_path / "idx")


@pytest.mark.parametrize("pointer", ["../../etc", "gen-missing", "not-a-generation"])
def test_a_bad_current_pointer_is_refused(tmp_path, fake_embedder, pointer):
    build_index([small_corpus(tmp_path / "docs")], tmp_path / "idx", fake_embedder)
    (tmp_path / "idx" / store.CURRENT).write_text(pointer)
    with pytest.raises(IndexCorruptError, match="qa index --rebuild"):
        store.load_index(tmp_path / "idx")


def test_missing_index_says_how_to_build_it(tmp_path):
    with pytest.raises(IndexMissingError, match="qa index PATH"):
        store.load_index(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexMissingError, match="qa index PATH"):
        store.load_index(tmp_path / "empty")


def test_no_pickle_anywhere(tmp_path, fake_embedder):
    """Every saved array loads with allow_pickle=False, and no code path can unpickle."""
    build_index([small_corpus(tmp_path / "docs")], tmp_path / "idx", fake_embedder)
    gen = store.current_generation(tmp_path / "idx")
    npys = list(gen.rglob("*.npy"))
    assert npys
    for path in npys:
        np.load(path, allow_pickle=False)
    for path in gen.rglob("*"):
        assert path.suffix not in {".pkl", ".pickle", ".joblib"}
    offenders = []
    for folder in ("index", "qa"):
        for source in (REPO / folder).rglob("*.py"):
            text = source.read_text(encoding="utf-8")
            if re.search(r"\bimport pickle\b|\bjoblib\b|allow_pickle\s*=\s*True|torch\.load\(|\bshelve\b", text):
                offenders.append(source.name)
    assert offenders == []


# -- incremental ----------------------------------------------------------------


def test_incremental_reindex_embeds_only_new_and_changed_files(tmp_path):
    corpus = write_corpus(
        tmp_path / "docs",
        {f"doc{i:02d}.txt": f"Document {i} talks about subject{i}. Another line {i}." for i in range(42)},
    )
    first = CountingEmbedder()
    report = build_index([corpus], tmp_path / "idx", first)
    assert report.summary() == "42 new, 0 changed, 0 unchanged, 0 removed, 0 skipped"
    assert report.embedded_chunks == len(first.embedded) > 0

    (corpus / "doc05.txt").write_text("Document 5 was rewritten about zeppelins.", encoding="utf-8")
    (corpus / "doc07.txt").unlink()
    write_corpus(
        corpus,
        {
            "new/a.md": "A brand new note on quasars.",
            "b.html": "<p>Another page on glaciers.</p>",
            "image.png": b"\x89PNG",
        },
    )
    second = CountingEmbedder()
    report = build_index([corpus], tmp_path / "idx", second)
    assert report.summary() == "2 new, 1 changed, 40 unchanged, 1 removed, 1 skipped"
    fresh = ["Document 5 was rewritten about zeppelins.", "A brand new note on quasars.", "Another page on glaciers."]
    assert second.embedded, "new and changed files are embedded"
    assert all(any(text in doc for doc in fresh) for text in second.embedded), "nothing else is re-embedded"
    assert all(any(text in doc for text in second.embedded) for doc in fresh)
    assert report.embedded_chunks == len(second.embedded)
    assert report.n_documents == 43

    loaded = store.load_index(tmp_path / "idx")
    try:
        rows = loaded.conn.execute(
            "SELECT chunks.id, documents.source, chunks.text FROM chunks"
            " JOIN documents ON documents.id = chunks.doc_id ORDER BY chunks.id"
        ).fetchall()
        sources = {r[1] for r in rows}
        assert "doc07.txt" not in sources and {"new/a.md", "b.html", "doc05.txt"} <= sources
        assert not any("subject5" in r[2] for r in rows)
        # FAISS holds exactly the surviving texts, each under its own id with its own vector.
        assert loaded.bm25_ids.tolist() == [r[0] for r in rows]
        assert_vectors_match_texts(loaded, HashingEmbedder())
        assert not any("subject5" in text or "subject7" in text for _, text in embedded_rows(loaded.conn))
    finally:
        loaded.close()

    third = CountingEmbedder()
    report = build_index([corpus], tmp_path / "idx", third)
    assert report.summary() == "0 new, 0 changed, 43 unchanged, 0 removed, 1 skipped"
    assert third.embedded == []


class ReadCounter:
    """Counts the files the scan reads (index.walk.load_document)."""

    def __init__(self, monkeypatch) -> None:
        import index.walk

        self.sources: list[str] = []
        real = index.walk.load_document

        def counting(path, root, max_bytes, source=None):
            doc = real(path, root, max_bytes, source)
            self.sources.append(doc.source)
            return doc

        monkeypatch.setattr(index.walk, "load_document", counting)


def test_files_with_an_unchanged_stat_are_not_read_again(tmp_path, monkeypatch, fake_embedder):
    import index.walk

    monkeypatch.setattr(index.walk, "RACY_NS", 0)  # the files were written just now
    corpus = write_corpus(
        tmp_path / "docs", {f"doc{i:02d}.txt": f"Document {i} talks about subject{i}." for i in range(6)}
    )
    build_index([corpus], tmp_path / "idx", fake_embedder)
    reads = ReadCounter(monkeypatch)
    report = build_index([corpus], tmp_path / "idx", fake_embedder)
    assert report.summary() == "0 new, 0 changed, 6 unchanged, 0 removed, 0 skipped"
    assert reads.sources == []

    # Same size, new bytes: the stat differs, so the file is read and re-embedded.
    (corpus / "doc01.txt").write_text("Document 1 talks about subjectX.", encoding="utf-8")
    # Same size and the old mtime put back (as cp -p or rsync -t do): ctime still differs.
    before = (corpus / "doc02.txt").stat()
    (corpus / "doc02.txt").write_text("Document 2 talks about subjectY.", encoding="utf-8")
    os.utime(corpus / "doc02.txt", ns=(before.st_atime_ns, before.st_mtime_ns))
    # Touched only: read and hashed once, its new stat recorded, not re-embedded.
    os.utime(corpus / "doc03.txt")
    counting = CountingEmbedder()
    report = build_index([corpus], tmp_path / "idx", counting)
    assert report.summary() == "0 new, 2 changed, 4 unchanged, 0 removed, 0 skipped"
    assert sorted(reads.sources) == ["doc01.txt", "doc02.txt", "doc03.txt"]
    assert "subjectX" in " ".join(counting.embedded) and "subjectY" in " ".join(counting.embedded)
    assert "subject3" not in " ".join(counting.embedded)

    reads.sources.clear()
    assert (
        build_index([corpus], tmp_path / "idx", fake_embedder).summary()
        == "0 new, 0 changed, 6 unchanged, 0 removed, 0 skipped"
    )
    assert reads.sources == []
    engine = Engine.open(tmp_path / "idx", fake_embedder)
    try:
        assert engine.search("subjectY", k=1, mode="bm25")[0].citation.source == "doc02.txt"
    finally:
        engine.close()

    # A lower size limit still applies to files that did not change; --rebuild reads everything.
    with pytest.raises(EmptyCorpusError, match="6 skipped"):
        build_index([corpus], tmp_path / "idx", fake_embedder, max_bytes=10)
    reads.sources.clear()
    report = build_index([corpus], tmp_path / "idx", fake_embedder, rebuild=True)
    assert report.summary() == "6 new, 0 changed, 0 unchanged, 0 removed, 0 skipped"
    assert sorted(reads.sources) == [f"doc{i:02d}.txt" for i in range(6)]


def test_stats_of_files_written_just_before_the_scan_are_not_trusted(tmp_path, monkeypatch, fake_embedder):
    """A file written in the same clock tick as the scan could change again without changing its
    stat: such files are read again by the next run (git's "racy clean" rule)."""
    corpus = small_corpus(tmp_path / "docs", 3)
    build_index([corpus], tmp_path / "idx", fake_embedder)
    reads = ReadCounter(monkeypatch)
    assert build_index([corpus], tmp_path / "idx", fake_embedder).unchanged == 3
    assert sorted(reads.sources) == ["doc00.txt", "doc01.txt", "doc02.txt"]


def _generation_digest(folder: Path) -> dict[str, str]:
    import hashlib

    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _passages(index_dir: Path, embedder, queries) -> list:
    engine = Engine.open(index_dir, embedder)
    try:
        # Sorted, and without zero scores: rows of equal score may come in another order (row ids differ).
        return [
            sorted(
                (
                    p.citation.source,
                    p.citation.char_start,
                    p.citation.char_end,
                    round(p.scores.bm25, 5),
                    round(p.scores.dense, 5),
                    round(p.scores.fused, 5),
                )
                for p in engine.search(q, k=5, mode=mode)
                if p.scores.fused > 0
            )
            for q in queries
            for mode in ("hybrid", "dense", "bm25")
        ]
    finally:
        engine.close()


@pytest.mark.parametrize("delta_share", [0.0, 10.0])
def test_incremental_updates_answer_like_a_fresh_build_and_never_touch_the_old_generation(
    tmp_path, monkeypatch, fake_embedder, delta_share
):
    """Edit, add and remove files over several updates (with the FAISS and BM25 bases kept and deltas
    beside them, or compacted every time): the passages and scores equal those of a fresh build of the
    same files, and each update leaves every byte of the generation it replaced as it was."""
    import index.lexical_delta
    import index.vectors

    monkeypatch.setattr(index.vectors, "DELTA_SHARE", delta_share)
    monkeypatch.setattr(index.lexical_delta, "DELTA_SHARE", delta_share)
    topics = ["glaciers", "volcanoes", "harbours", "orchards", "comets", "violins", "deserts", "lanterns"]
    corpus = write_corpus(
        tmp_path / "docs",
        {f"doc{i}.txt": f"Document {i} is about {t}. It says {t} matter. Also word{i}." for i, t in enumerate(topics)},
    )
    build_index([corpus], tmp_path / "inc", fake_embedder)
    queries = ["glaciers", "comets matter", "saffron lighthouse", "word3", "violins and deserts"]
    edits = [
        lambda: (corpus / "doc1.txt").write_text(
            "Document 1 now covers the saffron lighthouse. Lighthouses matter.", encoding="utf-8"
        ),
        lambda: (corpus / "doc2.txt").unlink(),
        lambda: (corpus / "new.txt").write_text("A new note about comets and glaciers.", encoding="utf-8"),
        lambda: (corpus / "doc1.txt").write_text(
            "Document 1 is about violins again. Violins matter.", encoding="utf-8"
        ),
    ]
    monkeypatch.setattr(store._no_readers.__wrapped__, "__defaults__", (0.05,))
    for step, edit in enumerate(edits):
        live = store.current_generation(tmp_path / "inc")
        before = _generation_digest(live)
        edit()
        with store._reading(tmp_path / "inc"):  # keeps the replaced generation on disk to compare
            report = build_index([corpus], tmp_path / "inc", fake_embedder)
        assert report.new + report.changed + report.removed == 1
        assert _generation_digest(live) == before
        loaded = store.load_index(tmp_path / "inc")
        try:  # the row ids the update derived from the previous generation are the table's ids
            assert loaded.bm25_ids.tolist() == [r[0] for r in loaded.conn.execute("SELECT id FROM chunks ORDER BY id")]
            assert loaded.unit_ids.tolist() == [r[0] for r in loaded.conn.execute("SELECT id FROM units ORDER BY id")]
        finally:
            loaded.close()
        new_gen = store.current_generation(tmp_path / "inc")
        deltas = [index.lexical_build.has_delta(new_gen / folder) for folder in (store.BM25_DIR, store.UNIT_BM25_DIR)]
        if delta_share:
            assert (new_gen / index.vectors.DELTA_FILE).is_file() or (new_gen / index.vectors.REMOVED_FILE).is_file()
            assert (
                deltas == [True, True]
                and store.read_manifest(tmp_path / "inc").format_version == store.DELTA_FORMAT_VERSION
            )
        else:
            assert (
                deltas == [False, False]
                and store.read_manifest(tmp_path / "inc").format_version == store.FORMAT_VERSION
            )
        fresh = tmp_path / f"fresh{step}"
        build_index([corpus], fresh, fake_embedder)
        assert _passages(tmp_path / "inc", fake_embedder, queries) == _passages(fresh, fake_embedder, queries)


def test_an_update_shares_unchanged_files_with_the_old_generation(tmp_path, monkeypatch, fake_embedder):
    """The FAISS and BM25 bases are hard-linked into the new generation, not rewritten; the old
    generation stays intact even while an engine has it open."""
    import index.lexical_delta
    import index.vectors

    monkeypatch.setattr(index.vectors, "DELTA_SHARE", 10.0)
    monkeypatch.setattr(index.lexical_delta, "DELTA_SHARE", 10.0)
    corpus = small_corpus(tmp_path / "docs", 5)
    build_index([corpus], tmp_path / "idx", fake_embedder)
    old = store.current_generation(tmp_path / "idx")
    engine = Engine.open(tmp_path / "idx", fake_embedder)
    try:
        before = _generation_digest(old)
        answers = [p.citation.text for p in engine.search("topic3 word3", k=3)]
        (corpus / "doc03.txt").write_text("Document 3 now talks about zeppelins.", encoding="utf-8")
        # A reader opening the old generation right now: the writer leaves it in place (after a short wait).
        monkeypatch.setattr(store._no_readers.__wrapped__, "__defaults__", (0.05,))
        with store._reading(tmp_path / "idx"):
            build_index([corpus], tmp_path / "idx", fake_embedder)
        new = store.current_generation(tmp_path / "idx")
        assert new != old
        assert (new / store.FAISS).stat().st_ino == (old / store.FAISS).stat().st_ino
        for folder in (store.BM25_DIR, store.UNIT_BM25_DIR):
            assert (new / folder / "indices.csc.index.npy").stat().st_ino == (
                old / folder / "indices.csc.index.npy"
            ).stat().st_ino
        assert (new / store.SQLITE).stat().st_ino != (old / store.SQLITE).stat().st_ino
        assert _generation_digest(old) == before
        assert [p.citation.text for p in engine.search("topic3 word3", k=3)] == answers
    finally:
        engine.close()
    store.load_index(tmp_path / "idx").close()


def test_incremental_search_sees_new_text_and_forgets_removed_text(tmp_path, fake_embedder):
    corpus = small_corpus(tmp_path / "docs", 4)
    build_index([corpus], tmp_path / "idx", fake_embedder)
    (corpus / "doc01.txt").unlink()
    write_corpus(corpus, {"doc09.txt": "Penguins waddle across Antarctic ice."})
    build_index([corpus], tmp_path / "idx", fake_embedder)
    engine = Engine.open(tmp_path / "idx", fake_embedder)
    try:
        for mode in ("hybrid", "dense", "bm25"):
            top = engine.search("penguins antarctic ice", k=3, mode=mode)
            assert top[0].citation.source == "doc09.txt"
            assert all(p.citation.source != "doc01.txt" for p in engine.search("topic1 word1", k=10, mode=mode))
    finally:
        engine.close()


def test_rebuild_flag_and_changed_settings_re_embed_everything(tmp_path):
    corpus = small_corpus(tmp_path / "docs", 3)
    build_index([corpus], tmp_path / "idx", CountingEmbedder())
    forced = CountingEmbedder()
    report = build_index([corpus], tmp_path / "idx", forced, rebuild=True)
    assert report.summary() == "3 new, 0 changed, 0 unchanged, 0 removed, 0 skipped"
    assert len(forced.embedded) == report.embedded_chunks and all(
        f"topic{i}" in " ".join(forced.embedded) for i in range(3)
    )
    other = CountingEmbedder()
    report = build_index([corpus], tmp_path / "idx", other, ChunkSettings(max_tokens=5, overlap_tokens=0))
    assert report.rebuilt_because and "chunking" in report.rebuilt_because
    assert len(other.embedded) == report.embedded_chunks and report.n_chunks > 3
    assert all(f"topic{i}" in " ".join(other.embedded) for i in range(3))
    assert store.read_manifest(tmp_path / "idx").chunking == asdict(ChunkSettings(max_tokens=5, overlap_tokens=0))


# -- atomic swap and lock -------------------------------------------------------


def _index_state(index_dir: Path) -> tuple[str, list[str]]:
    loaded = store.load_index(index_dir)
    try:
        texts = [r[0] for r in loaded.conn.execute("SELECT text FROM chunks ORDER BY id")]
    finally:
        loaded.close()
    return (index_dir / store.CURRENT).read_text(), texts


@pytest.mark.parametrize("rebuild", [False, True])
def test_a_build_that_fails_midway_leaves_the_old_index_loadable(tmp_path, rebuild):
    corpus = small_corpus(tmp_path / "docs", 3)
    build_index([corpus], tmp_path / "idx", HashingEmbedder())
    before = _index_state(tmp_path / "idx")
    write_corpus(corpus, {"doc99.txt": "A new file that will never be embedded."})
    with pytest.raises(RuntimeError, match="exploded"):
        build_index([corpus], tmp_path / "idx", CountingEmbedder(fail_after_calls=0), rebuild=rebuild)
    assert _index_state(tmp_path / "idx") == before
    assert [p.name for p in (tmp_path / "idx").iterdir() if p.name.startswith("gen-")] == [before[0]]
    Engine.open(tmp_path / "idx", HashingEmbedder()).close()


def test_cancel_leaves_the_old_index_loadable(tmp_path):
    corpus = small_corpus(tmp_path / "docs", 3)
    build_index([corpus], tmp_path / "idx", HashingEmbedder())
    before = _index_state(tmp_path / "idx")
    (corpus / "doc00.txt").write_text("Changed text.", encoding="utf-8")
    stages = []

    def progress(stage, done, total):
        stages.append(stage)

    with pytest.raises(CancelledError):
        build_index(
            [corpus], tmp_path / "idx", HashingEmbedder(), progress=progress, cancelled=lambda: "scan" in stages
        )
    assert _index_state(tmp_path / "idx") == before


def test_leftover_half_written_generation_is_cleaned_up(tmp_path, fake_embedder):
    corpus = small_corpus(tmp_path / "docs", 2)
    build_index([corpus], tmp_path / "idx", fake_embedder)
    crashed = tmp_path / "idx" / "gen-20000101000000-1-000001.tmp"
    crashed.mkdir()
    (crashed / "vectors.faiss").write_bytes(b"half")
    build_index([corpus], tmp_path / "idx", fake_embedder)
    gens = [p.name for p in (tmp_path / "idx").iterdir() if p.name.startswith("gen-")]
    assert gens == [(tmp_path / "idx" / store.CURRENT).read_text()]


def test_writers_are_locked_out_while_another_holds_the_lock(tmp_path, fake_embedder):
    corpus = small_corpus(tmp_path / "docs", 2)
    build_index([corpus], tmp_path / "idx", fake_embedder)
    with store.write_lock(tmp_path / "idx"):
        with pytest.raises(IndexLockedError) as err:
            build_index([corpus], tmp_path / "idx", fake_embedder)
    assert "--wait" in err.value.one_line() and "pid" in err.value.one_line()
    assert err.value.exit_code == 75
    # Readers are not blocked, and the lock is released afterwards.
    store.load_index(tmp_path / "idx").close()
    build_index([corpus], tmp_path / "idx", fake_embedder)


def test_unreadable_manifest_is_refused(tmp_path, fake_embedder):
    build_index([small_corpus(tmp_path / "docs")], tmp_path / "idx", fake_embedder)
    (store.current_generation(tmp_path / "idx") / store.MANIFEST).write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="manifest .* unreadable.*qa index --rebuild"):
        store.load_index(tmp_path / "idx")


def test_an_open_engine_keeps_answering_while_a_new_generation_replaces_its_own(tmp_path, fake_embedder):
    """The chat may hold an engine while `qa index` swaps in a new generation and deletes the old one."""
    corpus = small_corpus(tmp_path / "docs", 3)
    build_index([corpus], tmp_path / "idx", fake_embedder)
    engine = Engine.open(tmp_path / "idx", fake_embedder)
    try:
        old_folder = engine.index.folder
        write_corpus(corpus, {"doc50.txt": "Penguins waddle across Antarctic ice."})
        build_index([corpus], tmp_path / "idx", fake_embedder)
        assert not old_folder.exists()
        assert engine.search("topic2 word2", k=1)[0].citation.source == "doc02.txt"
        assert engine.sources() == ["doc00.txt", "doc01.txt", "doc02.txt"]
    finally:
        engine.close()
    fresh = Engine.open(tmp_path / "idx", fake_embedder)
    try:
        assert "doc50.txt" in fresh.sources()
    finally:
        fresh.close()


def test_bm25_read_by_column_scores_exactly_as_bm25s(tmp_path):
    """The loaded index reads BM25 columns from disk; its scores equal bm25s's own, bit for bit."""
    import bm25s

    from index.lexical import BM25Settings, LexicalIndex, analyze, idf_weights
    from index.lexical_column import ColumnLexical, load_lexical

    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(300)] + ["ferry", "ferries", "harbour", "Hollande", "don't", "café"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(0, 60)))) for _ in range(400)]
    built = LexicalIndex.build(texts, BM25Settings())
    built.save(tmp_path / "bm25")
    loaded = load_lexical(tmp_path / "bm25", BM25Settings())
    reference = LexicalIndex(
        bm25s.BM25.load(str(tmp_path / "bm25"), allow_pickle=False, show_progress=False), BM25Settings()
    )
    assert isinstance(loaded, ColumnLexical)
    queries = [" ".join(rng.choice(words, size=int(rng.integers(1, 12)))) for _ in range(200)]
    queries += ["ferry ferry ferries harbour", "unknownword", "", "the of and", "Hollande's café don't"]
    for query in queries:
        assert np.array_equal(loaded.scores(query), reference.scores(query)), query
        assert np.array_equal(loaded.scores(query), built.scores(query)), query
    terms = analyze("ferry harbour w1 unknownword")
    assert idf_weights(loaded, terms) == idf_weights(reference, terms)
    loaded.close()


def test_our_stopword_copy_is_bm25s_list():
    from bm25s.stopwords import STOPWORDS_EN

    from index.lexical import STOPWORDS_EN as ours

    assert ours == tuple(STOPWORDS_EN)


def test_a_tampered_manifest_cannot_put_escape_sequences_on_the_terminal(tmp_path, fake_embedder):
    build_index([small_corpus(tmp_path / "docs")], tmp_path / "idx", fake_embedder)
    path = store.current_generation(tmp_path / "idx") / store.MANIFEST
    raw = json.loads(path.read_text())
    raw["format_version"] = max(store.READ_FORMATS) + 1
    raw["roots"] = ["/x\x1b[2J\x1b]0;owned\x07\nEvil"]
    path.write_text(json.dumps(raw))
    with pytest.raises(IndexMismatchError) as err:
        Engine.open(tmp_path / "idx", fake_embedder)
    line = err.value.one_line()
    assert "\x1b" not in line and "\x07" not in line and "\n" not in line and "/x?[2J" in line


def test_the_swap_fsyncs_again_every_file_not_flushed_whole_and_unchanged(tmp_path, monkeypatch, fake_embedder):
    """Files an early flush fsynced as final are not fsynced twice; a file written after its early
    flush (or flushed as not final, like the SQLite copy an update keeps writing) is."""
    import index.files as files
    from index.files import EarlyFlush, fsync_written

    folder = tmp_path / "gen"
    (folder / "sub").mkdir(parents=True)
    for name in ("a", "b", "c", "sub/d"):
        (folder / name).write_bytes(b"x")
    flush = EarlyFlush()
    flush.start(folder / "a", final=True)
    flush.start(folder / "sub", final=True)
    flush.start(folder / "c")  # not final: may still be written
    flush.start(folder / "b", final=True)
    flush.wait()
    with open(folder / "b", "ab") as fh:  # written again after its early flush
        fh.write(b"more")
    synced: list[str] = []
    monkeypatch.setattr(files, "fsync_path", lambda path: synced.append(os.path.relpath(path, folder)))
    fsync_written(folder, flush.durable)
    assert sorted(synced) == sorted([".", "sub", "b", "c"])

    # and a whole build still ends with every file of its generation on disk
    synced.clear()
    monkeypatch.setattr(files, "fsync_path", lambda path: synced.append(str(path)))
    build_index([small_corpus(tmp_path / "docs", 3)], tmp_path / "idx", fake_embedder)
    gen = store.current_generation(tmp_path / "idx")
    written = {p.relative_to(gen).as_posix() for p in gen.rglob("*") if p.is_file()}
    assert written and written <= {s.split(".tmp/", 1)[-1] for s in synced if ".tmp/" in s}


def test_pending_changes_counts_what_an_update_would_do_and_writes_nothing(tmp_path, fake_embedder):
    from index.builder import Changes, pending_changes

    corpus = small_corpus(tmp_path / "docs", 4)
    build_index([corpus], tmp_path / "idx", fake_embedder)
    with open_store(tmp_path / "idx").read_catalog() as (catalog, _):
        assert pending_changes([corpus], catalog) == Changes(0, 0, 0) and not pending_changes([corpus], catalog)
        (corpus / "doc01.txt").write_text(
            (corpus / "doc01.txt").read_text(encoding="utf-8"), encoding="utf-8"
        )  # same bytes
        (corpus / "doc02.txt").write_text("Document 2 now talks about zeppelins.", encoding="utf-8")
        (corpus / "doc03.txt").unlink()
        (corpus / "new.txt").write_text("A new file.", encoding="utf-8")
        live = store.current_generation(tmp_path / "idx")
        changes = pending_changes([corpus], catalog)
        assert changes == Changes(new=1, changed=1, removed=1) and changes.summary() == "1 new, 1 changed, 1 removed"
        assert store.current_generation(tmp_path / "idx") == live
    report = build_index([corpus], tmp_path / "idx", fake_embedder)
    assert (report.new, report.changed, report.removed) == (1, 1, 1)


def test_files_whose_extractor_changed_are_read_again_by_the_next_update(tmp_path, fake_embedder, monkeypatch):
    """Raising an extractor's version (index/readers EXTRACTORS) makes the next incremental run read
    that kind of file again, though its bytes are the same: otherwise the index would keep the old text
    and the stale check, which extracts anew, would flag its citations until a full rebuild."""
    from conftest import make_pdf

    from index import readers
    from index.builder import Changes, pending_changes
    from index.readers import pdf

    corpus = write_corpus(
        tmp_path / "docs",
        {
            "a.txt": "Plain text about ships.",
            "b.pdf": make_pdf([["A PDF about zeppelins."]]),
            "c.html": "<p>Some HTML about trains.</p>",
        },
    )
    index_dir = tmp_path / "idx"
    build_index([corpus], index_dir, fake_embedder)
    assert store.read_manifest(index_dir).extractors == readers.EXTRACTORS
    monkeypatch.setitem(readers.EXTRACTORS, "pdf", readers.EXTRACTORS["pdf"] + 1)
    with open_store(index_dir).read_catalog() as (catalog, manifest):
        assert pending_changes([corpus], catalog) == Changes(0, 0, 0), "without the manifest nothing is outdated"
        assert pending_changes([corpus], catalog, manifest=manifest) == Changes(0, 1, 0)
    # Read again, but it makes the same passages: kept, not embedded again.
    report = build_index([corpus], index_dir, fake_embedder)
    assert (report.new, report.changed, report.unchanged, report.removed, report.embedded_chunks) == (0, 0, 3, 0, 0)
    assert store.read_manifest(index_dir).extractors["pdf"] == readers.EXTRACTORS["pdf"]
    # An upgrade that does change the text: the PDF is indexed anew.
    monkeypatch.setitem(readers.EXTRACTORS, "pdf", readers.EXTRACTORS["pdf"] + 1)
    real = pdf.pdf_to_text
    monkeypatch.setattr(pdf, "pdf_to_text", lambda data: real(data).replace("zeppelins", "airships"))
    report = build_index([corpus], index_dir, fake_embedder)
    assert (report.new, report.changed, report.unchanged, report.removed) == (0, 1, 2, 0) and report.embedded_chunks > 0
    assert store.read_manifest(index_dir).extractors["pdf"] == readers.EXTRACTORS["pdf"]
    report = build_index([corpus], index_dir, fake_embedder)
    assert (report.changed, report.unchanged) == (0, 3)


def test_a_splitter_upgrade_re_splits_wrapped_files_and_keeps_the_others(tmp_path, fake_embedder, monkeypatch):
    """An index made before soft line breaks (index/chunker.py soft_breaks) cut hard-wrapped files into
    one unit per line. The next update reads text files again: the wrapped one is split anew into
    sentences and embedded; the one-line file comes out the same and is kept, not embedded again."""
    from index import chunker, readers

    wrapped = (
        "# Harbour notes\n\n"
        "The harbour master publishes the tide tables every Monday morning, and the\n"
        "ferry timetable follows them. Boats that arrive after dark must call the\n"
        "Harbour Office on channel twelve before they enter the inner basin, where\n"
        "the berths are allocated by length. Fishing boats keep the north quay all\n"
        "year round, and visiting yachts moor along the south wall in the summer\n"
        "months. The fuel pontoon opens at seven and closes at dusk in the winter.\n"
    )
    corpus = write_corpus(
        tmp_path / "docs", {"notes.md": wrapped, "one.txt": "A single line about lighthouses and their keepers."}
    )
    index_dir = tmp_path / "idx"
    with monkeypatch.context() as old:
        old.setattr(chunker, "soft_breaks", lambda text: set())
        old.setitem(readers.EXTRACTORS, "text", readers.EXTRACTORS["text"] - 1)
        build_index([corpus], index_dir, fake_embedder)

    def units_of(source: str) -> list[str]:
        loaded = store.load_index(index_dir)
        try:
            return [
                r[0]
                for r in loaded.conn.execute(
                    "SELECT units.text FROM units JOIN documents ON documents.id = units.doc_id"
                    " WHERE source = ? ORDER BY units.id",
                    (source,),
                )
            ]
        finally:
            loaded.close()

    assert "The harbour master publishes the tide tables every Monday morning, and the" in units_of("notes.md")
    steps: list[tuple[str, int, int]] = []
    report = build_index([corpus], index_dir, fake_embedder, progress=lambda *step: steps.append(step))
    assert (report.new, report.changed, report.unchanged) == (0, 1, 1)
    assert ("recheck", 2, 2) in steps  # the re-check has its own progress (`qa index`: "checking")
    sentences = units_of("notes.md")
    assert (
        sentences[1]
        == "The harbour master publishes the tide tables every Monday morning, and the\nferry timetable follows them."
    )
    assert sentences[2].startswith("Boats that arrive after dark must call the\nHarbour Office") and sentences[
        2
    ].endswith("allocated by length.")
    assert report.embedded_chunks == len(sentences)  # notes.md alone
    assert units_of("one.txt") == ["A single line about lighthouses and their keepers."]


def test_an_index_folder_inside_the_corpus_is_not_indexed(tmp_path, fake_embedder):
    """--index-dir inside the corpus: its vocabulary files (terms.txt) are not documents, or every
    update would index the previous one's and the chat's watch would update for ever."""
    from index.walk import INDEX_MARKERS

    assert INDEX_MARKERS == (store.CURRENT, store.LOCK)
    corpus = small_corpus(tmp_path / "docs", 3)
    index_dir = corpus / "idx"
    build_index([corpus], index_dir, fake_embedder)
    report = build_index([corpus], index_dir, fake_embedder)
    assert (report.new, report.changed, report.unchanged, report.removed, report.skipped) == (0, 0, 3, 0, ())
    from index.builder import pending_changes

    with open_store(index_dir).read_catalog() as (catalog, manifest):
        assert not pending_changes([corpus], catalog, manifest=manifest)
        assert all(not src.startswith("idx") for src in catalog.sources())


def test_watch_corpus_indexes_each_change_until_interrupted(tmp_path, fake_embedder):
    """`qa index --watch`: every interval the files are compared with the index; each change is
    indexed (and reported) once, and nothing is indexed while nothing changes."""
    from qa.config import RunConfig
    from qa.service import index_corpus, watch_corpus

    corpus = small_corpus(tmp_path / "docs", 3)
    config = RunConfig(corpus=(corpus,), index_dir=tmp_path / "idx")
    index_corpus(config, fake_embedder)
    reports, looks = [], []

    def sleep(seconds: float) -> None:
        if seconds != 10.0:
            return  # the extra wait after a slow comparison
        looks.append(seconds)
        if len(looks) == 2:
            (corpus / "doc01.txt").write_text("Document 1 now talks about zebras.", encoding="utf-8")
        elif len(looks) == 4:
            (corpus / "doc02.txt").unlink()
        elif len(looks) == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        watch_corpus(config, fake_embedder, reports.append, interval=10.0, sleep=sleep)
    assert [(r.new, r.changed, r.removed) for r in reports] == [(0, 1, 0), (0, 0, 1)]
    engine = Engine.open(tmp_path / "idx", fake_embedder)
    try:
        assert "zebras" in engine.search("zebras", k=1, mode="bm25")[0].citation.text
    finally:
        engine.close()


def test_a_corpus_named_through_a_symbolic_link_keeps_its_folders_in_the_sources(tmp_path, fake_embedder):
    """~/notes -> /data/notes: sources are relative to the real folder, so nested files kept only their
    names ("sub/a.txt" became "a.txt"), the stale check read the wrong file, and two files of the same name
    in different folders stopped indexing with a traceback (UNIQUE constraint failed)."""
    real = write_corpus(
        tmp_path / "real",
        {"a.txt": "Alpha lives at the top.", "sub/a.txt": "Alpha also lives in the sub folder, with zebras."},
    )
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    report = build_index([link], tmp_path / "idx", fake_embedder)
    assert (report.new, report.n_documents) == (2, 2)
    engine = Engine.open(tmp_path / "idx", fake_embedder)
    try:
        assert sorted(engine.sources()) == ["a.txt", "sub/a.txt"]
        top = engine.search("zebras", k=1, mode="bm25")[0].citation
        assert top.source == "sub/a.txt" and "zebras" in top.text and not top.stale
    finally:
        engine.close()
    (real / "sub" / "a.txt").write_text("Alpha moved on; only lions here.", encoding="utf-8")
    report = build_index(
        [link], tmp_path / "idx", fake_embedder, changed_paths={str(link.absolute() / "sub" / "a.txt")}
    )
    assert (report.changed, report.unchanged, report.n_documents) == (1, 1, 2)
