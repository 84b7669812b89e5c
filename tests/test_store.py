"""The on-disk index: manifest, refusal of mismatches and tampering, incremental updates, atomic swap, lock."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, write_corpus
from index import store
from index.builder import build_index
from index.chunker import ChunkSettings
from index.embedder import HashingEmbedder
from index.errors import CancelledError, IndexCorruptError, IndexLockedError, IndexMismatchError, IndexMissingError
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
    return write_corpus(root, {f"doc{i:02d}.txt": f"Document {i} is about topic{i}. It mentions word{i} twice: word{i}." for i in range(n)})


def embedded_rows(conn) -> list[tuple[int, str]]:
    """(FAISS id, text) of what was embedded: sentence units when the index has them, else chunks."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    table = "units" if "units" in tables else "chunks"
    return conn.execute(f"SELECT id, text FROM {table} ORDER BY id").fetchall()


def assert_vectors_match_texts(loaded, embedder) -> None:
    """FAISS holds exactly one vector per embedded row, under the row's id, equal to its embedding."""
    rows = embedded_rows(loaded.conn)
    assert rows and loaded.faiss.ntotal == len(rows)
    for rid, text in rows:
        np.testing.assert_allclose(loaded.faiss.reconstruct(rid), embedder.embed([text])[0], atol=1e-6)


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
    raw["format_version"] = store.FORMAT_VERSION + 1
    path.write_text(json.dumps(raw))
    with pytest.raises(IndexMismatchError, match="qa index --rebuild"):
        Engine.open(tmp_path / "idx", fake_embedder)


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
    corpus = write_corpus(tmp_path / "docs", {f"doc{i:02d}.txt": f"Document {i} talks about subject{i}. Another line {i}." for i in range(42)})
    first = CountingEmbedder()
    report = build_index([corpus], tmp_path / "idx", first)
    assert report.summary() == "42 new, 0 changed, 0 unchanged, 0 removed, 0 skipped"
    assert report.embedded_chunks == len(first.embedded) > 0

    (corpus / "doc05.txt").write_text("Document 5 was rewritten about zeppelins.", encoding="utf-8")
    (corpus / "doc07.txt").unlink()
    write_corpus(corpus, {"new/a.md": "A brand new note on quasars.", "b.html": "<p>Another page on glaciers.</p>", "image.png": b"\x89PNG"})
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
            "SELECT chunks.id, documents.source, chunks.text FROM chunks JOIN documents ON documents.id = chunks.doc_id ORDER BY chunks.id"
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
    assert len(forced.embedded) == report.embedded_chunks and all(f"topic{i}" in " ".join(forced.embedded) for i in range(3))
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
        build_index([corpus], tmp_path / "idx", HashingEmbedder(), progress=progress, cancelled=lambda: "scan" in stages)
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

    from index.lexical import BM25Settings, ColumnLexical, LexicalIndex, analyze, idf_weights

    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(300)] + ["ferry", "ferries", "harbour", "Hollande", "don't", "café"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(0, 60)))) for _ in range(400)]
    built = LexicalIndex.build(texts, BM25Settings())
    built.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25", BM25Settings())
    reference = LexicalIndex(bm25s.BM25.load(str(tmp_path / "bm25"), allow_pickle=False, show_progress=False), BM25Settings())
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
