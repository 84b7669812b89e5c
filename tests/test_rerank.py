"""Late interaction (qa/rerank.py): MaxSim, the bonus, the token cache, and the engine's re-ranking."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import write_corpus

from index.builder import build_index
from qa.engine import Engine, RetrievalSettings
from qa.rerank import TokenCache, maxsim, reranked_scores

FILES = {
    "a.txt": "The summit was held in Paris. Leaders spoke about trade and security at length.\n\n"
    "Ministers met in Berlin on Monday to discuss the budget.",
    "b.txt": "Paris hosted talks on Wednesday with the German chancellor. The talks covered energy.\n\n"
    "Rome saw protests over pensions on Friday.",
    "c.txt": "Wednesday brought rain to Paris, and the chancellor stayed home. Markets were calm.",
    "d.txt": "Who met whom was never made public. The meeting itself was brief.",
    "e.txt": "On Wednesday the museum in Lyon reopened. Visitors from Paris came by train.",
}


def unit_rows(*rows):
    m = np.asarray(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_maxsim_is_the_mean_best_match_of_each_query_token():
    q = unit_rows([1, 0, 0], [0, 1, 0])
    p = unit_rows([1, 0, 0], [0, 0, 1])
    assert maxsim(q, p) == pytest.approx((1.0 + 0.0) / 2)
    assert maxsim(q, q) == pytest.approx(1.0)
    assert maxsim(q, np.zeros((0, 3), np.float32)) == 0.0
    assert maxsim(np.zeros((0, 3), np.float32), p) == 0.0


def test_bonus_breaks_near_ties_and_keeps_a_clear_lead():
    near = reranked_scores([0.90, 0.89], [0.2, 0.6], 0.1)
    assert near[1] > near[0]
    clear = reranked_scores([0.90, 0.60], [0.2, 0.6], 0.1)
    assert clear[0] > clear[1]
    same = reranked_scores([0.5, 0.4], [0.3, 0.3], 0.1)  # constant late scores add nothing
    np.testing.assert_allclose(same, [0.5, 0.4])


def test_token_cache_encodes_each_unit_alone_and_forgets_the_oldest():
    calls = []

    def encode(texts):
        calls.append(list(texts))
        return [np.full((1, 2), len(t), np.float32) for t in texts]

    cache = TokenCache(encode, size=2)
    texts = {1: "a", 2: "bb", 3: "ccc"}
    got = cache.get([1, 2, 1], lambda ids: {i: texts[i] for i in ids})
    assert sorted(got) == [1, 2] and got[2][0, 0] == 2
    assert calls == [["a"], ["bb"]]  # one text per call, duplicates once
    cache.get([1], lambda ids: {i: texts[i] for i in ids})
    assert len(calls) == 2  # cached
    cache.get([3], lambda ids: {i: texts[i] for i in ids})  # evicts 2, the least recently used
    cache.get([2], lambda ids: {i: texts[i] for i in ids})
    assert calls[-1] == ["bb"]


@pytest.fixture
def engine(tmp_path, fake_embedder):
    corpus = write_corpus(tmp_path / "docs", FILES)
    build_index([corpus], tmp_path / "idx", fake_embedder)
    engine = Engine.open(tmp_path / "idx", fake_embedder)
    yield engine
    engine.close()


QUESTION = "Who met in Paris on Wednesday?"


def test_rerank_reorders_only_the_top_candidates(engine, fake_embedder):
    qvec = fake_embedder.embed([QUESTION])[0]
    ranked = engine.candidates(QUESTION, qvec, "hybrid")
    assert len(ranked) >= 4 and all(c.late is None for c in ranked)
    engine.settings = replace(engine.settings, rerank_top=3, rerank_weight=10.0)  # late interaction decides the top 3
    out = engine.rerank(QUESTION, ranked)
    assert sorted(c.chunk_id for c in out[:3]) == sorted(c.chunk_id for c in ranked[:3])
    assert out[3:] == ranked[3:]
    late = [c.late for c in out[:3]]
    assert late == sorted(late, reverse=True) and len(set(late)) > 1
    assert [c.ranking for c in out[:3]] == sorted((c.ranking for c in out[:3]), reverse=True)
    # each late score is MaxSim of the question against the chunk's best sentence
    query = fake_embedder.token_vectors([QUESTION])[0]
    for c in out[:3]:
        text = engine._unit_texts([c.best_unit])[c.best_unit]
        assert c.late == pytest.approx(maxsim(query, fake_embedder.token_vectors([text])[0]))
    engine.settings = replace(engine.settings, rerank_top=0)
    assert engine.rerank(QUESTION, ranked) == ranked


def test_search_is_the_same_with_a_cold_or_warm_cache(tmp_path, fake_embedder, engine):
    first = engine.search(QUESTION, k=5)
    again = engine.search(QUESTION, k=5)
    fresh = Engine.open(tmp_path / "idx", fake_embedder)
    try:
        cold = fresh.search(QUESTION, k=5)
    finally:
        fresh.close()
    assert [p.chunk_id for p in first] == [p.chunk_id for p in again] == [p.chunk_id for p in cold]
    assert [p.scores for p in first] == [p.scores for p in cold]
    assert any(p.scores.late is not None for p in first)
    scores = [p.scores.score for p in first]
    assert scores == sorted(scores, reverse=True)


def test_dense_and_bm25_modes_are_not_reranked(engine):
    for mode in ("dense", "bm25"):
        assert all(
            p.scores.late is None and p.scores.score == p.scores.fused for p in engine.search(QUESTION, k=5, mode=mode)
        )


def test_an_embedder_without_token_vectors_gets_no_reranking(tmp_path, fake_embedder):
    class Plain:
        name, backend, dim, max_tokens = (
            fake_embedder.name,
            fake_embedder.backend,
            fake_embedder.dim,
            fake_embedder.max_tokens,
        )
        joins_on_whitespace = True
        fingerprint = staticmethod(fake_embedder.fingerprint)
        embed = staticmethod(fake_embedder.embed)
        offsets = staticmethod(fake_embedder.offsets)

    write_corpus(tmp_path / "docs", FILES)
    build_index([tmp_path / "docs"], tmp_path / "idx", fake_embedder)
    engine = Engine.open(tmp_path / "idx", Plain())
    try:
        assert all(p.scores.late is None for p in engine.search(QUESTION, k=5))
    finally:
        engine.close()


RERANK_FIXED = "Where does Hollande go after his US trip?"


def test_late_interaction_on_the_real_model_puts_the_answer_first(seed_index_dir, real_embedder):
    """Held-out question 20: without late interaction the headline passage wins; with it, the Moscow sentence's."""
    from qa.questions import Evidence, Question, passage_matches

    question = Question(
        RERANK_FIXED,
        (
            Evidence(
                "000_3f65fe5b4edd20f1.txt", "President Hollande will also travel to Moscow for meetings with Putin"
            ),
            Evidence("002_c6b6b51f87ff079e.txt", "Russian President Vladimir Putin in Moscow on Thursday"),
        ),
    )
    on = Engine.open(seed_index_dir, real_embedder)
    off = Engine.open(seed_index_dir, real_embedder, settings=RetrievalSettings(rerank_top=0))
    try:
        top_on = on.search(RERANK_FIXED, k=5)[0]
        top_off = off.search(RERANK_FIXED, k=5)[0]
    finally:
        on.close()
        off.close()
    assert not passage_matches(top_off.citation.source, top_off.citation.text, question)
    assert passage_matches(top_on.citation.source, top_on.citation.text, question), top_on.citation.text[:120]
    assert top_on.scores.late is not None


def test_ask_reuses_the_question_tokens_of_its_embedding(engine, monkeypatch):
    """ask() embeds the question once for both its vector and its tokens; the ranking is search()'s."""
    encoded = []
    original = engine._tokens._encode
    monkeypatch.setattr(engine._tokens, "_encode", lambda texts: encoded.append(list(texts)) or original(texts))
    answer = engine.ask(QUESTION, k=5)
    assert encoded and [QUESTION] not in encoded  # only sentence units went to the encoder again
    assert any(p.scores.late is not None for p in answer.passages)
    engine._tokens._queries.clear()
    searched = engine.search(QUESTION, k=5)  # encodes the question's tokens itself: same ranking, same scores
    assert [QUESTION] in encoded
    assert [(p.chunk_id, p.scores) for p in answer.passages] == [(p.chunk_id, p.scores) for p in searched]
