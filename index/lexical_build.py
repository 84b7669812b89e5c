"""Writes a bm25s index folder with numpy, reusing the postings of unchanged rows.

bm25s is the reference for the format and the scoring: the files written here are the ones
`bm25s.BM25.save` writes, with the numbers its `index` computes (tests/test_lexical_build.py
builds both and compares them byte for byte). bm25s itself loops over rows in Python and
needs every row's terms, so an update that touches one file would re-analyse the whole
corpus. Here each folder also keeps every posting's term count (TERM_FREQS), the row lengths
(TOKEN_ROWS) and the vocabulary as text (TERMS): an update takes the kept rows' postings over,
analyses only new rows, and rescores all postings at once with numpy (the scores depend on
corpus-wide statistics, so every one changes). Folders written before TERM_FREQS keep each
row's term ids instead (TOKENS); they are updated through those once.

The term ids are the columns of vocab.index.json: terms sorted by Python string order, then
bm25s's empty token "" last. Sorting makes a from-scratch build and an incremental one
write the same bytes.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
from pathlib import Path

import numpy as np

from index.files import link_or_copy
from index.lexical import EMPTY_ROW, BM25Settings, analyze

TOKENS = "tokens.npy"
"""Folders written before TERM_FREQS only: int32 term ids of every row, concatenated in row order."""
TOKEN_ROWS = "token_rows.npy"
"""int64 offsets: row i has TOKEN_ROWS[i + 1] - TOKEN_ROWS[i] terms (its BM25 length)."""
TERM_FREQS = "term_freqs.npy"
"""Count of each posting's term in its row (uint16, or int32 if one is larger), in the order of
indices.csc.index.npy: with it an update merges the kept rows' postings instead of counting
every row again."""
VOCAB = "vocab.index.json"
TERMS = "terms.txt"
"""The vocabulary again, one term a line in id order (terms are runs of word characters): much faster to
read than parsing VOCAB as JSON."""
NONOCCURRENCE_METHODS = ("bm25l", "bm25+")

DELTA_REMOVED = "delta_removed.npy"
"""int64, sorted: the base's rows (positions in the base) that the index no longer has."""
DELTA_TERMS = "delta_terms.txt"
"""The delta rows' vocabulary, sorted, one term a line."""
DELTA_TOKENS = "delta_tokens.npy"
"""int32 term ids (lines of DELTA_TERMS) of the delta rows, concatenated in row order."""
DELTA_ROWS = "delta_rows.npy"
"""int64 offsets: delta row i is DELTA_TOKENS[DELTA_ROWS[i]:DELTA_ROWS[i + 1]]."""
DELTA_FILES = (DELTA_REMOVED, DELTA_TERMS, DELTA_TOKENS, DELTA_ROWS)


@dataclass(frozen=True)
class RowTerms:
    """The analysed terms of every row of a BM25 index."""

    terms: list[str]
    """The vocabulary, sorted; a term's id is its position."""
    ids: np.ndarray | None
    """int32 term ids of all rows, concatenated in row order (None after update_postings, which
    keeps postings instead)."""
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
    offsets = _offsets(np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows)))
    ids = np.fromiter((vocab[t] for r in rows for t in r), dtype=np.int32, count=int(offsets[-1]))
    return RowTerms(terms, ids, offsets)


