"""The engine with the fake embedder: retrieval per mode, verified citations, abstention, stale files, source filter."""

from __future__ import annotations

import io

import pytest
from conftest import write_corpus
from rich.console import Console

from index.builder import build_index
from index.errors import InputError
from index.lexical import analyze
from qa.answer import Calibration
from qa.engine import MAX_QUESTION_CHARS, Engine
from qa.render import render_answer

FILES = {
    "harbour.txt": (
        "Winter in the north.\n\n"
        "Ships waited nine days in the frozen harbour of Tromso before the thaw came.\n"
        "The captains complained to the port authority about the delay."
    ),
    "music/orchestra.md": (
        "# Concert notes\n\n"
        "The orchestra rehearsed the symphony twice before the premiere in Vienna.\n"
        "Critics praised the conductor’s “bold” tempo."
    ),
    "farm.html": (
        "<html><head><title>ignored</title><script>var wheat = 1;</script></head><body>"
        "<h1>Harvest report</h1><p>Farmers harvested the wheat three weeks early because of the drought.</p>"
        "<p>Prices for\u00a0bread rose in the autumn.</p></body></html>"
    ),
    "space.txt": "Astronomers observed a comet passing close to Jupiter last March.\nIts tail was visible for a week.",
}


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "docs", FILES)


@pytest.fixture
def engine_factory(tmp_path, corpus, fake_embedder):
    opened = []

    def make(calibration: Calibration | None = None) -> Engine:
        index_dir = tmp_path / "idx"
        if not index_dir.exists():
            build_index([corpus], index_dir, fake_embedder)
        engine = Engine.open(index_dir, fake_embedder, calibration=calibration or Calibration())
        opened.append(engine)
        return engine

    yield make
    for engine in opened:
        engine.close()


@pytest.fixture
def engine(engine_factory):
    return engine_factory()


def assert_citation_exact(engine: Engine, citation) -> None:
    text = engine.document_text(citation.source)
    assert text is not None
    assert text[citation.char_start : citation.char_end] == citation.text
    assert citation.line_start == text.count("\n", 0, citation.char_start) + 1
    assert citation.line_end == text.count("\n", 0, citation.char_end - 1) + 1
    assert not citation.stale


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
@pytest.mark.parametrize(
    "question, source",
    [
        ("How many days did ships wait in the frozen harbour of Tromso?", "harbour.txt"),
        ("Where was the symphony premiere that the orchestra rehearsed?", "music/orchestra.md"),
        ("Why did farmers harvest the wheat early?", "farm.html"),
        ("Which planet did astronomers see the comet passing close to?", "space.txt"),
    ],
)
def test_each_mode_finds_the_right_document(engine, question, source, mode):
    passages = engine.search(question, k=3, mode=mode)
    assert passages[0].citation.source == source
    assert [p.rank for p in passages] == list(range(1, len(passages) + 1))
    for p in passages:
        assert_citation_exact(engine, p.citation)


def test_sources_are_relative_paths_with_forward_slashes(engine):
    assert engine.sources() == ["farm.html", "harbour.txt", "music/orchestra.md", "space.txt"]


def test_html_citations_point_into_the_extracted_text(engine):
    text = engine.document_text("farm.html")
    assert "wheat = 1" not in text and "ignored" not in text and "<" not in text
    passage = engine.search("drought wheat harvest", k=1, mode="bm25")[0]
    assert passage.citation.source == "farm.html"
    assert_citation_exact(engine, passage.citation)


def test_k_limits_the_passages(engine):
    assert len(engine.search("the", k=1)) == 1
    assert len(engine.search("ships harbour comet wheat orchestra", k=50)) <= 50


def test_answer_is_an_exact_sentence_of_a_top_passage(engine_factory):
    engine = engine_factory(Calibration(threshold=0.0))
    answer = engine.ask("How many days did ships wait in the frozen harbour of Tromso?")
    assert answer.found and answer.answer is not None
    span = answer.answer
    assert span.citation.text == "Ships waited nine days in the frozen harbour of Tromso before the thaw came."
    assert_citation_exact(engine, span.citation)
    assert (span.citation.line_start, span.citation.line_end) == (3, 3)
    assert 0.0 <= span.confidence <= 1.0
    assert 1 <= span.passage_rank <= len(answer.passages)
    passage = answer.passages[span.passage_rank - 1].citation
    assert passage.char_start <= span.citation.char_start < span.citation.char_end <= passage.char_end
    wanted = set(analyze(answer.question))
    assert span.highlights
    for start, end in span.highlights:
        assert analyze(span.citation.text[start:end])[0] in wanted


