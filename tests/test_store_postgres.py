"""The PostgreSQL store against the embedded one on the same corpora: the same BM25 scores (SQL postings
vs bm25s arrays), before and after an incremental update, and the same retrieval quality with the real
model. The contract both stores keep is tests/test_store_contract.py."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import DATA, SEEDS

from index.builder import build_index
from index.errors import IndexCorruptError, IndexMissingError, StoreUnavailableError
from index.stores import open_store, pg_lexical
from index.stores.postgres import PostgresStore
from qa.engine import Engine
from qa.evaluate import evaluate_engine
from qa.questions import load_questions

SCIFACT = DATA / "scifact_slice"


@pytest.fixture
def scifact_corpus(tmp_path):
    """SciFact abstracts, one file each, beside the seed articles: two kinds of text."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for line in (SCIFACT / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        (folder / f"scifact_{doc['_id']}.txt").write_text(f"{doc['title']}\n\n{doc['text']}", encoding="utf-8")
    for seed in SEEDS.glob("*.txt"):
        shutil.copy(seed, folder / seed.name)
    return folder


def _queries() -> list[str]:
    lines = (SCIFACT / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines] + ["Hollande Putin coalition", "the the of", "zzzz unknown"]


def _row_keys(snapshot, lexical_name: str) -> dict[int, tuple]:
    """Each passage's (or unit's) id -> (source, char_start, char_end): ids differ by store."""
    catalog = snapshot.catalog
    if lexical_name == "passage_lexical":
        return {p.id: (p.source, p.char_start, p.char_end) for p in catalog.all_passages()}
    sources = {d.id: d.source for d in catalog.documents()}
    return {u.id: (sources[u.doc_id], u.char_start, u.char_end) for u in catalog.all_units()}


def _keyed_scores(snapshot, lexical_name: str, rows: dict[int, tuple], query: str) -> dict[tuple, float]:
    """BM25 score of every passage (or unit), keyed by (source, char_start, char_end)."""
    ids = sorted(rows)
    scores = getattr(snapshot, lexical_name).query(query).score(ids)
    return {rows[i]: float(s) for i, s in zip(ids, scores)}


def _assert_same_bm25(embedded_location, pg_location) -> None:
    """Every row's score equal bit for bit, and the same top 10 in the same order."""
    embedded, pg = open_store(embedded_location).open(), open_store(pg_location).open()
    try:
        for name in ("passage_lexical", "unit_lexical"):
            assert getattr(embedded, name).num_docs == getattr(pg, name).num_docs
            rows_e, rows_p = _row_keys(embedded, name), _row_keys(pg, name)
            positive = 0
            for query in _queries():
                want, got = _keyed_scores(embedded, name, rows_e, query), _keyed_scores(pg, name, rows_p, query)
                assert want.keys() == got.keys()
                keys = sorted(want)
                a = np.asarray([want[k] for k in keys], dtype=np.float32)
                b = np.asarray([got[k] for k in keys], dtype=np.float32)
                np.testing.assert_array_equal(b, a, err_msg=query)
                positive += int((a > 0).sum())
                top_e, top_p = getattr(embedded, name).query(query).top(10), getattr(pg, name).query(query).top(10)
                np.testing.assert_array_equal(top_p.scores, top_e.scores)
                assert [rows_p[i] for i in top_p.ids] == [rows_e[i] for i in top_e.ids], query
            for term in ("tumour", "cell", "hollande", "zzzz"):
                assert getattr(pg, name).document_frequency(term) == getattr(embedded, name).document_frequency(term)
            assert positive > 100  # the queries do match: the comparison is not one of zeros
    finally:
        embedded.close()
        pg.close()


