"""Dense vector store: exact for small corpora, IVF-PQ re-ranked from fp16 for large ones; same answers either way."""

from __future__ import annotations

import numpy as np
import pytest

from index import vectors as V
from index.vectors import DenseSettings, build_dense, exact_top, load_dense, recall_at, update_dense

SMALL_PQ = DenseSettings(pq_bytes=16, rerank=100)


def clustered(n: int, seed: int, dim: int = 64, centres: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = np.random.default_rng(99).normal(size=(centres, dim)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + rng.normal(0, 0.08, size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_kind_is_exact_up_to_the_threshold():
    assert V.choose_kind(V.FLAT_MAX) == "flat"
    assert V.choose_kind(V.FLAT_MAX + 1) == "ivfpq"
    assert V.n_lists(1_000_000) == 4096


def test_flat_round_trip_is_exact(tmp_path):
    x = clustered(500, 1)
    ids = np.arange(1000, 1500, dtype=np.int64)[::-1].copy()  # any order in, ids kept
    assert build_dense(x, ids, tmp_path) == "flat"
    dense = load_dense(tmp_path, "flat")
    np.testing.assert_allclose(dense.vectors([ids[7]]), x[[7]], atol=1e-6)
    found, scores = dense.search(x[3], 5)
    assert found[0] == ids[3] and scores[0] == pytest.approx(1.0, abs=1e-5)
    allowed = np.sort(ids[:10])
    assert set(dense.search(x[400], 5, allowed)[0]) <= set(allowed.tolist())


def test_ivfpq_matches_exact_search_and_scores_any_id(tmp_path):
    x = clustered(3000, 2)
    ids = np.arange(3000, dtype=np.int64) * 7 + 5
    assert build_dense(x, ids, tmp_path, "ivfpq", SMALL_PQ, nlist=16) == "ivfpq"
    dense = load_dense(tmp_path, "ivfpq", SMALL_PQ)
    try:
        queries = clustered(40, 3)
        found = [dense.search(q, 10)[0] for q in queries]
        assert recall_at(found, exact_top(x, ids, queries, 10)) >= 0.95
        # Scores of arbitrary ids (BM25-only candidates) come from the fp16 copy: exact to fp16.
        np.testing.assert_allclose(dense.vectors(ids[[0, 1234, 2999]]), x[[0, 1234, 2999]], atol=2e-3)
        allowed = ids[100:110]
        got, scores = dense.search(queries[0], 5, allowed)
        assert set(got.tolist()) <= set(allowed.tolist()) and len(got) == 5
        assert np.all(np.diff(scores) <= 1e-6)
        with pytest.raises(KeyError):
            dense.vectors([6])
    finally:
        dense.close()


def test_ivfpq_incremental_update_drops_and_adds(tmp_path, monkeypatch):
    monkeypatch.setattr(V, "FLAT_MAX", 1000)
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir(), new.mkdir()
    x = clustered(3000, 4)
    ids = np.arange(3000, dtype=np.int64)
    build_dense(x, ids, old, "ivfpq", SMALL_PQ, nlist=16)
    added = clustered(5, 5)
    kind = update_dense(old, "ivfpq", new, ids[:50], np.arange(10_000, 10_005), added, SMALL_PQ)
    assert kind == "ivfpq"
    dense = load_dense(new, kind, SMALL_PQ)
    try:
        assert dense.ntotal == 3000 - 50 + 5
        assert dense.search(added[2], 1)[0][0] == 10_002
        assert not set(dense.search(x[10], 20)[0].tolist()) & set(range(50))
    finally:
        dense.close()


def test_growing_past_the_threshold_switches_to_ivfpq(tmp_path, monkeypatch):
    monkeypatch.setattr(V, "FLAT_MAX", 1000)
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir(), new.mkdir()
    x = clustered(900, 6)
    build_dense(x, np.arange(900), old, "flat")
    more = clustered(2100, 7)
    monkeypatch.setattr(V, "n_lists", lambda n: 16)
    kind = update_dense(old, "flat", new, np.array([], dtype=np.int64), np.arange(900, 3000), more, SMALL_PQ)
    assert kind == "ivfpq"
    dense = load_dense(new, kind, SMALL_PQ)
    try:
        assert dense.ntotal == 3000
        assert dense.search(x[5], 1)[0][0] == 5
    finally:
        dense.close()


def _fresh_flat(tmp_path, name, vectors_by_id: dict):
    folder = tmp_path / name
    folder.mkdir()
    ids = np.asarray(sorted(vectors_by_id), dtype=np.int64)
    build_dense(np.stack([vectors_by_id[i] for i in ids]), ids, folder, "flat")
    return load_dense(folder, "flat")


def _digest(folder) -> dict:
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_flat_updates_keep_the_base_and_search_exactly_like_one_fresh_index(tmp_path, monkeypatch):
    """Updates link the big base file, write a small delta and a removed list; search, scores and
    stored vectors equal a fresh index of the same vectors, until a compaction folds them in."""
    monkeypatch.setattr(V, "DELTA_SHARE", 0.5)
    x = clustered(600, 8)
    current = {i: x[i] for i in range(600)}
    folders = [tmp_path / "g0"]
    folders[0].mkdir()
    build_dense(x, np.arange(600), folders[0], "flat")
    rng = np.random.default_rng(1)
    next_id = 600
    for step in range(1, 5):
        before = _digest(folders[-1])
        drop = rng.choice(sorted(current), size=20, replace=False)  # from the base and, later, from the delta
        added = clustered(15, 100 + step)
        new_ids = np.arange(next_id, next_id + 15)
        next_id += 15
        folder = tmp_path / f"g{step}"
        folder.mkdir()
        assert update_dense(folders[-1], "flat", folder, drop, new_ids, added) == "flat"
        assert _digest(folders[-1]) == before, "the live generation is never written"
        assert (folder / V.FAISS_FILE).stat().st_ino == (folders[0] / V.FAISS_FILE).stat().st_ino
        assert (folder / V.DELTA_FILE).is_file() and (folder / V.REMOVED_FILE).is_file()
        folders.append(folder)
        for i in drop:
            del current[int(i)]
        current.update({int(i): v for i, v in zip(new_ids, added)})

        dense, fresh = load_dense(folder, "flat"), _fresh_flat(tmp_path, f"fresh{step}", current)
        assert dense.ntotal == fresh.ntotal == len(current)
        allowed = np.asarray(sorted(current), dtype=np.int64)[::7].copy()
        for q in clustered(10, 200 + step):
            for n, subset in ((10, None), (len(current) + 5, None), (8, allowed)):
                got, want = dense.search(q, n, subset), fresh.search(q, n, subset)
                np.testing.assert_array_equal(got[0], want[0])
                np.testing.assert_array_equal(got[1], want[1])
        some = np.asarray(sorted(current), dtype=np.int64)[::37]
        np.testing.assert_array_equal(dense.vectors(some), fresh.vectors(some))
        with pytest.raises(KeyError):
            dense.vectors(drop[:1])

    monkeypatch.setattr(V, "DELTA_SHARE", 0.01)  # the next update compacts
    folder = tmp_path / "compacted"
    folder.mkdir()
    assert (
        update_dense(
            folders[-1],
            "flat",
            folder,
            np.array([], dtype=np.int64),
            np.array([], dtype=np.int64),
            np.zeros((0, 64), np.float32),
        )
        == "flat"
    )
    assert sorted(p.name for p in folder.iterdir()) == [V.FAISS_FILE]
    dense, fresh = load_dense(folder, "flat"), _fresh_flat(tmp_path, "fresh_c", current)
    for q in clustered(5, 300):
        np.testing.assert_array_equal(dense.search(q, 10)[0], fresh.search(q, 10)[0])
        np.testing.assert_array_equal(dense.search(q, 10)[1], fresh.search(q, 10)[1])
