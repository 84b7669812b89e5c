"""Writes a bm25s index folder with numpy, reusing the analysed terms of unchanged rows.

bm25s is the reference for the format and the scoring: the files written here are the ones
`bm25s.BM25.save` writes, with the numbers its `index` computes (tests/test_lexical_build.py
builds both and compares them byte for byte). bm25s itself loops over rows in Python and
needs every row's terms, so an update that touches one file would re-analyse the whole
corpus; here each row's term ids are kept beside the index (TOKENS, TOKEN_ROWS) and the
score matrix is computed for all rows at once with numpy.

The term ids are the columns of vocab.index.json: terms sorted by Python string order, then
bm25s's empty token "" last. Sorting makes a from-scratch build and an incremental one
write the same bytes.
"""

from __future__ import annotations

import bisect
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from index.lexical import EMPTY_ROW, BM25Settings, analyze

TOKENS = "tokens.npy"
"""int32 term ids of every row, concatenated in row order."""
TOKEN_ROWS = "token_rows.npy"
"""int64 offsets: row i's terms are TOKENS[TOKEN_ROWS[i]:TOKEN_ROWS[i + 1]]."""
VOCAB = "vocab.index.json"
NONOCCURRENCE_METHODS = ("bm25l", "bm25+")


@dataclass(frozen=True)
class RowTerms:
    """The analysed terms of every row of a BM25 index."""

    terms: list[str]
    """The vocabulary, sorted; a term's id is its position."""
    ids: np.ndarray
    """int32 term ids of all rows, concatenated in row order."""
    offsets: np.ndarray
    """int64, one more than the rows: row i is ids[offsets[i]:offsets[i + 1]]."""

    @property
    def n_rows(self) -> int:
        return int(self.offsets.shape[0] - 1)


def analyze_rows(texts: Sequence[str], settings: BM25Settings) -> list[list[str]]:
    return [analyze(t, settings) or [EMPTY_ROW] for t in texts]


def row_terms(rows: Sequence[Sequence[str]]) -> RowTerms:
    """RowTerms of rows given as lists of terms."""
    terms = sorted(set().union(*rows)) if rows else []
    vocab = {t: i for i, t in enumerate(terms)}
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.fromiter((vocab[t] for r in rows for t in r), dtype=np.int32, count=int(offsets[-1]))
    return RowTerms(terms, ids, offsets)


def load_row_terms(folder: Path, n_rows: int) -> RowTerms | None:
    """The row terms saved with an index folder of n_rows rows, or None if it has none or they do
    not fit (then the caller analyses every row again, from the text)."""
    if not (folder / TOKENS).is_file() or not (folder / TOKEN_ROWS).is_file():
        return None
    try:
        vocab: dict[str, int] = json.loads((folder / VOCAB).read_text(encoding="utf-8"))
        ids = np.load(folder / TOKENS, allow_pickle=False)
        offsets = np.load(folder / TOKEN_ROWS, allow_pickle=False)
    except (OSError, ValueError):
        return None
    terms = [""] * len(vocab)
    for term, i in vocab.items():
        if not 0 <= i < len(terms):
            return None
        terms[i] = term
    if terms and terms[-1] == "":
        terms.pop()
    fits = (
        ids.dtype == np.int32 and offsets.dtype == np.int64 and offsets.shape == (n_rows + 1,)
        and offsets[0] == 0 and offsets[-1] == ids.shape[0] and bool(np.all(np.diff(offsets) >= 0))
        and (ids.shape[0] == 0 or (ids.min() >= 0 and ids.max() < len(terms))) and terms == sorted(terms)
    )
    return RowTerms(terms, ids, offsets) if fits else None


