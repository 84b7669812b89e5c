"""`qa bench`: BEIR loading, the run it evaluates, and the bench on the seed questions and a SciFact slice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytrec_eval
from click.testing import CliRunner

from index.builder import build_index
from index.lexical import BM25Settings, LexicalIndex
from qa.beir import WholeDocumentEmbedder, as_documents, document_text, load_beir
from qa.bench import bench_questions, question_run
from qa.bench_beir import BeirSettings, bench_beir
from qa.engine import Engine
from qa.evaluate import evaluate_engine
from qa.metrics import evaluate_run
from qa.questions import Evidence, Question, load_questions
from qa.results import Answer, Citation, Passage, Scores
from qa.snippet import snippet

DATA = Path(__file__).resolve().parent / "data"
SLICE = DATA / "scifact_slice"
SEEDS = Path(__file__).resolve().parents[1] / "seeds"


def test_beir_slice_loads_with_title_and_text_joined():
    dataset = load_beir(SLICE)
    assert len(dataset.queries) == 25 and set(dataset.qrels) == set(dataset.queries)
    assert all(doc in dataset.corpus for grades in dataset.qrels.values() for doc in grades)
    first = json.loads((SLICE / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert dataset.corpus[first["_id"]] == f"{first['title']} {first['text']}".strip()
    assert document_text("", " body ") == "body"


def test_missing_beir_file_is_a_one_line_error(tmp_path):
    from index.errors import InputError

    (tmp_path / "corpus.jsonl").write_text('{"_id": "1", "title": "", "text": "x"}\n')
    with pytest.raises(InputError) as info:
        load_beir(tmp_path)
    assert "queries.jsonl is missing" in info.value.one_line()


def _passage(rank: int, source: str, text: str, also: tuple[Citation, ...] = ()) -> Passage:
    cite = Citation(source, 1, 1, 0, len(text), text)
    return Passage(rank, 100 + rank, cite, Scores(1.0, 0.5, 1.0 / rank), also)


def test_question_run_counts_each_evidence_span_once():
    question = Question("q", (Evidence("a.txt", "red fox"), Evidence("b.txt", "blue  bird")))
    passages = (
        _passage(1, "c.txt", "nothing here"),
        _passage(2, "c.txt", "dup", also=(Citation("b.txt", 1, 1, 0, 9, "a blue bird"),)),
        _passage(3, "b.txt", "the blue bird again"),
        _passage(4, "a.txt", "the red fox"),
    )
    answer = Answer(question="q", found=True, answer=None, passages=passages, mode="hybrid")
    run, qrels, items = question_run(answer, question)
    assert qrels == {"evidence-0": 1, "evidence-1": 1}
    ranking = evaluate_run({"q": run}, {"q": qrels}).rankings["q"]
    # the near-duplicate at rank 2 finds span 1; the later copy at rank 3 is not relevant again
    assert ranking == ["passage-101", "evidence-1", "passage-103", "evidence-0"]
    assert [i.relevant for i in items] == [False, True, False, True]


def test_bench_questions_agrees_with_seed_metrics(tmp_path, fake_embedder):
    build_index([SEEDS], tmp_path / "index", fake_embedder)
    questions = load_questions(DATA / "seed_questions.jsonl")
    engine = Engine.open(tmp_path / "index", fake_embedder)
    try:
        results = bench_questions(engine, questions, ("bm25", "hybrid"), depth=10)
        for result in results:
            reference = evaluate_engine(engine, questions, k=10, mode=result.mode, ks=(1, 5, 10))
            for k in (1, 5, 10):
                assert result.metrics[f"hit@{k}"] == pytest.approx(reference.hit_at[k])
            assert result.metrics["mrr@10"] == pytest.approx(reference.mrr)
            assert result.abstention_accuracy == pytest.approx(reference.abstention_accuracy)
            assert result.n_queries == reference.n_answerable
            assert len(result.failures) == round((1 - result.metrics["hit@1"]) * result.n_queries)
            # per-question outcomes (the chat's bench screen): one per question, the same records as failures
            assert [o.question for o in result.outcomes] == questions
            assert [o.first_relevant_rank for o in result.outcomes] == [
                r.first_hit_rank if r.question.answerable else None for r in reference.results
            ]
            assert sum(o.abstention_correct for o in result.outcomes) / len(questions) == pytest.approx(
                reference.abstention_accuracy
            )
            assert list(result.failures) == [
                o.ranking for o in result.outcomes if o.ranking and o.first_relevant_rank != 1
            ]
    finally:
        engine.close()


def test_document_granularity_bm25_matches_bm25_over_whole_documents(tmp_path, fake_embedder):
    """The bench's BEIR path (index, chunks -> documents, ranking) gives the same figures as
    BM25 run directly over the whole documents and scored by pytrec_eval."""
    dataset = load_beir(SLICE)
    report = bench_beir(dataset, fake_embedder, tmp_path / "index", BeirSettings(granularity="document"), ("bm25",))
    assert report.n_chunks == report.n_documents == len(dataset.corpus)
    ids = list(dataset.corpus)
    lexical = LexicalIndex.build([dataset.corpus[d] for d in ids], BM25Settings())
    run = {}
    for qid, text in dataset.queries.items():
        scores = lexical.scores(text)
        run[qid] = {ids[i]: float(s) for i, s in enumerate(scores) if s > 0}
    reference = pytrec_eval.RelevanceEvaluator(dataset.qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)
    ndcg = sum(v["ndcg_cut_10"] for v in reference.values()) / len(dataset.qrels)
    assert report.results[0].metrics["ndcg@10"] == pytest.approx(ndcg, abs=1e-4)


def test_whole_document_embedder_never_splits_and_has_its_own_fingerprint(fake_embedder):
    wrapped = WholeDocumentEmbedder(fake_embedder)
    assert wrapped.fingerprint() != fake_embedder.fingerprint()
    assert wrapped.offsets(["One. Two three.", "  "]) == [[(0, 15)], []]
    from index.chunker import chunk_text
    from qa.bench_beir import WHOLE_DOCUMENT

    # some SciFact abstracts hold hundreds of ". . ." sentences: still one passage
    text = "Title of a paper " + ". " * 600 + "end."
    assert len(chunk_text(text, wrapped, WHOLE_DOCUMENT, wrapped.max_tokens)) == 1


def test_chunk_granularity_maps_chunks_back_to_documents(tmp_path, fake_embedder):
    dataset = load_beir(SLICE)
    settings = BeirSettings(granularity="chunks")
    report = bench_beir(dataset, fake_embedder, tmp_path / "index", settings, ("dense", "hybrid"), failures=True)
    assert report.n_chunks > report.n_documents == len(as_documents(dataset))
    for result in report.results:
        rankings = result.run_metrics.rankings
        assert all(len(r) == len(set(r)) and set(r) <= set(dataset.corpus) for r in rankings.values())
        missed = {qid for qid, r in rankings.items() if r[0] not in dataset.qrels[qid]}
        assert {f.query_id for f in result.failures} == missed
        for failure in result.failures:
            assert all(not item.relevant for item in failure.above)
            if failure.relevant_item is not None:
                assert failure.relevant_item.rank == failure.first_relevant_rank
            # each shown document is previewed where the query's words are (or from its start when none occur)
            for item in (*failure.above, *filter(None, [failure.relevant_item])):
                preview = snippet(dataset.corpus[item.key], failure.query, 200)
                assert item.text == preview.text and len(item.text) <= 200
        shown = [item for f in result.failures for item in f.above]
        assert any(item.text.startswith("…") for item in shown), "some previews start inside the document"


def test_document_texts_are_reassembled_from_overlapping_chunks(tmp_path, fake_embedder):
    from index.chunker import ChunkSettings
    from index.stores import open_store
    from qa.doc_lexical import document_texts

    dataset = load_beir(SLICE)
    build_index(
        [SLICE],
        tmp_path / "index",
        fake_embedder,
        ChunkSettings(max_tokens=48, overlap_tokens=16),
        documents=(SLICE, as_documents(dataset), []),
    )
    with open_store(tmp_path / "index").read_catalog() as (catalog, _):
        source_of = {d.id: d.source for d in catalog.documents()}
        passages = list(catalog.all_passages())
        ids, texts = document_texts(passages)
    overlapping = sum(
        a.doc_id == b.doc_id and a.ordinal + 1 == b.ordinal and b.char_start < a.char_end
        for a, b in zip(passages, passages[1:])
    )
    assert overlapping > 0  # the case that matters: overlap must not be counted twice
    assert len(ids) == len(dataset.corpus)
    for doc_id, text in zip(ids, texts):
        assert text.split() == dataset.corpus[source_of[doc_id]].split()


def test_whole_document_bm25_ranks_documents_as_bm25_over_whole_documents(tmp_path, fake_embedder):
    """With all the lexical weight on the document's BM25 (every document under the short-document
    limit), hybrid ranks documents as BM25 over whole documents does; without, it does not."""
    from qa.bench_beir import BeirSession
    from qa.engine import RetrievalSettings

    dataset = load_beir(SLICE)
    whole = bench_beir(dataset, fake_embedder, tmp_path / "whole", BeirSettings(granularity="document"), ("bm25",))
    session = BeirSession(dataset, fake_embedder, tmp_path / "chunks", BeirSettings(granularity="chunks"))
    try:
        # (late interaction off: it would reorder the top passages by the model's token states)
        off = session.evaluate("hybrid", RetrievalSettings(alpha=0.0, short_document_chars=0, rerank_top=0))
        on = session.evaluate("hybrid", RetrievalSettings(alpha=0.0, rerank_top=0, short_document_chars=10**9))
    finally:
        session.close()
    expected = whole.results[0].run_metrics.rankings
    assert all(on.run_metrics.rankings[q][:5] == expected[q][:5] for q in dataset.queries)
    assert any(off.run_metrics.rankings[q][:5] != expected[q][:5] for q in dataset.queries)


def test_long_documents_keep_chunk_and_sentence_bm25(tmp_path, fake_embedder):
    """Documents over short_document_chars are ranked exactly as with the option off; short ones are not."""
    from conftest import write_corpus

    from index.chunker import ChunkSettings
    from qa.engine import RetrievalSettings

    paragraph = "The harbour council voted on the new ferry timetable after a long debate. "
    files = {f"long{i}.txt": (paragraph * 4 + f"Ferry number {i} leaves at dawn. ") * 6 for i in range(3)}
    files["note.txt"] = "Ferry tickets. " + "Unrelated filler words about gardens. " * 8 + "They leave at dawn."
    root = write_corpus(tmp_path / "docs", files)
    build_index([root], tmp_path / "index", fake_embedder, ChunkSettings(max_tokens=32, overlap_tokens=8))
    limit = len(files["note.txt"])
    assert all(len(text) > limit for name, text in files.items() if name != "note.txt")
    engine = Engine.open(tmp_path / "index", fake_embedder, settings=RetrievalSettings(short_document_chars=limit))
    try:
        qvec = fake_embedder.embed(["when do ferry tickets leave at dawn"])[0]
        on = engine.candidates("when do ferry tickets leave at dawn", qvec, "hybrid")
        engine.settings = RetrievalSettings(short_document_chars=0)
        off = engine.candidates("when do ferry tickets leave at dawn", qvec, "hybrid")
        note = {
            cid for cid, src in engine.index.catalog.sources_of([c.chunk_id for c in off]).items() if src == "note.txt"
        }
    finally:
        engine.close()
    assert len(note) > 1  # the note's words are split across its chunks
    long_on = [(c.chunk_id, round(c.fused, 6)) for c in on if c.chunk_id not in note]
    long_off = [(c.chunk_id, round(c.fused, 6)) for c in off if c.chunk_id not in note]
    assert [c for c, _ in long_on] == [c for c, _ in long_off]
    on_note = {c.chunk_id: c.fused for c in on if c.chunk_id in note}
    off_note = {c.chunk_id: c.fused for c in off if c.chunk_id in note}
    assert on_note != off_note


def test_cli_needs_exactly_one_source_of_queries():
    from qa.cli import cli

    result = CliRunner().invoke(cli, ["bench"])
    assert result.exit_code == 2 and "either a question file or --beir" in result.output


# -- real model (CI): seed questions and the SciFact slice --------------------------------------


@pytest.mark.slow
def test_seed_question_bench_on_the_real_model(seed_engine):
    questions = load_questions(DATA / "seed_questions.jsonl")
    (result,) = bench_questions(seed_engine, questions, ("hybrid",), depth=10)
    reference = evaluate_engine(seed_engine, questions, k=10, mode="hybrid", ks=(1, 5, 10))
    for k in (1, 5, 10):
        assert result.metrics[f"hit@{k}"] == pytest.approx(reference.hit_at[k])
    assert result.abstention_accuracy == pytest.approx(reference.abstention_accuracy)
    # quality floors live in test_seed_quality.py; this one only catches a broken bench
    assert result.metrics["hit@10"] >= 0.9


@pytest.mark.slow
def test_scifact_slice_bench_through_the_cli(tmp_path, real_embedder):
    """The full command on the slice: every mode is scored, and hybrid beats both of its parts."""
    from qa.cli import cli

    out = tmp_path / "report.json"
    result = CliRunner().invoke(cli, ["bench", "--beir", str(SLICE), "--json", str(out), "--failures", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "nDCG@10" in result.output and "queries without a relevant result at rank 1" in result.output
    report = json.loads(out.read_text())
    ndcg = {m["mode"]: m["metrics"]["ndcg@10"] for m in report["modes"]}
    assert set(ndcg) == {"bm25", "dense", "hybrid"}
    assert ndcg["hybrid"] >= max(ndcg["bm25"], ndcg["dense"]) - 0.02
    assert ndcg["hybrid"] >= 0.7


def test_question_bench_refuses_an_index_of_another_backend(tmp_path, fake_embedder, monkeypatch, capsys):
    """`qa bench --backend X` used to measure whatever backend the existing index had, under X's name."""
    from conftest import run_main

    build_index([SEEDS], tmp_path / "index", fake_embedder)
    args = [
        "bench",
        str(DATA / "heldout_questions.jsonl"),
        "--index-dir",
        str(tmp_path / "index"),
        "--modes",
        "bm25",
        "-q",
    ]
    code, _, err = run_main(monkeypatch, capsys, *args, "--backend", "onnx-int8")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "you asked for onnx-int8" in err and "qa index --rebuild" in err
