"""BM25 updates written as a delta beside a linked base (index/lexical_delta.py): scored at query time,
they must equal a fresh build of the same rows exactly, and fold into a new base when they grow."""

from __future__ import annotations

import math
import os
import random

import numpy as np
import pytest

from index.bm25_scoring import idf, length_norm, term_scores
from index.lexical import BM25Settings
from index.lexical_build import DELTA_FILES, DELTA_ROWS, analyze_rows, has_delta, row_terms, update_postings, write_bm25
from index.lexical_column import ColumnLexical, load_lexical
from index.lexical_delta import write_delta
from tests.test_lexical_build import WORDS, random_text, same_files


def _fresh(folder, texts, ids, settings):
    write_bm25(folder, row_terms(analyze_rows([texts[int(i)] for i in ids], settings)), settings)
    return load_lexical(folder, settings)


@pytest.mark.parametrize("method", ["lucene", "robertson", "atire"])
def test_idf_and_term_scores_are_bm25s_own(method):
    """The formulas copied to keep bm25s (and scipy) off the query path give bm25s's values bit for bit."""
    from bm25s.scoring import _select_idf_scorer, _select_tfc_scorer

    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 100, 5183):
        for df in sorted({1, max(1, n // 2), n}):
            assert idf(method, df, n) == _select_idf_scorer(method)(df, N=n)
            tf = rng.integers(1, 9, size=20).astype(np.int32)
            l_d = rng.integers(1, 60, size=20).astype(np.int64)
            l_avg = l_d.mean()
            expected = (
                np.asarray([_select_idf_scorer(method)(df, N=n)], dtype=np.float32).repeat(20)
                * _select_tfc_scorer(method)(tf_array=tf.astype(np.float32), l_d=l_d, l_avg=l_avg, k1=0.9, b=0.4)
            ).astype(np.float32)
            assert np.array_equal(term_scores(method, tf, length_norm(l_d, l_avg, 0.9, 0.4), df, n, 0.9), expected)


@pytest.mark.parametrize("cache", [None, 3])
@pytest.mark.parametrize("method", ["lucene", "robertson", "atire"])
def test_delta_updates_score_exactly_as_a_fresh_build(tmp_path, monkeypatch, method, cache):
    """Random add / remove / change sequences written as deltas: every query's scores, the document
    frequencies and the row count equal a fresh build's, also from the column cache (cache=3: it keeps
    at most one column beyond 3 postings); only new rows are analysed; past the share, the update
    writes a new base equal, byte for byte, to a fresh build."""
    import index.lexical_delta

    if cache is not None:
        monkeypatch.setattr(index.lexical_delta, "CACHE_POSTINGS", cache)
    rng = random.Random(f"delta-{method}")
    settings = BM25Settings(method=method, k1=rng.choice([0.9, 1.2]), b=rng.choice([0.4, 0.75]))
    texts = {i: random_text(rng) for i in range(1, 80)}
    next_id = 80
    ids = np.asarray(sorted(texts), dtype=np.int64)
    previous = tmp_path / "step0"
    write_bm25(previous, row_terms(analyze_rows([texts[i] for i in ids], settings)), settings)
    deltas = bases = 0
    for step in range(1, 30):
        for _ in range(rng.randint(0, 2)):  # remove
            if len(texts) > 1:
                texts.pop(rng.choice(sorted(texts)))
        for _ in range(rng.randint(0, 2)):  # change: an edited file gets new row ids
            texts.pop(rng.choice(sorted(texts)))
            texts[next_id], next_id = random_text(rng), next_id + 1
        for _ in range(rng.randint(0, 2)):  # add
            texts[next_id], next_id = random_text(rng), next_id + 1
        previous_ids, ids = ids, np.asarray(sorted(texts), dtype=np.int64)
        asked: list[int] = []

        def texts_of(wanted: np.ndarray, asked: list[int] = asked) -> list[str]:
            asked.extend(int(i) for i in wanted)
            return [texts[int(i)] for i in wanted]

        folder = tmp_path / f"step{step}"
        if write_delta(previous, folder, previous_ids, ids, texts_of, settings, share=0.25):
            deltas += 1
            assert set(asked) <= set(ids.tolist()) - set(previous_ids.tolist())  # only new rows are analysed
            base = [p.name for p in folder.iterdir() if p.name not in DELTA_FILES]
            assert all(
                os.path.samefile(folder / name, previous / name) for name in base
            )  # the base is linked, not written
        else:
            bases += 1
            updated = update_postings(previous, previous_ids, ids, texts_of, settings)
            assert updated is not None
            write_bm25(
                folder,
                updated.rows,
                settings,
                vocab_from=previous if updated.same_vocab else None,
                postings=updated.postings,
            )
            write_bm25(tmp_path / f"check{step}", row_terms(analyze_rows([texts[i] for i in ids], settings)), settings)
            assert not has_delta(folder) and same_files(folder, tmp_path / f"check{step}") == []
        loaded, fresh = load_lexical(folder, settings), _fresh(tmp_path / f"fresh{step}", texts, ids, settings)
        try:
            assert isinstance(loaded, ColumnLexical) and loaded.num_docs == fresh.num_docs == ids.shape[0]
            for word in WORDS + [f"rare{k}" for k in range(30)] + ["unknown"]:
                assert loaded.document_frequency(word) == fresh.document_frequency(word), word
                query = f"{word} {rng.choice(WORDS)} {word}"
                assert np.array_equal(loaded.scores(query), fresh.scores(query)), query
                assert np.array_equal(loaded.scores(query), fresh.scores(query)), query  # from the column cache
                if cache is not None and loaded._delta is not None:
                    assert loaded._delta._cache.held <= cache or len(loaded._delta._cache) == 1
        finally:
            loaded.close()
            fresh.close()
        previous = folder
    assert deltas > 10 and bases > 1  # both paths ran


def test_a_delta_is_written_only_where_it_can_be_read(tmp_path):
    """No delta for methods scored by bm25s itself, nor over a share of the base, nor over a base of
    more postings than the cap; a bm25s reader refuses one."""
    texts = {i: f"cells and gene {i}" for i in range(1, 41)}
    ids = np.arange(1, 41)
    grown = np.arange(1, 42)
    texts[41] = "a new protein"
    texts_of = lambda wanted: [texts[int(i)] for i in wanted]  # noqa: E731
    for method in ("bm25l", "bm25+"):
        settings = BM25Settings(method=method)
        write_bm25(tmp_path / method, row_terms(analyze_rows([texts[i] for i in ids], settings)), settings)
        assert not write_delta(tmp_path / method, tmp_path / f"{method}-next", ids, grown, texts_of, settings)
    settings = BM25Settings()
    write_bm25(tmp_path / "base", row_terms(analyze_rows([texts[i] for i in ids], settings)), settings)
    assert not write_delta(tmp_path / "base", tmp_path / "over", ids, np.arange(1, 42), texts_of, settings, share=0.01)
    assert not write_delta(
        tmp_path / "base", tmp_path / "large", ids, grown, texts_of, settings, max_postings=100
    )  # 160 postings
    assert not write_delta(tmp_path / "base", tmp_path / "order", ids[1:], grown, texts_of, settings)  # other row count
    assert write_delta(tmp_path / "base", tmp_path / "next", ids, grown, texts_of, settings)
    assert has_delta(tmp_path / "next")
    with pytest.raises(ValueError, match="delta"):
        load_lexical(tmp_path / "next", BM25Settings(method="bm25l"))


def test_a_damaged_delta_is_refused(tmp_path):
    """Delta files that do not fit the base raise ValueError (load_index reports a damaged index)."""
    settings = BM25Settings()
    texts = [f"cells {i}" for i in range(40)] + ["new gene"]
    write_bm25(tmp_path / "base", row_terms(analyze_rows(texts[:40], settings)), settings)
    assert write_delta(
        tmp_path / "base",
        tmp_path / "next",
        np.arange(40),
        np.arange(1, 41),
        lambda w: [texts[int(i)] for i in w],
        settings,
    )
    load_lexical(tmp_path / "next", settings).close()
    np.save(tmp_path / "next" / DELTA_ROWS, np.asarray([0, 99], dtype=np.int64), allow_pickle=False)
    with pytest.raises(ValueError, match="does not fit"):
        load_lexical(tmp_path / "next", settings)
    assert math.isfinite(idf("robertson", 40, 41))