def test_abstains_below_the_threshold_and_keeps_the_best_guess(engine_factory):
    question = "How many days did ships wait in the frozen harbour of Tromso?"
    confidence = engine_factory(Calibration(threshold=0.0)).ask(question).best_guess.confidence
    assert 0.0 < confidence < 1.0
    above = engine_factory(Calibration(threshold=confidence)).ask(question)
    assert above.found and above.answer.confidence == pytest.approx(confidence)
    below = engine_factory(Calibration(threshold=min(1.0, confidence + 1e-6))).ask(question)
    assert not below.found and below.answer is None
    assert below.best_guess is not None and below.best_guess.confidence == pytest.approx(confidence)
    assert below.passages, "passages are still listed when the answer is not found"
    assert below.to_json()["answer"] is None and below.to_json()["found"] is False


def test_question_without_content_words_is_never_found(engine_factory):
    answer = engine_factory(Calibration(threshold=0.0)).ask("Is it this, or is it that?")
    assert analyze("Is it this, or is it that?") == []
    assert not answer.found and answer.answer is None


def test_unrelated_question_scores_lower_than_a_related_one(engine):
    related = engine.ask("How many days did ships wait in the frozen harbour of Tromso?").best_guess.confidence
    unrelated = engine.ask("What is the boiling point of liquid nitrogen?").best_guess.confidence
    assert unrelated < related


def test_changed_file_is_flagged_stale_and_never_quoted_wrongly(engine_factory, corpus):
    engine = engine_factory(Calibration(threshold=0.0))
    question = "How many days did ships wait in the frozen harbour of Tromso?"
    before = engine.ask(question)
    assert before.answer.citation.source == "harbour.txt"
    indexed = before.passages[0].citation
    # Shift every offset: the indexed spans no longer match the file.
    (corpus / "harbour.txt").write_text("NEW FIRST LINE.\n" + FILES["harbour.txt"], encoding="utf-8")
    after = engine.ask(question)
    stale = [p for p in after.passages if p.citation.source == "harbour.txt"]
    assert stale and all(p.citation.stale for p in stale)
    assert stale[0].citation.text == indexed.text, "the indexed text is kept, flagged, not re-sliced from the new file"
    assert after.answer is None or after.answer.citation.source != "harbour.txt"
    for p in after.passages:
        if p.citation.source != "harbour.txt":
            assert_citation_exact(engine, p.citation)
    payload = after.to_json()
    assert any(p["stale"] for p in payload["passages"] if p["source"] == "harbour.txt")
    # the reply says why the best-ranked passage was not used, rather than only "not in the documents"
    assert after.skipped_stale == ("harbour.txt",) and before.skipped_stale == ()
    out = io.StringIO()
    render_answer(after, Console(file=out, width=200, color_system=None))
    assert "changed since indexing (harbour.txt): run qa index" in out.getvalue()


def test_a_deleted_file_is_checked_by_the_stored_hash(engine, corpus):
    (corpus / "space.txt").unlink()
    passages = engine.search("comet Jupiter tail", k=2)
    cite = passages[0].citation
    assert cite.source == "space.txt" and (cite.check, cite.stale) == ("hash", False)
    assert engine.document_text("space.txt") is None


def test_appending_to_a_file_keeps_earlier_citations_valid(engine, corpus):
    (corpus / "space.txt").write_text(FILES["space.txt"] + "\nAppended later.", encoding="utf-8")
    passage = engine.search("comet Jupiter", k=1)[0]
    assert passage.citation.source == "space.txt" and not passage.citation.stale


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_sources_filter_restricts_every_mode(engine, mode):
    question = "How many days did ships wait in the frozen harbour of Tromso?"
    passages = engine.search(question, k=5, mode=mode, sources=["space.txt", "farm.html"])
    assert passages and {p.citation.source for p in passages} <= {"space.txt", "farm.html"}
    answer = engine.ask(question, mode=mode, sources=["music/orchestra.md"])
    assert {p.citation.source for p in answer.passages} == {"music/orchestra.md"}
    if answer.best_guess is not None:
        assert answer.best_guess.citation.source == "music/orchestra.md"


