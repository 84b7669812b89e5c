"""Our numpy BM25 build (index/lexical_build.py) against bm25s, the reference for format and scores."""

from __future__ import annotations

import filecmp
import random
from pathlib import Path

import numpy as np
import pytest

from index.lexical import BM25Settings, LexicalIndex
from index.lexical_build import (
    TERM_FREQS,
    TERMS,
    TOKEN_ROWS,
    TOKENS,
    analyze_rows,
    load_row_terms,
    row_terms,
    update_postings,
    update_row_terms,
    write_bm25,
)
from index.lexical_column import load_lexical

METHODS = ["lucene", "robertson", "atire", "bm25l", "bm25+"]
WORDS = [
    "cell",
    "cells",
    "protein",
    "gene",
    "the",
    "of",
    "café",
    "naïve",
    "brca1",
    "p53",
    "o'brien's",
    "tumour",
    "a",
    "x",
]


def random_text(rng: random.Random) -> str:
    """Texts with repeated terms, rare terms, stopword-only texts and empty ones (the placeholder row)."""
    kind = rng.random()
    if kind < 0.1:
        return ""
    if kind < 0.2:
        return rng.choice(["the of a", "!!! ...", "\u200b"])
    rare = f" rare{rng.randrange(30)}" if kind < 0.35 else ""  # terms that come and go with updates
    return " ".join(rng.choice(WORDS) for _ in range(rng.choice([1, 2, 3, 8, 40]))) + rare


def same_files(a: Path, b: Path, skip: tuple[str, ...] = ()) -> list[str]:
    """Names of files that differ (or exist on one side only)."""
    names_a = {p.name for p in a.iterdir()} - set(skip)
    names_b = {p.name for p in b.iterdir()} - set(skip)
    return sorted(names_a ^ names_b) + sorted(
        n for n in names_a & names_b if not filecmp.cmp(a / n, b / n, shallow=False)
    )


@pytest.mark.parametrize("method", METHODS)
def test_files_equal_bm25s_byte_for_byte(tmp_path, method):
    """Given the same term ids, bm25s.BM25.index + save writes exactly our bytes (all five methods)."""
    import bm25s

    rng = random.Random(method)
    for trial in range(15):
        settings = BM25Settings(k1=rng.choice([0.9, 1.2, 1.5]), b=rng.choice([0.0, 0.4, 0.75, 1.0]), method=method)
        rows = analyze_rows([random_text(rng) for _ in range(rng.randint(1, 80))], settings)
        ours = row_terms(rows)
        write_bm25(tmp_path / f"ours{trial}", ours, settings)
        vocab = {t: i for i, t in enumerate(ours.terms)}
        reference = bm25s.BM25(k1=settings.k1, b=settings.b, method=method)
        reference.index(([[vocab[t] for t in r] for r in rows], dict(vocab)), show_progress=False)
        reference.save(str(tmp_path / f"ref{trial}"), show_progress=False, allow_pickle=False)
        assert (
            same_files(
                tmp_path / f"ours{trial}", tmp_path / f"ref{trial}", skip=(TOKENS, TOKEN_ROWS, TERM_FREQS, TERMS)
            )
            == []
        )


@pytest.mark.parametrize("method", METHODS)
def test_scores_equal_bm25s_own_build(tmp_path, method):
    """Against LexicalIndex.build (bm25s with its own vocabulary order), every query scores the same, exactly."""
    import bm25s

    rng = random.Random(f"scores-{method}")
    settings = BM25Settings(method=method)
    texts = [random_text(rng) for _ in range(120)]
    write_bm25(tmp_path / "ours", row_terms(analyze_rows(texts, settings)), settings)
    reference = LexicalIndex.build(texts, settings)
    ours = LexicalIndex(bm25s.BM25.load(str(tmp_path / "ours"), allow_pickle=False, show_progress=False), settings)
    loaded = load_lexical(tmp_path / "ours", settings)  # ColumnLexical for lucene/robertson/atire
    try:
        for word in WORDS + ["\u2205", "unknown"]:
            query = f"{word} {rng.choice(WORDS)}"
            np.testing.assert_array_equal(ours.scores(query), reference.scores(query))
            np.testing.assert_array_equal(loaded.scores(query), reference.scores(query))
            assert loaded.document_frequency(word) == reference.document_frequency(word)
    finally:
        loaded.close()


def old_style(folder: Path, rows) -> None:
    """Make a folder look like one written before term counts: row term ids, no TERM_FREQS or TERMS."""
    np.save(folder / TOKENS, rows.ids, allow_pickle=False)
    (folder / TERM_FREQS).unlink()
    (folder / TERMS).unlink()


