"""Score fusion: min-max convex combination and reciprocal rank fusion, checked against plain reference code."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_corpus
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from index.builder import build_index
from qa.engine import Engine, RetrievalSettings
from qa.fusion import convex, fuse, minmax, rrf


def reference_minmax(xs: list[float]) -> list[float]:
    lo, hi = min(xs), max(xs)
    return [0.0 if hi - lo < 1e-12 else (x - lo) / (hi - lo) for x in xs]


def reference_rrf(runs: list[list[float]], k: int) -> list[float]:
    """Cormack et al. 2009: sum over runs of 1 / (k + rank); ties broken by candidate order."""
    n = len(runs[0])
    out = [0.0] * n
    for scores in runs:
        order = sorted(range(n), key=lambda i: (-scores[i], i))
        for rank, i in enumerate(order, start=1):
            out[i] += 1.0 / (k + rank)
    return out


scores = arrays(np.float32, st.integers(1, 40), elements=st.floats(-5, 50, width=32, allow_nan=False))


@settings(max_examples=100, deadline=None)
@given(xs=scores)
def test_minmax_matches_reference(xs):
    np.testing.assert_allclose(minmax(xs), reference_minmax(xs.tolist()), atol=1e-5)
    assert minmax(xs).dtype == np.float32


def test_minmax_edge_cases():
    assert minmax(np.zeros(0, dtype=np.float32)).shape == (0,)
    assert minmax(np.full(4, 3.0, dtype=np.float32)).tolist() == [0.0] * 4
    assert minmax(np.asarray([1.0, 3.0, 2.0])).tolist() == [0.0, 1.0, 0.5]


@settings(max_examples=100, deadline=None)
@given(data=st.data(), alpha=st.floats(0, 1))
def test_convex_matches_reference(data, alpha):
    n = data.draw(st.integers(1, 30))
    d = data.draw(arrays(np.float32, n, elements=st.floats(-1, 1, width=32)))
    b = data.draw(arrays(np.float32, n, elements=st.floats(0, 40, width=32)))
    expected = [alpha * x + (1 - alpha) * y for x, y in zip(reference_minmax(d.tolist()), reference_minmax(b.tolist()))]
    np.testing.assert_allclose(convex(d, b, alpha), expected, atol=1e-5)
    np.testing.assert_allclose(fuse(d, b, "convex", alpha), expected, atol=1e-5)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), k=st.integers(1, 100))
def test_rrf_matches_reference(data, k):
    n = data.draw(st.integers(1, 30))
    # Few distinct values, so ties are common.
    d = data.draw(arrays(np.float32, n, elements=st.sampled_from([0.0, 0.1, 0.5, 0.9])))
    b = data.draw(arrays(np.float32, n, elements=st.sampled_from([0.0, 1.0, 7.5])))
    np.testing.assert_allclose(rrf(d, b, k), reference_rrf([d.tolist(), b.tolist()], k), rtol=1e-6)
    np.testing.assert_allclose(fuse(d, b, "rrf", rrf_k=k), reference_rrf([d.tolist(), b.tolist()], k), rtol=1e-6)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_fusion_ignores_scale_and_shift_of_each_retriever(data):
    n = data.draw(st.integers(2, 20))
    d = data.draw(arrays(np.int64, n, elements=st.integers(-100, 100), unique=True)) / 100.0
    b = data.draw(arrays(np.int64, n, elements=st.integers(0, 300), unique=True)) / 10.0
    np.testing.assert_allclose(convex(d, b, 0.5), convex(3 * d + 1, 0.5 * b + 7, 0.5), atol=1e-4)
    np.testing.assert_allclose(rrf(d, b), rrf(np.exp(d), b**3))


def test_alpha_endpoints_are_the_single_retrievers():
    d = np.asarray([0.2, 0.9, 0.5])
    b = np.asarray([10.0, 0.0, 5.0])
    assert np.argsort(-convex(d, b, 1.0)).tolist() == [1, 2, 0]
    assert np.argsort(-convex(d, b, 0.0)).tolist() == [0, 2, 1]


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown fusion method"):
        fuse(np.zeros(2), np.zeros(2), "borda")


@pytest.mark.parametrize("method", ["convex", "rrf"])
def test_engine_ranks_candidates_by_the_fused_score(tmp_path, fake_embedder, method):
    topics = [
        "Ships waited nine days in the frozen harbour of Tromso for the thaw.",
        "The orchestra rehearsed the symphony twice before the premiere.",
        "Farmers harvested wheat early because of the drought.",
        "The council approved a new bridge over the river.",
        "Astronomers observed a comet passing close to Jupiter.",
        "The bakery sells rye bread and cinnamon rolls every morning.",
    ]
    corpus = write_corpus(tmp_path / "docs", {f"d{i}.txt": text for i, text in enumerate(topics)})
    build_index([corpus], tmp_path / "idx", fake_embedder)
    # With no weight on sentence-level BM25, hybrid is exactly fuse(dense, chunk BM25).
    extra = {"unit_bm25_share": 0.0} if hasattr(RetrievalSettings(), "unit_bm25_share") else {}
    settings = RetrievalSettings(fusion=method, **extra)
    engine = Engine.open(tmp_path / "idx", fake_embedder, settings=settings)
    try:
        question = "How many days did ships wait in the frozen harbour of Tromso?"
        qvec = fake_embedder.embed([question])[0]
        cands = engine.candidates(question, qvec, "hybrid")
        d = np.asarray([c.dense for c in cands], dtype=np.float32)
        b = np.asarray([c.bm25 for c in cands], dtype=np.float32)
        expected = fuse(d, b, method, settings.alpha, settings.rrf_k)
        np.testing.assert_allclose([c.fused for c in cands], expected, atol=1e-6)
        assert [c.fused for c in cands] == sorted((c.fused for c in cands), reverse=True)
        passages = engine.search(question, k=3)
        assert passages[0].citation.source == "d0.txt"
        assert [p.rank for p in passages] == [1, 2, 3]
        dense_only = engine.candidates(question, qvec, "dense")
        assert [c.fused for c in dense_only] == [c.dense for c in dense_only]
        bm25_only = engine.candidates(question, qvec, "bm25")
        assert [c.bm25 for c in bm25_only] == sorted((c.bm25 for c in bm25_only), reverse=True)
    finally:
        engine.close()