def test_bm25_scores_equal_the_embedded_store_before_and_after_an_update(
    scifact_corpus, tmp_path, pg_url, fake_embedder
):
    embedded = tmp_path / "index"
    build_index([scifact_corpus], embedded, fake_embedder)
    build_index([scifact_corpus], pg_url, fake_embedder)
    _assert_same_bm25(embedded, pg_url)
    # an incremental update: some documents go, one changes, one comes (N, df and the mean length move)
    files = sorted(scifact_corpus.glob("scifact_*.txt"))
    for gone in files[:20]:
        gone.unlink()
    files[30].write_text("Arginine arginine arginine metabolism in tumour cells, rewritten.", encoding="utf-8")
    (scifact_corpus / "new.txt").write_text("A new abstract about tau phosphorylation in neurons.", encoding="utf-8")
    for location in (embedded, pg_url):
        report = build_index([scifact_corpus], location, fake_embedder)
        assert (report.new, report.changed, report.removed) == (1, 1, 20)
    _assert_same_bm25(embedded, pg_url)


def _lexical_tables(url: str) -> tuple[dict[str, int], dict[str, int]]:
    """Segments and removed rows per kind."""
    import psycopg

    with psycopg.connect(url) as conn:
        segments = dict(conn.execute("SELECT kind, count(*) FROM qa.lexical_segments GROUP BY kind").fetchall())
        removed = dict(conn.execute("SELECT kind, count(*) FROM qa.lexical_removed GROUP BY kind").fetchall())
    return segments, removed


def test_bm25_segments_merge_and_removed_rows_stay_hidden(scifact_corpus, tmp_path, pg_url, fake_embedder, monkeypatch):
    """Updates add a segment each and record removed rows; past MAX_SEGMENTS the smaller ones merge, and
    past REMOVED_SHARE every segment is rewritten without the removed rows. Scores stay equal throughout."""
    monkeypatch.setattr(pg_lexical, "MAX_SEGMENTS", 2)
    monkeypatch.setattr(pg_lexical, "REMOVED_SHARE", 1.0)  # removed rows stay in the segments, hidden
    embedded = tmp_path / "index"
    for location in (embedded, pg_url):
        build_index([scifact_corpus], location, fake_embedder)
    for added in range(3):  # documents only added: the merge has no removed rows to drop
        (scifact_corpus / f"added{added}.txt").write_text(f"Added abstract {added} on arginine.", encoding="utf-8")
        for location in (embedded, pg_url):
            build_index([scifact_corpus], location, fake_embedder)
    assert _lexical_tables(pg_url) == ({"passage": 2, "unit": 2}, {})
    _assert_same_bm25(embedded, pg_url)
    files = sorted(scifact_corpus.glob("scifact_*.txt"))
    seen = []
    for round_ in range(3):
        files[round_].unlink()
        files[10 + round_].write_text(f"Round {round_}: arginine in tumour cells, rewritten.", encoding="utf-8")
        (scifact_corpus / f"new{round_}.txt").write_text(f"New abstract {round_} on tau in neurons.", encoding="utf-8")
        for location in (embedded, pg_url):
            build_index([scifact_corpus], location, fake_embedder)
        _assert_same_bm25(embedded, pg_url)
        seen.append(_lexical_tables(pg_url))
    segments, removed = zip(*seen)
    assert [s["passage"] for s in segments] == [2, 2, 2]  # 1 + 1, then 3 merged to 2, twice
    counts = [r["passage"] for r in removed]  # the passages of one removed and one changed document a round
    assert 0 < counts[0] < counts[1] < counts[2]
    monkeypatch.setattr(pg_lexical, "REMOVED_SHARE", 0.01)
    files[20].unlink()
    for location in (embedded, pg_url):
        build_index([scifact_corpus], location, fake_embedder)
    _assert_same_bm25(embedded, pg_url)
    assert _lexical_tables(pg_url) == ({"passage": 1, "unit": 1}, {})