@pytest.mark.parametrize("method", ["lucene", "bm25+"])
@pytest.mark.parametrize("start", ["postings", "row terms"])
def test_incremental_updates_write_the_same_bytes_as_a_fresh_build(tmp_path, method, start):
    """Random add / remove / change sequences: the update, fed from the saved previous folder, equals a
    rebuild. start='row terms': the first previous folder is one written before term counts."""
    rng = random.Random(f"incremental-{method}")
    settings = BM25Settings(method=method)
    texts = {i: random_text(rng) for i in range(1, 40)}
    next_id = 40
    ids = np.asarray(sorted(texts), dtype=np.int64)
    previous = tmp_path / "step0"
    first = row_terms(analyze_rows([texts[i] for i in ids], settings))
    write_bm25(previous, first, settings)
    if start == "row terms":
        old_style(previous, first)
    asked: list[int] = []
    same_vocab = 0
    for step in range(1, 25):
        for _ in range(rng.randint(0, 4)):  # remove
            if len(texts) > 1:
                texts.pop(rng.choice(sorted(texts)))
        for _ in range(rng.randint(0, 3)):  # change: an edited file gets new row ids
            if texts:
                texts.pop(rng.choice(sorted(texts)))
                texts[next_id], next_id = random_text(rng), next_id + 1
        for _ in range(rng.randint(0, 5)):  # add
            texts[next_id], next_id = random_text(rng), next_id + 1
        previous_ids, ids = ids, np.asarray(sorted(texts), dtype=np.int64)

        def texts_of(wanted: np.ndarray) -> list[str]:
            asked.extend(int(i) for i in wanted)
            return [texts[int(i)] for i in wanted]

        before = len(asked)
        if step == 1 and start == "row terms":
            assert update_postings(previous, previous_ids, ids, texts_of, settings) is None
            loaded = load_row_terms(previous, previous_ids.shape[0])
            rows = update_row_terms(loaded, previous_ids, ids, texts_of, settings)
            write_bm25(tmp_path / f"step{step}", rows, settings)
        else:
            # The kept rows' postings come from the previous folder; only new rows are counted.
            updated = update_postings(previous, previous_ids, ids, texts_of, settings)
            assert updated is not None and updated.rows.ids is None
            same_vocab += updated.same_vocab
            write_bm25(
                tmp_path / f"step{step}",
                updated.rows,
                settings,
                vocab_from=previous if updated.same_vocab else None,
                postings=updated.postings,
            )
        assert set(asked[before:]) == set(ids.tolist()) - set(previous_ids.tolist())  # only new rows are analysed
        write_bm25(tmp_path / f"fresh{step}", row_terms(analyze_rows([texts[i] for i in ids], settings)), settings)
        assert same_files(tmp_path / f"step{step}", tmp_path / f"fresh{step}") == []
        previous = tmp_path / f"step{step}"
    assert 0 < same_vocab < 23  # both paths ran: vocabulary kept, and vocabulary changed


@pytest.mark.parametrize("old_format", [False, True])
def test_builder_update_equals_rebuild(tmp_path, fake_embedder, old_format):
    """Through build_index: edit, add and delete files, then compare both BM25 folders with a --rebuild.
    old_format: the live index was written before term counts were kept (row term ids instead)."""
    import sqlite3

    from index import store
    from index.builder import build_index

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(8):
        (docs / f"d{i}.txt").write_text(f"Document {i} is about cells and protein p53. " * (i + 1), encoding="utf-8")
    build_index([docs], tmp_path / "inc", fake_embedder)
    if old_format:
        live = store.current_generation(tmp_path / "inc")
        conn = sqlite3.connect(live / store.SQLITE)
        for folder, table in ((store.BM25_DIR, "chunks"), (store.UNIT_BM25_DIR, "units")):
            texts = [r[0] for r in conn.execute(f"SELECT text FROM {table} ORDER BY id")]
            old_style(live / folder, row_terms(analyze_rows(texts, BM25Settings())))
        conn.close()
    (docs / "d1.txt").write_text("An edited text about the naive tumour gene.", encoding="utf-8")
    (docs / "d2.txt").unlink()
    (docs / "new.txt").write_text("A new file: café brca1.", encoding="utf-8")
    report = build_index([docs], tmp_path / "inc", fake_embedder)
    assert (report.changed, report.removed, report.new) == (1, 1, 1)
    build_index([docs], tmp_path / "fresh", fake_embedder)
    inc, fresh = store.load_index(tmp_path / "inc"), store.load_index(tmp_path / "fresh")
    try:
        for lexical, ids, table in (("lexical", "bm25_ids", "chunks"), ("unit_lexical", "unit_ids", "units")):
            for query in ("cells", "edited tumour", "café protein", "document 5"):
                # The update appended its rows, so row order differs; each text's score does not.
                by_text = []
                for loaded in (inc, fresh):
                    texts = [
                        loaded.conn.execute(f"SELECT text FROM {table} WHERE id = ?", (int(i),)).fetchone()[0]
                        for i in getattr(loaded, ids)
                    ]
                    by_text.append(sorted(zip(texts, getattr(loaded, lexical).scores(query).tolist())))
                assert by_text[0] == by_text[1]
    finally:
        inc.close()
        fresh.close()
    assert {f"{store.BM25_DIR}/{TERM_FREQS}", f"{store.UNIT_BM25_DIR}/{TOKEN_ROWS}"} <= set(
        store.read_manifest(tmp_path / "inc").files
    )


