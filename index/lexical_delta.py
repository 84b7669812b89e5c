"""BM25 updates without rewriting the index: a base folder shared between generations, plus a delta.

BM25's scores depend on the corpus's row count, mean row length and document frequencies, so one edit
changes them all, and rescoring every posting costs time that grows with the corpus. Instead, like the
flat vector index (index/vectors.py), an update hard-links the base folder's files and writes a small
delta beside them: the base rows it removed and the analysed terms of the rows added since the base was
written. The scores of an index with a delta are computed at query time from the saved term counts
(ColumnLexical), with the statistics of the rows the index has now, by bm25s's formulas in the same
precision: they equal, bit for bit, the scores a fresh build of the same rows stores
(tests/test_lexical_delta.py). Once the delta and the removals exceed DELTA_SHARE of the base's rows,
the update writes a new base instead.

Rows are numbered as a fresh build numbers them (ascending ids): the base's rows that remain, in
order, then the delta's. Row ids only grow (SQLite AUTOINCREMENT), so new rows always come last.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from index.bm25_scoring import METHODS, ScoredColumns, length_norm, term_scores
from index.files import link_or_copy
from index.lexical import BM25Settings
from index.lexical_build import (
    DELTA_FILES,
    DELTA_REMOVED,
    DELTA_ROWS,
    DELTA_TERMS,
    DELTA_TOKENS,
    TERM_FREQS,
    TERMS,
    TOKEN_ROWS,
    Delta,
    count_postings,
    empty_delta,
    kept_rows,
    read_delta,
    update_row_terms,
    write_term_lines,
)

DELTA_SHARE = 0.05
"""A delta whose removed plus added rows exceed this share of the base's rows is folded into a new
base (the same share as index/vectors.py's)."""
DELTA_MAX_POSTINGS = 5_000_000
"""Bases with more postings are rewritten by every update, without a delta. Scoring from term counts
costs more per posting than reading stored scores: on a base this large a delta would cost queries more
than the update time it saves (benchmarks/bench_bm25_delta.py measures both)."""
CACHE_POSTINGS = 2_000_000
"""Scored postings a DeltaScorer keeps (12 bytes each: 24 MB at most), least recently used dropped."""


def write_delta(
    live: Path,
    folder: Path,
    previous_ids: np.ndarray,
    ids: np.ndarray,
    texts_of: Callable[[np.ndarray], Sequence[str]],
    settings: BM25Settings,
    share: float | None = None,
    max_postings: float | None = None,
) -> bool:
    """Write the BM25 folder for rows `ids` (ascending) as live's base, linked, plus a new delta;
    live holds rows previous_ids. Only rows new to the delta are analysed (texts_of(their ids)).

    False, writing nothing, when a new base should be written instead: the delta would exceed
    `share` (default DELTA_SHARE) of the base, the base has more than max_postings (default
    DELTA_MAX_POSTINGS), the method is not scored column by column, live has no term counts,
    or the rows do not line up (new rows must come after all kept ones).
    """
    if (
        settings.method not in METHODS
        or not hasattr(os, "pread")
        or not (live / TERM_FREQS).is_file()
        or not (live / TERMS).is_file()
    ):
        return False  # only ColumnLexical reads a delta
    try:
        base_rows = int(json.loads((live / "params.index.json").read_text(encoding="utf-8"))["num_docs"])
        if np.load(live / TERM_FREQS, mmap_mode="r", allow_pickle=False).shape[0] > (
            DELTA_MAX_POSTINGS if max_postings is None else max_postings
        ):
            return False
        old = read_delta(live, base_rows) or empty_delta()
    except (OSError, ValueError, KeyError, TypeError):
        return False
    alive = old.alive(base_rows)
    n_base_before = base_rows - old.removed.shape[0]
    if previous_ids.shape[0] != n_base_before + old.rows.n_rows:
        return False
    kept = kept_rows(previous_ids, ids)
    if kept is None:
        return False
    removed = np.union1d(old.removed, np.flatnonzero(alive)[~kept[:n_base_before]]).astype(np.int64)
    n_base = base_rows - removed.shape[0]
    if not np.array_equal(ids[:n_base], previous_ids[:n_base_before][kept[:n_base_before]]):
        return False  # an id of the delta below one of the base's: not in AUTOINCREMENT order
    added = ids[n_base:]
    if removed.shape[0] + added.shape[0] > (DELTA_SHARE if share is None else share) * base_rows:
        return False
    rows = update_row_terms(old.rows, previous_ids[n_base_before:], added, texts_of, settings)

    folder.mkdir(parents=True, exist_ok=True)
    for path in live.iterdir():
        if path.name not in DELTA_FILES:
            link_or_copy(path, folder / path.name)
    if removed.size or rows.n_rows:
        np.save(folder / DELTA_REMOVED, removed, allow_pickle=False)
        np.save(folder / DELTA_TOKENS, rows.ids, allow_pickle=False)
        write_term_lines(folder / DELTA_TERMS, rows.terms)
        np.save(folder / DELTA_ROWS, rows.offsets, allow_pickle=False)  # last: its presence marks a delta
    return True


class DeltaScorer:
    """Scores of a base + delta BM25 folder, computed per query term from the saved term counts."""

    def __init__(self, folder: Path, base_rows: int, delta: Delta, settings: BM25Settings) -> None:
        self.settings = settings
        offsets = np.load(folder / TOKEN_ROWS, allow_pickle=False)
        if offsets.shape != (base_rows + 1,) or offsets.dtype != np.int64:
            raise ValueError(f"{TOKEN_ROWS} in {folder.name} does not describe {base_rows} rows")
        base_lengths = np.diff(offsets)
        alive = delta.alive(base_rows)
        self.n_base = base_rows - delta.removed.shape[0]
        self.postings = count_postings(delta.rows)
        self.vocab = {t: i for i, t in enumerate(delta.rows.terms)}
        delta_lengths = np.diff(delta.rows.offsets)
        lengths = np.concatenate([base_lengths[alive], delta_lengths])
        self.num_docs = int(lengths.shape[0])
        self.compact = np.full(base_rows, self.num_docs, dtype=np.intp)
        """A base row's row in the index now; removed rows go to num_docs, a spare row that is dropped:
        one gather instead of filtering every column."""
        self.compact[alive] = np.arange(self.n_base)
        avg = lengths.mean() if self.num_docs else np.float64("nan")  # as bm25_arrays: the same sum, the same order
        self.base_norm = length_norm(base_lengths, avg, settings.k1, settings.b)
        self.delta_norm = length_norm(delta_lengths, avg, settings.k1, settings.b)
        self._cache = ScoredColumns(CACHE_POSTINGS)
        """term -> (rows, scores) of its column as scored here."""

    def document_frequency(self, term: str, base: Callable[[], tuple[np.ndarray, np.ndarray] | None]) -> int:
        return self._live(self.postings_of(term, base)[0])

    def _live(self, rows: np.ndarray) -> int:
        """How many of a column's postings are in rows the index has now (not the spare)."""
        return int(rows.shape[0] - np.count_nonzero(rows == self.num_docs))

    def postings_of(
        self, term: str, base: Callable[[], tuple[np.ndarray, np.ndarray] | None]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, term counts, length norms) of the term's postings in the index as it is now, where
        row num_docs stands for removed rows; base() reads the term's column of the base (rows,
        counts), or None if the base lacks it."""
        parts = []
        column = base()
        if column is not None:
            rows, tf = column
            rows = rows.astype(np.intp)  # once, rather than by each gather
            parts.append((self.compact[rows], tf, self.base_norm[rows]))
        d = self.vocab.get(term)
        if d is not None:
            start, end = int(self.postings.indptr[d]), int(self.postings.indptr[d + 1])
            rows = self.postings.rows[start:end].astype(np.intp)
            parts.append((rows + self.n_base, self.postings.tf[start:end], self.delta_norm[rows]))
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float64)
        return tuple(np.concatenate(p) for p in zip(*parts))

    def add_scores(
        self, scores: np.ndarray, term: str, base: Callable[[], tuple[np.ndarray, np.ndarray] | None]
    ) -> None:
        """Add the term's BM25 score of every row to scores (num_docs + 1 of them: the last is the spare)."""
        column = self._cache.get(term)
        if column is None:
            rows, tf, norm = self.postings_of(term, base)
            df = self._live(rows)
            s = self.settings
            column = (
                (rows, term_scores(s.method, tf, norm, df, self.num_docs, s.k1))
                if df
                else (rows[:0], np.zeros(0, dtype=np.float32))
            )
            self._cache.put(term, column)
        np.add.at(scores, *column)