@pytest.mark.parametrize("span, count", [(1000, 7), (1 << 33, 7), (1000, 70_000), (1 << 33, 70_000)])
def test_packed_postings_round_trip_narrow_or_wide(span, count):
    """Ids as uint32 offsets and counts as uint16 when they fit (8 bytes a posting), wider when not."""
    ids = np.asarray([5, 6, 5 + span], dtype=np.int64)
    tfs, lens = np.asarray([1, count, 2]), np.asarray([3, count, 9])
    term, n, base, packed_ids, packed_tfs, packed_lens = pg_lexical._pack("t", ids, tfs, lens)
    assert (term, n, base) == ("t", 3, 5)
    assert len(packed_ids) == (4 if span < 1 << 32 else 8) * 3 and len(packed_tfs) == (2 if count < 1 << 16 else 4) * 3
    back = pg_lexical._unpack(n, base, packed_ids, packed_tfs, packed_lens)
    for got, want in zip(back, (ids, tfs, lens)):
        np.testing.assert_array_equal(got, want)


def test_an_index_written_with_postings_rows_asks_for_a_rebuild(scifact_corpus, pg_url, fake_embedder):
    import psycopg

    build_index([scifact_corpus], pg_url, fake_embedder)
    with psycopg.connect(pg_url) as conn:
        conn.execute("DELETE FROM qa.meta WHERE key = 'lexical_format'")
    with pytest.raises(IndexCorruptError, match="older layout") as err:
        PostgresStore(pg_url).open()
    assert "qa index --rebuild" in err.value.one_line()
    with pytest.raises(IndexCorruptError, match="older layout"):
        build_index([scifact_corpus], pg_url, fake_embedder)
    build_index([scifact_corpus], pg_url, fake_embedder, rebuild=True)
    PostgresStore(pg_url).open().close()


def test_an_unreachable_server_and_an_empty_database_are_one_line_errors(pg_url):
    with pytest.raises(IndexMissingError, match="qa index PATH --store"):
        PostgresStore(pg_url).open()
    bad = "postgresql://postgres:secret@127.0.0.1:1/nothing"
    with pytest.raises(StoreUnavailableError) as err:
        open_store(bad).open()
    assert "secret" not in err.value.one_line() and "Check that the server runs" in err.value.one_line()


def _assert_same_retrieval(embedded_location, pg_location, questions, embedder, label: str) -> None:
    """The same hit@1, hit@5 and MRR (within 0.01) on both stores, and most questions found."""
    reports = []
    for location in (embedded_location, pg_location):
        engine = Engine.open(location, embedder)
        try:
            reports.append(evaluate_engine(engine, questions, k=5))
        finally:
            engine.close()
    embedded, pg = reports
    for k in (1, 5):
        assert abs(embedded.hit_at[k] - pg.hit_at[k]) <= 0.01, (label, k, embedded.hit_at, pg.hit_at)
    assert abs(embedded.mrr - pg.mrr) <= 0.01, (label, embedded.mrr, pg.mrr)
    assert pg.hit_at[5] > 0.5  # a real comparison: both stores answer most questions


@pytest.mark.slow
def test_seed_questions_get_the_same_hit_at_k_on_both_stores(seed_index_dir, pg_url, real_embedder):
    build_index([SEEDS], pg_url, real_embedder)
    for name in ("seed", "heldout"):
        questions = load_questions(DATA / f"{name}_questions.jsonl")
        _assert_same_retrieval(seed_index_dir, pg_url, questions, real_embedder, name)


@pytest.mark.slow
def test_squad_questions_get_the_same_hit_at_k_on_both_stores(tmp_path, pg_url, real_embedder):
    """Three Wikipedia articles and their 60 SQuAD questions (tests/data/squad_slice): another kind of text."""
    squad = DATA / "squad_slice"
    embedded = tmp_path / "index"
    for location in (embedded, pg_url):
        build_index([squad / "corpus"], location, real_embedder)
    answerable = [q for q in load_questions(squad / "questions.jsonl") if q.evidence]
    assert len(answerable) >= 25
    _assert_same_retrieval(embedded, pg_url, answerable, real_embedder, "squad")
