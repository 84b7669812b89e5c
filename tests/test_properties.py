"""Property tests (hypothesis): loader + chunker + index agree with the file's text, in any encoding;
re-indexing is idempotent."""

from __future__ import annotations

import codecs
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index.chunker import ChunkSettings, chunk_text

# Letters in several scripts, digits, punctuation, odd spaces, combining marks, an emoji, and the
# line breaks a file can have; no NUL (that makes a file binary on purpose).
_ALPHABET = st.sampled_from(
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789") * 3
    + list(" " * 20 + "\n" * 4 + "\t\r")
    + list(".,;:!?…'\"“”’()[]-—/&%$#@*")
    + ["é", "ß", "ø", "ñ", "ü", "\u00a0", "\u2009", "\u0301", "名", "前", "д", "ω", "😀", "\u200b", "\x0c"]
)
_WORD_RUN = st.text(alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyz")), min_size=30, max_size=400)
TEXTS = st.lists(
    st.one_of(st.text(alphabet=_ALPHABET, min_size=1, max_size=80), _WORD_RUN), min_size=1, max_size=12
).map("".join)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32", "cp1252", "crlf", "html"])
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _encode(text: str, how: str) -> tuple[str, bytes]:
    """(file name, bytes) for a text written the way `how` says."""
    if how == "crlf":
        return "doc.txt", text.replace("\r", "").replace("\n", "\r\n").encode()
    if how == "html":
        body = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return "doc.html", f"<html><body><script>var x = 1;</script><p>{body}</p></body></html>".encode()
    if how == "cp1252":
        return "doc.txt", text.encode("cp1252", errors="replace")
    if how in ("utf-16", "utf-32"):
        return "doc.txt", codecs.BOM_UTF16_LE + text.encode(
            "utf-16-le"
        ) if how == "utf-16" else codecs.BOM_UTF32_LE + text.encode("utf-32-le")
    return "doc.md", text.encode(how)


def _check_chunks(text: str, rows: list[tuple], tokenizer, limit: int) -> None:
    """Spans are exact, lines are right, no chunk is over the limit, and every character of every
    token is in some chunk (a chunk may cut a whole-text token: wordpieces depend on context)."""
    for char_start, char_end, line_start, line_end, n_tokens, chunk in rows:
        assert text[char_start:char_end] == chunk
        assert line_start == text.count("\n", 0, char_start) + 1
        assert line_end == text.count("\n", 0, char_end - 1) + 1
        assert n_tokens <= limit
        assert len(tokenizer.offsets([chunk])[0]) <= limit, chunk
    covered = bytearray(len(text))
    for row in rows:
        covered[row[0] : row[1]] = b"\x01" * (row[1] - row[0])
    for s, e in tokenizer.offsets([text])[0]:
        for i in range(s, e):
            assert covered[i] or text[i].isspace(), f"{text[i]!r} at {i} (in token {text[s:e]!r}) is in no chunk"


@FAST
@given(texts=st.lists(st.tuples(TEXTS, ENCODINGS), min_size=1, max_size=3), max_tokens=st.integers(8, 64))
def test_indexed_chunks_match_the_file_text_and_reindexing_is_idempotent(texts, max_tokens):
    """Through the whole pipeline (walk, decode, HTML, chunk, SQLite): each stored chunk is exactly
    file_text[char_start:char_end] of the file as read back, and a second run changes nothing."""
    from fakes import HashingEmbedder

    from index.builder import build_index
    from index.readers import read_text
    from index.stores import open_store

    embedder = HashingEmbedder()
    chunking = ChunkSettings(max_tokens=max_tokens, overlap_tokens=max_tokens // 4)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        for i, (text, how) in enumerate(texts):
            name, data = _encode(text, how)
            (corpus / f"{i}_{name}").write_bytes(data)
        index_dir = Path(tmp) / "index"
        try:
            first = build_index([corpus], index_dir, embedder, chunking)
        except Exception as exc:  # only "nothing to index" is acceptable, and only for blank input
            assert type(exc).__name__ == "EmptyCorpusError" and all(not t.strip() for t, _ in texts), exc
            return
        with open_store(index_dir).read_catalog() as (catalog, _):
            passages = list(catalog.all_passages())
            for source in catalog.sources():
                text = read_text(corpus / source)[0]
                rows = [
                    (p.char_start, p.char_end, p.line_start, p.line_end, p.n_tokens, p.text)
                    for p in sorted(passages, key=lambda p: p.ordinal)
                    if p.source == source
                ]
                _check_chunks(text, rows, embedder, max_tokens)
                original, how = texts[int(source.split("_")[0])]
                if how in ("utf-8", "utf-8-sig", "utf-16", "utf-32"):
                    assert text == original  # lossless for the Unicode encodings
        for path in corpus.iterdir():  # touching files without changing them is not a change
            path.touch()
        second = build_index([corpus], index_dir, embedder, chunking)
        assert (second.new, second.changed, second.removed, second.embedded_chunks) == (0, 0, 0, 0)
        assert second.unchanged == first.new and second.n_chunks == first.n_chunks


@pytest.fixture(scope="module")
def bert_tokenizer():
    """The real model's tokenizer (no model weights loaded)."""
    from index.embedder import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder("torch")
    embedder.offsets(["warm up"])
    return embedder


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(text=TEXTS, max_tokens=st.integers(4, 128), overlap=st.integers(0, 48))
def test_real_tokenizer_chunks_stay_within_the_limit(bert_tokenizer, text, max_tokens, overlap):
    """With BERT wordpieces (long words, no spaces, mixed scripts), no chunk ever exceeds the limit."""
    chunks = chunk_text(
        text, bert_tokenizer, ChunkSettings(max_tokens=max_tokens, overlap_tokens=overlap), bert_tokenizer.max_tokens
    )
    rows = [(c.char_start, c.char_end, c.line_start, c.line_end, c.n_tokens, c.text) for c in chunks]
    _check_chunks(text, rows, bert_tokenizer, max_tokens)


class _Rechecking:
    """The real tokenizer without joins_on_whitespace, so the chunker re-tokenises every joined chunk."""

    def __init__(self, tokenizer) -> None:
        self._tokenizer = tokenizer

    def offsets(self, texts):
        return self._tokenizer.offsets(texts)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(text=TEXTS, max_tokens=st.integers(4, 128), overlap=st.integers(0, 48))
def test_real_tokenizer_needs_no_recheck_at_whitespace(bert_tokenizer, text, max_tokens, overlap):
    """BERT wordpieces never cross whitespace, so counting a chunk as the sum of its sentences gives
    exactly what re-tokenising it gives, for odd spaces, control characters and scripts too."""
    from index.chunker import segment_text

    assert bert_tokenizer.joins_on_whitespace
    cs = ChunkSettings(max_tokens=max_tokens, overlap_tokens=overlap)
    assert segment_text(text, bert_tokenizer, cs, bert_tokenizer.max_tokens) == segment_text(
        text, _Rechecking(bert_tokenizer), cs, bert_tokenizer.max_tokens
    )


@given(st.lists(st.integers(0, 4), max_size=60), st.integers(1, 70))
@FAST
def test_top_rows_is_a_stable_descending_sort_prefix(values, n):
    """The engine's partial sort (used at 1M chunks) picks exactly what a full stable sort would."""
    import numpy as np

    from index.ranking import top_rows

    scores = np.asarray(values, dtype=np.float32)
    expected = sorted(range(len(values)), key=lambda i: (-values[i], i))[:n]
    assert top_rows(scores, n).tolist() == expected


@given(st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.5, 1.0, 2.0, 3.5]), min_size=256, max_size=1200), st.integers(1, 3))
@FAST
def test_top_rows_on_large_mostly_tied_scores_matches_a_full_sort(values, n):
    """The sampled-threshold path (arrays of at least 128 * n rows) picks exactly what a full stable sort would."""
    import numpy as np

    from index.ranking import top_rows

    scores = np.asarray(values, dtype=np.float32)
    expected = sorted(range(len(values)), key=lambda i: (-values[i], i))[:n]
    assert top_rows(scores, n).tolist() == expected
