"""Near-duplicate passages (the same fact syndicated in two articles) collapse into one hit listing both sources."""

from __future__ import annotations

import pytest
from conftest import write_corpus

from index.builder import build_index
from index.chunker import ChunkSettings
from qa.dedup import overlap_ratio, resemblance, shingles
from qa.engine import Engine

SYNDICATED = (
    "Obama said Turkey has the right to defend its territory and its airspace, "
    "adding that Russian strikes on moderate opposition groups were strengthening the militants."
)


def test_shingles_fold_case_and_lookalike_characters():
    assert shingles("Putin’s “aims”\u00a0are CLEAR") == shingles('putin\'s "aims" are clear')
    assert shingles("one two") == frozenset({("one", "two")})
    assert shingles("") == frozenset()
    assert len(shingles("a b c d e")) == 3


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ("a b c d e", "a b c d e", 1.0),
        ("a b c d e", "x a b c d e y z", 1.0),  # containment: the shorter is inside the longer
        ("a b c d e", "v w x y z", 0.0),
        ("a b c d", "a b c x", 0.5),
        ("", "a b c", 0.0),
    ],
)
def test_resemblance(a, b, expected):
    assert resemblance(shingles(a), shingles(b)) == pytest.approx(expected)


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ((0, 10), (0, 10), 1.0),
        ((0, 10), (5, 15), 0.5),
        ((0, 10), (10, 20), 0.0),
        ((0, 100), (40, 50), 1.0),
        ((0, 4), (6, 9), 0.0),
    ],
)
def test_overlap_ratio(a, b, expected):
    assert overlap_ratio(a, b) == pytest.approx(expected)
    assert overlap_ratio(b, a) == pytest.approx(expected)


def _engine(tmp_path, fake_embedder, files, chunking=ChunkSettings()):
    corpus = write_corpus(tmp_path / "docs", files)
    build_index([corpus], tmp_path / "idx", fake_embedder, chunking)
    return Engine.open(tmp_path / "idx", fake_embedder)


def test_syndicated_passage_is_one_hit_that_lists_both_sources(tmp_path, fake_embedder):
    engine = _engine(
        tmp_path,
        fake_embedder,
        {
            "agency.txt": SYNDICATED,
            "paper.txt": "Reprinted from the wires.\n" + SYNDICATED.replace("Obama", "Mr Obama"),
            "other.txt": "The weather in Paris was cold and grey all week.",
        },
    )
    try:
        passages = engine.search("What did Obama say about Turkey defending its airspace?", k=3)
        first = passages[0]
        assert [c.source for c in first.also_in] != []
        sources = {first.citation.source, *(c.source for c in first.also_in)}
        assert sources == {"agency.txt", "paper.txt"}
        assert all(p.citation.source != first.also_in[0].source for p in passages), "the duplicate is not ranked again"
        assert [p.rank for p in passages] == list(range(1, len(passages) + 1))
        # The collapsed citation is exact and verified too.
        other = first.also_in[0]
        text = (engine.root / other.source).read_text(encoding="utf-8")
        assert text[other.char_start : other.char_end] == other.text and not other.stale
    finally:
        engine.close()


def test_different_facts_are_not_collapsed(tmp_path, fake_embedder):
    engine = _engine(
        tmp_path,
        fake_embedder,
        {
            "a.txt": "Hollande met Obama at the White House on Tuesday to discuss the coalition.",
            "b.txt": "Hollande will travel to Moscow on Thursday to meet Putin about the coalition.",
        },
    )
    try:
        passages = engine.search("When did Hollande meet about the coalition?", k=5)
        assert sorted(p.citation.source for p in passages) == ["a.txt", "b.txt"]
        assert all(p.also_in == () for p in passages)
    finally:
        engine.close()


def test_overlapping_chunks_of_one_document_are_not_shown_twice(tmp_path, fake_embedder):
    sentences = " ".join(f"Fact {i} concerns the frozen harbour and ships waiting." for i in range(12))
    engine = _engine(tmp_path, fake_embedder, {"long.txt": sentences}, ChunkSettings(max_tokens=24, overlap_tokens=12))
    try:
        passages = engine.search("frozen harbour ships waiting", k=10)
        spans = [(p.citation.char_start, p.citation.char_end) for p in passages]
        for i, a in enumerate(spans):
            for b in spans[i + 1 :]:
                assert overlap_ratio(a, b) < 0.5
    finally:
        engine.close()
