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