def test_saved_row_terms_that_do_not_fit_are_not_used(tmp_path):
    """A missing, short or out-of-range token file means: analyse every row again (never a wrong index)."""
    settings = BM25Settings()
    rows = row_terms(analyze_rows(["cells and genes", "protein", ""], settings))
    write_bm25(tmp_path / "a", rows, settings)
    old_style(tmp_path / "a", rows)
    assert load_row_terms(tmp_path / "a", 3) is not None
    assert load_row_terms(tmp_path / "a", 4) is None
    np.save(tmp_path / "a" / TOKENS, np.asarray([0, 1, 99, 2], dtype=np.int32), allow_pickle=False)
    assert load_row_terms(tmp_path / "a", 3) is None
    (tmp_path / "a" / TOKEN_ROWS).write_bytes(b"not numpy")
    assert load_row_terms(tmp_path / "a", 3) is None
    (tmp_path / "a" / TOKEN_ROWS).unlink()
    assert load_row_terms(tmp_path / "a", 3) is None


def test_saved_postings_that_do_not_fit_are_not_used(tmp_path):
    """Term counts or row lengths that do not describe the folder's rows: no update from them."""
    settings = BM25Settings()
    texts = ["cells and genes", "protein cells", ""]
    write_bm25(tmp_path / "a", row_terms(analyze_rows(texts, settings)), settings)
    ids, grown = np.arange(1, 4), np.arange(1, 5)
    texts_of = lambda wanted: ["new gene"] * len(wanted)  # noqa: E731
    assert update_postings(tmp_path / "a", ids, grown, texts_of, settings) is not None
    assert update_postings(tmp_path / "a", np.arange(1, 5), grown, texts_of, settings) is None  # other row count
    freqs = np.load(tmp_path / "a" / TERM_FREQS)
    np.save(tmp_path / "a" / TERM_FREQS, freqs + 1, allow_pickle=False)  # counts no longer add up to the lengths
    assert update_postings(tmp_path / "a", ids, grown, texts_of, settings) is None
    np.save(tmp_path / "a" / TERM_FREQS, freqs[:-1], allow_pickle=False)
    assert update_postings(tmp_path / "a", ids, grown, texts_of, settings) is None
    (tmp_path / "a" / TERM_FREQS).unlink()
    assert update_postings(tmp_path / "a", ids, grown, texts_of, settings) is None


def test_first_build_writes_bm25_beside_the_embedding_with_the_sqlite_paths_bytes(tmp_path, fake_embedder, monkeypatch):
    """A first build analyses the rows' texts in memory, in the background thread, and writes exactly
    what the SQLite path (every text read back from meta.sqlite) writes."""
    from index import store
    from index.builder import build_index
    from index.stores import embedded_update
    from index.stores.embedded_update import _write_lexical
    from index.stores.sqlite_catalog import SqliteCatalogEditor

    def sqlite_path(*args, **kwargs):
        raise AssertionError("a first build should not read the texts back from SQLite")

    monkeypatch.setattr(embedded_update, "_write_lexical", sqlite_path)

    docs = tmp_path / "docs"
    docs.mkdir()
    rng = random.Random(7)
    for i in range(12):
        (docs / f"d{i}.txt").write_text(". ".join(random_text(rng) or "x" for _ in range(6)) + ".", encoding="utf-8")
    build_index([docs], tmp_path / "index", fake_embedder)
    live = store.current_generation(tmp_path / "index")
    conn = store.connect(live / store.SQLITE, readonly=True)
    try:
        for table, folder, ids_file in (
            ("chunks", store.BM25_DIR, store.BM25_IDS),
            ("units", store.UNIT_BM25_DIR, store.UNIT_IDS),
        ):
            ids = np.load(live / ids_file, allow_pickle=False)
            out = tmp_path / f"sqlite-{table}"
            out.mkdir()
            _write_lexical(SqliteCatalogEditor(conn), table, ids, out, None, folder, ids_file, BM25Settings())
            assert same_files(live / folder, out / folder) == []
            assert np.array_equal(np.load(out / ids_file), ids)
    finally:
        conn.close()