def _segments(offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Positions in the concatenated ids of the given rows' terms, in order."""
    starts = offsets[rows]
    lengths = offsets[rows + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    shift = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return shift + np.arange(total, dtype=np.int64)


def update_row_terms(
    previous: RowTerms, previous_ids: np.ndarray, ids: np.ndarray,
    texts_of: Callable[[np.ndarray], Sequence[str]], settings: BM25Settings,
) -> RowTerms:
    """RowTerms for the rows `ids` (ascending), taking rows that `previous_ids` also has from
    `previous` and analysing only the others (their texts come from texts_of(their ids)).

    Row ids are never reused for other text (SQLite AUTOINCREMENT; an edited file gets new rows).
    """
    pos = np.searchsorted(previous_ids, ids)
    found = pos < previous_ids.shape[0]
    found[found] = previous_ids[pos[found]] == ids[found]
    fresh = analyze_rows(texts_of(ids[~found]), settings)

    # previous.terms is sorted: look the new rows' terms up by bisection, not with a dict of all terms.
    known = previous.terms
    lookup: dict[str, int] = {}
    unseen = []
    for term in {t for r in fresh for t in r}:
        i = bisect.bisect_left(known, term)
        if i < len(known) and known[i] == term:
            lookup[term] = i
        else:
            unseen.append(term)
    unseen.sort()
    lookup.update((t, len(known) + k) for k, t in enumerate(unseen))
    extended = known + unseen if unseen else known
    fresh_ids = np.fromiter((lookup[t] for r in fresh for t in r), dtype=np.int32, count=sum(len(r) for r in fresh))

    lengths = np.zeros(ids.shape[0], dtype=np.int64)
    kept_rows = pos[found]
    lengths[found] = previous.offsets[kept_rows + 1] - previous.offsets[kept_rows]
    lengths[~found] = [len(r) for r in fresh]
    offsets = np.zeros(ids.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.int32)
    out[_segments(offsets, np.flatnonzero(found))] = previous.ids[_segments(previous.offsets, kept_rows)]
    out[_segments(offsets, np.flatnonzero(~found))] = fresh_ids

    # Drop terms no row uses any more and keep the vocabulary sorted (an edit usually changes neither).
    used = np.flatnonzero(np.bincount(out, minlength=len(extended)))
    if not unseen and used.shape[0] == len(known):
        return RowTerms(known, out, offsets)
    names = [extended[i] for i in used]
    order = sorted(range(len(names)), key=names.__getitem__)
    remap = np.full(len(extended), -1, dtype=np.int32)
    remap[used[order]] = np.arange(len(order), dtype=np.int32)
    return RowTerms([names[i] for i in order], remap[out], offsets)


def bm25_arrays(rows: RowTerms, settings: BM25Settings, delta: float = 0.5) -> dict[str, np.ndarray | int | None]:
    """What bm25s.BM25(k1, b, delta, method).index computes for these rows, in its dtypes.

    The formulas are bm25s's own functions (bm25s/scoring.py), applied to arrays instead of
    one row at a time; every step is the same IEEE operation in the same precision, so the
    results are equal bit for bit. IDFs depend only on df, so they are computed per distinct df
    with bm25s's scalar functions (math.log, as bm25s does).
    """
    from bm25s.scoring import _select_idf_scorer, _select_tfc_scorer

    n = rows.n_rows
    n_terms = len(rows.terms)
    lengths = np.diff(rows.offsets)
    avg_doc_len = lengths.mean() if n else np.float64("nan")
    row_of = np.repeat(np.arange(n, dtype=np.int64), lengths)
    pairs, tf = np.unique(rows.ids.astype(np.int64) * max(n, 1) + row_of, return_counts=True)
    cols = pairs // max(n, 1)
    doc = (pairs - cols * max(n, 1)).astype(np.int32)
    df = np.bincount(cols, minlength=n_terms)
    indptr = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])

    idf_fn = _select_idf_scorer(settings.method)
    tfc_fn = _select_tfc_scorer(settings.method)
    distinct, which = np.unique(df, return_inverse=True)
    idf_by_df = [idf_fn(int(d), N=n) if d != 0 else 0.0 for d in distinct]
    idf = np.asarray(idf_by_df, dtype=np.float32)[which]
    tfc = tfc_fn(tf_array=tf.astype(np.float32), l_d=lengths[doc], l_avg=avg_doc_len, k1=settings.k1, b=settings.b, delta=delta)
    scores = idf[cols] * tfc
    nonoccurrence = None
    if settings.method in NONOCCURRENCE_METHODS:
        tfc0 = tfc_fn(tf_array=0, l_d=avg_doc_len, l_avg=avg_doc_len, k1=settings.k1, b=settings.b, delta=delta)
        nonoccurrence = np.asarray([v * tfc0 if d != 0 else 0.0 for d, v in zip(distinct, idf_by_df)], dtype=np.float32)[which]
        scores -= nonoccurrence[cols]
    return {"data": scores.astype(np.float32), "indices": doc, "indptr": indptr, "num_docs": n, "nonoccurrence": nonoccurrence}


def write_bm25(folder: Path, rows: RowTerms, settings: BM25Settings, delta: float = 0.5, vocab_from: Path | None = None) -> None:
    """Write the files bm25s.BM25.save writes (LexicalIndex.load reads them), plus the row terms.

    vocab_from: a folder whose vocabulary is rows.terms (an update that added and dropped no term);
    its vocab file is copied instead of encoded again.
    """
    import bm25s
    from bm25s.utils import json_functions

    arrays = bm25_arrays(rows, settings, delta)
    folder.mkdir(parents=True, exist_ok=True)
    for key in ("data", "indices", "indptr"):
        np.save(folder / f"{key}.csc.index.npy", arrays[key], allow_pickle=False)
    if arrays["nonoccurrence"] is not None:
        np.save(folder / "nonoccurrence_array.index.npy", arrays["nonoccurrence"], allow_pickle=False)
    if vocab_from is not None:
        shutil.copyfile(vocab_from / VOCAB, folder / VOCAB)
    else:
        vocab = {t: i for i, t in enumerate(rows.terms)}
        vocab[""] = len(rows.terms)
        with open(folder / VOCAB, "wt", encoding="utf-8") as fh:
            fh.write(json_functions.dumps(vocab, ensure_ascii=False))
    params = dict(
        k1=settings.k1, b=settings.b, delta=delta, method=settings.method, idf_method=settings.method,
        dtype="float32", int_dtype="int32", num_docs=arrays["num_docs"], version=bm25s.__version__, backend="numpy",
    )
    with open(folder / "params.index.json", "w") as fh:
        json.dump(params, fh, indent=4)
    np.save(folder / TOKENS, rows.ids, allow_pickle=False)
    np.save(folder / TOKEN_ROWS, rows.offsets, allow_pickle=False)