def test_unknown_source_is_refused_with_what_to_do(engine):
    with pytest.raises(InputError, match="Not in the index: nope.txt.*qa sources"):
        engine.ask("anything", sources=["nope.txt"])


def test_bad_mode_and_empty_question_are_refused(engine):
    with pytest.raises(InputError, match="Unknown mode"):
        engine.ask("ships", mode="magic")
    with pytest.raises(InputError, match="empty"):
        engine.ask("  \n\t ")


def test_question_is_trimmed_and_bounded(engine):
    answer = engine.ask("  ships   in\nthe harbour  ")
    assert answer.question == "ships in the harbour"
    long = engine.ask("harbour " * 1000)
    assert len(long.question) == MAX_QUESTION_CHARS


def test_curly_and_straight_quotes_match_each_other(engine):
    passage = engine.search('conductor\'s "bold" tempo', k=1, mode="bm25")[0]
    assert passage.citation.source == "music/orchestra.md"
    assert "conductor’s “bold” tempo" in passage.citation.text, "the display keeps the original characters"


def test_extracted_text_is_reused_between_answers_until_the_file_changes(tmp_path, monkeypatch):
    """Re-checking a quote must not extract a PDF again on every answer; an edit is always seen."""
    from conftest import make_pdf

    import index.walk
    import qa.cite

    reads = []
    real = qa.cite.read_text
    monkeypatch.setattr(qa.cite, "read_text", lambda path, **kw: reads.append(path.name) or real(path, **kw))
    pdf, txt = tmp_path / "a.pdf", tmp_path / "b.txt"
    pdf.write_bytes(make_pdf([["First version."]]))
    txt.write_text("Plain text.", encoding="utf-8")
    assert qa.cite.current_text(pdf) == qa.cite.current_text(pdf) == "First version."
    assert reads == ["a.pdf", "a.pdf"], "a file written moments ago is read every time"
    monkeypatch.setattr(index.walk, "RACY_NS", 0)
    reads.clear()
    for _ in range(3):
        assert qa.cite.current_text(pdf) == "First version." and qa.cite.current_text(txt) == "Plain text."
    assert reads == ["a.pdf", "b.txt", "b.txt", "b.txt"], "extracted text is kept; plain text is cheap to read"
    pdf.write_bytes(make_pdf([["Second version, longer."]]))
    assert qa.cite.current_text(pdf) == "Second version, longer."


def test_citations_of_paged_documents_name_their_page(tmp_path, fake_embedder):
    """A document with page breaks (a PDF's text, or a text file with form feeds) cites the page a quote
    starts on, in the label and the JSON; other documents give page null."""
    from conftest import make_pdf

    docs = write_corpus(
        tmp_path / "docs",
        {
            "manual.txt": (
                "Chapter one is about harbours and ships.\n\f\n"
                "Chapter two: the keeper of the lighthouse was Aurelio Brandt."
            ),
            "plain.txt": "The lighthouse keeper's dog was called Nebbia.",
            "report.pdf": make_pdf([["Front matter."], ["Nothing here."], ["The lighthouse keeper retired in 1931."]]),
        },
    )
    build_index([docs], tmp_path / "idx", fake_embedder)
    engine = Engine.open(tmp_path / "idx", fake_embedder, calibration=Calibration(threshold=0.0))
    try:
        answer = engine.ask("Who was the keeper of the lighthouse?", k=5)
        by_source = {p.citation.source: p.citation for p in answer.passages}
        assert by_source["plain.txt"].page is None and by_source["plain.txt"].label == "plain.txt:1"
        assert "Aurelio" in by_source["manual.txt"].text and by_source["manual.txt"].page in (1, 2)
        report = by_source["report.pdf"]  # one chunk over three short pages
        assert (report.page, report.label) == (1, "report.pdf:1-5 (pp. 1-3)")
        for citation in by_source.values():
            assert_citation_exact(engine, citation)
        payload = answer.to_json()
        assert {p["source"]: p["page"] for p in payload["passages"]} == {s: c.page for s, c in by_source.items()}
        report_only = engine.ask("When did the lighthouse keeper retire?", k=1, sources=["report.pdf"])
        sentence = report_only.best_guess.citation
        assert (
            sentence.text == "The lighthouse keeper retired in 1931."
            and sentence.page == 3
            and sentence.label == "report.pdf:5 (p. 3)"
        )
        assert report_only.to_json()["answer"]["page"] == 3
    finally:
        engine.close()