def load_row_terms(folder: Path, n_rows: int) -> RowTerms | None:
    """The row terms saved with an index folder of n_rows rows, or None if it has none or they do
    not fit (then the caller analyses every row again, from the text)."""
    if not (folder / TOKENS).is_file() or not (folder / TOKEN_ROWS).is_file():
        return None
    try:
        terms = _read_terms(folder)
        ids = np.load(folder / TOKENS, allow_pickle=False)
        offsets = np.load(folder / TOKEN_ROWS, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if terms is None:
        return None
    fits = (
        ids.dtype == np.int32
        and offsets.dtype == np.int64
        and offsets.shape == (n_rows + 1,)
        and offsets[0] == 0
        and offsets[-1] == ids.shape[0]
        and bool(np.all(np.diff(offsets) >= 0))
        and (ids.shape[0] == 0 or (ids.min() >= 0 and ids.max() < len(terms)))
        and terms == sorted(terms)
    )
    return RowTerms(terms, ids, offsets) if fits else None


def read_term_lines(path: Path) -> list[str]:
    """Terms written one a line by write_term_lines (an empty file: no terms)."""
    text = path.read_text(encoding="utf-8")
    return text.split("\n") if text else []


def write_term_lines(path: Path, terms: Sequence[str]) -> None:
    """Terms one a line (terms are runs of word characters: no line breaks in them)."""
    path.write_text("\n".join(terms), encoding="utf-8")


def _read_terms(folder: Path) -> list[str] | None:
    """The vocabulary of an index folder in id order, without bm25s's trailing empty token."""
    if (folder / TERMS).is_file():
        return read_term_lines(folder / TERMS)
    vocab: dict[str, int] = json.loads((folder / VOCAB).read_text(encoding="utf-8"))
    terms = [""] * len(vocab)
    for term, i in vocab.items():
        if not 0 <= i < len(terms):
            return None
        terms[i] = term
    if terms and terms[-1] == "":
        terms.pop()
    return terms


def _offsets(lengths) -> np.ndarray:
    """int64 offsets from lengths (row lengths, or postings per term): one more, starting at 0."""
    lengths = np.asarray(lengths, dtype=np.int64)
    offsets = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _kept(previous_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions of ids in previous_ids, which ids previous_ids has): both ascending."""
    pos = np.searchsorted(previous_ids, ids)
    found = pos < previous_ids.shape[0]
    found[found] = previous_ids[pos[found]] == ids[found]
    return pos, found


def kept_rows(previous_ids: np.ndarray, ids: np.ndarray) -> np.ndarray | None:
    """Which of the previous rows the rows `ids` keep (a bool per previous row; both ascending), or
    None when a new id comes before a kept one (never with AUTOINCREMENT ids)."""
    pos, found = _kept(previous_ids, ids)
    n_kept = int(found.sum())
    if not found[:n_kept].all():
        return None
    kept = np.zeros(previous_ids.shape[0], dtype=bool)
    kept[pos[found]] = True
    return kept


def _segments(offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Positions in the concatenated ids of the given rows' terms, in order."""
    starts = offsets[rows]
    lengths = offsets[rows + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    shift = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return shift + np.arange(total, dtype=np.int64)


def _term_ids(known: list[str], rows: list[list[str]]) -> tuple[dict[str, int], list[str]]:
    """Ids of the terms of new rows in a sorted vocabulary (by bisection, not a dict of all terms);
    terms it lacks get ids after it, in sorted order, and are returned as `unseen`."""
    lookup: dict[str, int] = {}
    unseen = []
    for term in {t for r in rows for t in r}:
        i = bisect.bisect_left(known, term)
        if i < len(known) and known[i] == term:
            lookup[term] = i
        else:
            unseen.append(term)
    unseen.sort()
    lookup.update((t, len(known) + k) for k, t in enumerate(unseen))
    return lookup, unseen


def update_row_terms(
    previous: RowTerms,
    previous_ids: np.ndarray,
    ids: np.ndarray,
    texts_of: Callable[[np.ndarray], Sequence[str]],
    settings: BM25Settings,
) -> RowTerms:
    """RowTerms for the rows `ids` (ascending), taking rows that `previous_ids` also has from
    `previous` and analysing only the others (their texts come from texts_of(their ids)).

    Row ids are never reused for other text (SQLite AUTOINCREMENT; an edited file gets new rows).
    """
    pos, found = _kept(previous_ids, ids)
    fresh = analyze_rows(texts_of(ids[~found]), settings)

    known = previous.terms
    lookup, unseen = _term_ids(known, fresh)
    extended = known + unseen if unseen else known
    fresh_ids = np.fromiter((lookup[t] for r in fresh for t in r), dtype=np.int32, count=sum(len(r) for r in fresh))

    lengths = np.zeros(ids.shape[0], dtype=np.int64)
    kept_rows = pos[found]
    lengths[found] = previous.offsets[kept_rows + 1] - previous.offsets[kept_rows]
    lengths[~found] = [len(r) for r in fresh]
    offsets = _offsets(lengths)
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


@dataclass(frozen=True)
class Postings:
    """The (term, row) pairs of a BM25 index, sorted by term then row: the CSC layout bm25s saves."""

    indptr: np.ndarray
    """int64, one more than the terms: term t's postings are [indptr[t], indptr[t + 1])."""
    rows: np.ndarray
    """int32 row of each posting."""
    tf: np.ndarray
    """int32 count of the term in the row."""


def count_postings(rows: RowTerms) -> Postings:
    """Postings of every row, counted with one sort of all (term, row) pairs."""
    n = rows.n_rows
    lengths = np.diff(rows.offsets)
    row_of = np.repeat(np.arange(n, dtype=np.int64), lengths)
    pairs, tf = np.unique(rows.ids.astype(np.int64) * max(n, 1) + row_of, return_counts=True)
    cols = pairs // max(n, 1)
    indptr = _offsets(np.bincount(cols, minlength=len(rows.terms)))
    return Postings(indptr, (pairs - cols * max(n, 1)).astype(np.int32), tf.astype(np.int32))


@dataclass(frozen=True)
class UpdatedRows:
    """The rows of a BM25 index after an update, with their postings."""

    rows: RowTerms
    """Vocabulary and row lengths (ids=None)."""
    postings: Postings
    same_vocab: bool
    """The vocabulary is the previous folder's (its files can be linked)."""


def update_postings(
    folder: Path,
    previous_ids: np.ndarray,
    ids: np.ndarray,
    texts_of: Callable[[np.ndarray], Sequence[str]],
    settings: BM25Settings,
) -> UpdatedRows | None:
    """The rows `ids` (ascending) and their postings, from the index in folder (rows previous_ids):
    postings of kept rows are taken over, renumbered, and merged with those of the new rows, which
    are the only ones analysed (their texts come from texts_of(their ids)). Linear passes over the
    postings, no sort of all (term, row) pairs and no per-row term lists.

    None when the folder has no saved postings (written before TERM_FREQS) or they do not fit,
    or when new rows do not all come after the kept ones (never with AUTOINCREMENT ids).
    A folder with a delta (index/lexical_delta.py) is first folded into one set of postings.
    """
    try:
        base = known = _read_terms(folder)
        previous = load_postings(folder)
        prev_offsets = np.load(folder / TOKEN_ROWS, allow_pickle=False)
        n_base = prev_offsets.shape[0] - 1
        delta = read_delta(folder, n_base)
    except (OSError, ValueError):
        return None
    if known is None or previous is None or not _postings_fit(previous, prev_offsets, n_base, len(known)):
        return None
    if delta is not None:  # the base's remaining rows, then the delta's
        whole = _merge(known, previous, prev_offsets, delta.alive(n_base), delta_term_lists(delta))
        known, previous, prev_offsets = whole.rows.terms, whole.postings, whole.rows.offsets
    if prev_offsets.shape[0] != previous_ids.shape[0] + 1:
        return None
    kept = kept_rows(previous_ids, ids)
    if kept is None:
        return None
    fresh = analyze_rows(texts_of(ids[int(kept.sum()) :]), settings)
    updated = _merge(known, previous, prev_offsets, kept, fresh)
    return UpdatedRows(updated.rows, updated.postings, updated.rows.terms is base)


def _merge(
    known: list[str], previous: Postings, prev_offsets: np.ndarray, kept: np.ndarray, fresh: list[list[str]]
) -> UpdatedRows:
    """The postings of previous's kept rows (renumbered, in order) followed by the fresh rows (their
    terms), over the vocabulary of the terms they use, sorted. same_vocab: it is `known` itself."""
    n_kept = int(kept.sum())
    lookup, unseen = _term_ids(known, fresh)
    n_ext = len(known) + len(unseen)
    fresh_lengths = np.fromiter((len(r) for r in fresh), dtype=np.int64, count=len(fresh))
    fresh_offsets = _offsets(fresh_lengths)
    fresh_ids = np.fromiter((lookup[t] for r in fresh for t in r), dtype=np.int32, count=int(fresh_offsets[-1]))
    added = count_postings(RowTerms([""] * n_ext, fresh_ids, fresh_offsets))

    # Postings of kept rows, per term (postings are grouped by term, rows ascending within one).
    keep = kept[previous.rows]
    counted = _offsets(keep)
    df_kept = np.zeros(n_ext, dtype=np.int64)
    df_kept[: len(known)] = counted[previous.indptr[1:]] - counted[previous.indptr[:-1]]
    df_added = np.diff(added.indptr)
    used = np.flatnonzero(df_kept + df_added)
    terms = known
    added_cols = np.repeat(np.arange(n_ext, dtype=np.int64), df_added)
    added_rows, added_tf = added.rows, added.tf
    if unseen or used.shape[0] != len(known):
        # Drop terms no row uses any more, add the new ones, keep the vocabulary sorted.
        # Both lists are sorted and every unseen term is used (it comes from a new row): merge them
        # by bisection instead of sorting the whole vocabulary again.
        keep_known = np.zeros(len(known), dtype=bool)
        keep_known[used[used < len(known)]] = True
        kept_terms = list(itertools.compress(known, keep_known.tolist()))
        at = [bisect.bisect_left(kept_terms, term) for term in unseen]
        terms, start = [], 0
        for position, term in zip(at, unseen):
            terms.extend(kept_terms[start:position])
            terms.append(term)
            start = position
        terms.extend(kept_terms[start:])
        remap = np.full(n_ext, -1, dtype=np.int64)
        kept_known = np.flatnonzero(keep_known)
        rank = np.arange(kept_known.shape[0], dtype=np.int64)
        unseen_at = np.asarray(at, dtype=np.int64)
        remap[kept_known] = rank + np.searchsorted(unseen_at, rank, side="right")
        remap[len(known) :] = unseen_at + np.arange(len(unseen), dtype=np.int64)
        # Known terms keep their relative order, so kept postings stay grouped by term; only the
        # few new postings are sorted again.
        moved = np.zeros(len(terms), dtype=np.int64)
        moved[remap[used]] = df_kept[used]
        df_kept = moved
        added_cols = remap[added_cols]
        resort = np.lexsort((added_rows, added_cols))
        added_cols, added_rows, added_tf = added_cols[resort], added_rows[resort], added_tf[resort]
        df_added = np.bincount(added_cols, minlength=len(terms))
    else:
        df_kept, df_added = df_kept[: len(known)], df_added[: len(known)]

    new_row = np.cumsum(kept, dtype=np.int32) - 1
    kept_rows = new_row[previous.rows[keep]]
    kept_tf = previous.tf[keep].astype(np.int32)
    indptr = _offsets(df_kept + df_added)
    # A new posting goes after every kept posting of its own and earlier terms (kept rows come
    # first); np.insert keeps equal positions in the given order.
    at = np.cumsum(df_kept)[added_cols]
    postings = Postings(indptr, np.insert(kept_rows, at, added_rows + n_kept), np.insert(kept_tf, at, added_tf))
    offsets = _offsets(np.concatenate([np.diff(prev_offsets)[kept], fresh_lengths]))
    return UpdatedRows(RowTerms(terms, None, offsets), postings, terms is known)


def _postings_fit(p: Postings, offsets: np.ndarray, n_rows: int, n_terms: int) -> bool:
    """Saved postings and row offsets that describe n_rows rows over n_terms terms (else: count again)."""
    return bool(
        p.indptr.shape == (n_terms + 1,)
        and p.indptr[0] == 0
        and p.indptr[-1] == p.rows.shape[0] == p.tf.shape[0]
        and offsets.shape == (n_rows + 1,)
        and offsets[0] == 0
        and offsets[-1] == int(p.tf.sum(dtype=np.int64))
        and (p.rows.shape[0] == 0 or (0 <= int(p.rows.min()) and int(p.rows.max()) < n_rows))
        and bool(np.all(np.diff(p.indptr) >= 0))
    )


def bm25_arrays(
    rows: RowTerms, settings: BM25Settings, delta: float = 0.5, postings: Postings | None = None
) -> dict[str, np.ndarray | int | None]:
    """What bm25s.BM25(k1, b, delta, method).index computes for these rows, in its dtypes.

    The formulas are bm25s's own functions (bm25s/scoring.py), applied to arrays instead of
    one row at a time; every step is the same IEEE operation in the same precision, so the
    results are equal bit for bit. IDFs depend only on df, so they are computed per distinct df
    with bm25s's scalar functions (math.log, as bm25s does). postings: the rows' postings if
    known (update_postings), else they are counted.
    """
    from bm25s.scoring import _select_idf_scorer, _select_tfc_scorer  # deferred: scipy (start-up time)

    n = rows.n_rows
    lengths = np.diff(rows.offsets)
    avg_doc_len = lengths.mean() if n else np.float64("nan")
    postings = postings if postings is not None else count_postings(rows)
    df = np.diff(postings.indptr)
    doc = postings.rows

    idf_fn = _select_idf_scorer(settings.method)
    tfc_fn = _select_tfc_scorer(settings.method)
    distinct, which = np.unique(df, return_inverse=True)
    idf_by_df = [idf_fn(int(d), N=n) if d != 0 else 0.0 for d in distinct]
    idf = np.asarray(idf_by_df, dtype=np.float32)[which]
    tfc = tfc_fn(
        tf_array=postings.tf.astype(np.float32),
        l_d=lengths[doc],
        l_avg=avg_doc_len,
        k1=settings.k1,
        b=settings.b,
        delta=delta,
    )
    scores = np.repeat(idf, df) * tfc  # each posting times its term's idf (postings are grouped by term)
    nonoccurrence = None
    if settings.method in NONOCCURRENCE_METHODS:
        tfc0 = tfc_fn(tf_array=0, l_d=avg_doc_len, l_avg=avg_doc_len, k1=settings.k1, b=settings.b, delta=delta)
        nonoccurrence = np.asarray(
            [v * tfc0 if d != 0 else 0.0 for d, v in zip(distinct, idf_by_df)], dtype=np.float32
        )[which]
        scores -= np.repeat(nonoccurrence, df)
    return {
        "data": scores.astype(np.float32),
        "indices": doc,
        "indptr": postings.indptr,
        "num_docs": n,
        "nonoccurrence": nonoccurrence,
        "tf": postings.tf,
    }


def _vocab_json(terms: list[str], json_functions) -> str:
    """The vocabulary as bm25s writes it ({term: id, ..., "": n}, json.dumps without ensure_ascii),
    written out directly: faster than building the dict and encoding it."""
    if json_functions.ORJSON_AVAILABLE:  # bm25s then writes orjson's compact form
        return json_functions.dumps({**{t: i for i, t in enumerate(terms)}, "": len(terms)}, ensure_ascii=False)
    return "{" + ", ".join([f"{encode_basestring(t)}: {i}" for i, t in enumerate(terms)] + [f'"": {len(terms)}']) + "}"


def load_postings(folder: Path) -> Postings | None:
    """The postings saved in an index folder, or None (an index written before TERM_FREQS)."""
    try:
        return Postings(
            np.load(folder / "indptr.csc.index.npy", allow_pickle=False),
            np.load(folder / "indices.csc.index.npy", allow_pickle=False),
            np.load(folder / TERM_FREQS, allow_pickle=False),
        )
    except (OSError, ValueError):
        return None


def write_bm25(
    folder: Path,
    rows: RowTerms,
    settings: BM25Settings,
    delta: float = 0.5,
    vocab_from: Path | None = None,
    postings: Postings | None = None,
) -> None:
    """Write the files bm25s.BM25.save writes (LexicalIndex.load reads them), plus what an update
    needs: term counts per posting, row lengths and the vocabulary as text.

    vocab_from: a folder whose vocabulary is rows.terms (an update that added and dropped no term);
    its vocabulary files are hard-linked instead of encoded again. postings: the rows' postings
    (update_postings), else they are counted from rows.ids.
    """
    import bm25s  # deferred: bm25s imports scipy (start-up time)
    from bm25s.utils import json_functions  # deferred with bm25s

    arrays = bm25_arrays(rows, settings, delta, postings)
    folder.mkdir(parents=True, exist_ok=True)
    for key in ("data", "indices", "indptr"):
        np.save(folder / f"{key}.csc.index.npy", arrays[key], allow_pickle=False)
    if arrays["nonoccurrence"] is not None:
        np.save(folder / "nonoccurrence_array.index.npy", arrays["nonoccurrence"], allow_pickle=False)
    if vocab_from is not None and (vocab_from / TERMS).is_file():
        link_or_copy(vocab_from / VOCAB, folder / VOCAB)
        link_or_copy(vocab_from / TERMS, folder / TERMS)
    else:
        write_term_lines(folder / TERMS, rows.terms)
        with open(folder / VOCAB, "w", encoding="utf-8") as fh:
            fh.write(_vocab_json(rows.terms, json_functions))
    params = dict(
        k1=settings.k1,
        b=settings.b,
        delta=delta,
        method=settings.method,
        idf_method=settings.method,
        dtype="float32",
        int_dtype="int32",
        num_docs=arrays["num_docs"],
        version=bm25s.__version__,
        backend="numpy",
    )
    with open(folder / "params.index.json", "w") as fh:
        json.dump(params, fh, indent=4)
    np.save(folder / TOKEN_ROWS, rows.offsets, allow_pickle=False)
    tf = arrays["tf"]
    np.save(folder / TERM_FREQS, tf.astype(np.uint16) if not tf.size or tf.max() < 2**16 else tf, allow_pickle=False)


@dataclass(frozen=True)
class Delta:
    """What changed since a BM25 folder's base was written."""

    removed: np.ndarray
    """Sorted base rows that are gone."""
    rows: RowTerms
    """The rows added since, in row order (after the base's remaining rows)."""

    def alive(self, base_rows: int) -> np.ndarray:
        """A bool per base row: not removed."""
        alive = np.ones(base_rows, dtype=bool)
        alive[self.removed] = False
        return alive


def empty_delta() -> Delta:
    return Delta(np.zeros(0, dtype=np.int64), RowTerms([], np.zeros(0, dtype=np.int32), np.zeros(1, dtype=np.int64)))


def has_delta(folder: Path) -> bool:
    return (folder / DELTA_ROWS).is_file()


def read_delta(folder: Path, base_rows: int) -> Delta | None:
    """The folder's delta, None if it has none; ValueError if its files do not describe a delta of a
    base with base_rows rows (a damaged index: never scored from)."""
    if not has_delta(folder):
        return None
    removed = np.load(folder / DELTA_REMOVED, allow_pickle=False)
    ids = np.load(folder / DELTA_TOKENS, allow_pickle=False)
    offsets = np.load(folder / DELTA_ROWS, allow_pickle=False)
    terms = read_term_lines(folder / DELTA_TERMS)
    fits = (
        removed.dtype == np.int64
        and removed.ndim == 1
        and ids.dtype == np.int32
        and offsets.dtype == np.int64
        and offsets.ndim == 1
        and offsets.shape[0] >= 1
        and offsets[0] == 0
        and offsets[-1] == ids.shape[0]
        and bool(np.all(np.diff(offsets) >= 0))
        and (removed.size == 0 or (removed[0] >= 0 and removed[-1] < base_rows and bool(np.all(np.diff(removed) > 0))))
        and (ids.size == 0 or (int(ids.min()) >= 0 and int(ids.max()) < len(terms)))
        and terms == sorted(terms)
    )
    if not fits:
        raise ValueError(f"the BM25 delta in {folder.name} does not fit its base of {base_rows} rows")
    return Delta(removed, RowTerms(terms, ids, offsets))


def delta_term_lists(delta: Delta) -> list[list[str]]:
    """The delta rows' terms, one list per row (to fold the delta into a new base)."""
    terms, ids, offsets = delta.rows.terms, delta.rows.ids.tolist(), delta.rows.offsets.tolist()
    return [[terms[i] for i in ids[offsets[r] : offsets[r + 1]]] for r in range(delta.rows.n_rows)]
