"""Dense vectors of an index: exact FAISS for small corpora, IVF-PQ + exact re-rank from an fp16 file for large ones."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.files import link_or_copy

FLAT_MAX = 100_000
"""Up to this many vectors the index is exact (IndexFlatIP): a flat scan this size stays fast enough per query."""
FAISS_FILE = "vectors.faiss"
F16_FILE = "vectors_f16.npy"
"""Large indexes only: every vector as float16, rows in ascending id order (ids in F16_IDS_FILE)."""
F16_IDS_FILE = "vector_ids.npy"
DELTA_FILE = "vectors_delta.faiss"
"""Flat indexes updated in place of a rewrite: vectors added since the base (vectors.faiss) was written."""
REMOVED_FILE = "vectors_removed.npy"
"""Flat indexes: sorted ids whose vectors are still in the base but no longer in the index."""
DELTA_SHARE = 0.05
"""An update folds delta and removals into a new base once they exceed this share of the base's rows:
until then the base file is hard-linked from generation to generation, never read or rewritten."""
RECALL_TARGET = 0.97
"""nprobe is raised at build time until recall@10 against exact search reaches this on a sample."""
NPROBES = (8, 16, 32, 48, 64, 96, 128, 192, 256)


@dataclass(frozen=True)
class DenseSettings:
    """How a large index is compressed; fixed so builds are reproducible."""

    pq_bytes: int = 64
    """PQ code size per vector (384 dims -> 6 dims per 8-bit sub-quantizer)."""
    rerank: int = 200
    """Candidates taken from IVF-PQ and re-scored exactly from the fp16 vectors."""


def choose_kind(n_vectors: int) -> str:
    """'flat' (exact) up to FLAT_MAX vectors, else 'ivfpq' (approximate, re-ranked exactly)."""
    return "flat" if n_vectors <= FLAT_MAX else "ivfpq"


def n_lists(n_vectors: int) -> int:
    """IVF cells: about 4 * sqrt(n), a power of two, so a probe scans a few hundred codes per cell."""
    return int(2 ** round(math.log2(max(256, 4 * math.sqrt(n_vectors)))))


class DenseIndex:
    """Top-n search and exact scoring of any stored id, whatever the FAISS kind underneath."""

    def __init__(
        self,
        index,
        kind: str,
        folder: Path | None = None,
        ids: np.ndarray | None = None,
        settings: DenseSettings = DenseSettings(),
        delta=None,
        removed: np.ndarray | None = None,
    ) -> None:
        self.index = index
        """The base index (flat), or the whole IVF-PQ index."""
        self.kind = kind
        self.delta = delta
        """Flat only: vectors added since the base was written (or None)."""
        self.removed = removed if removed is not None and removed.size else None
        """Flat only: sorted ids in the base that were removed since (or None)."""
        self._delta_ids = np.sort(faiss_ids(delta)) if delta is not None else np.zeros(0, dtype=np.int64)
        self.settings = settings
        self._ids = ids
        self._f16_path = folder / F16_FILE if folder is not None else None
        self._f16_offset = 0
        self._fd: int | None = None
        if kind == "ivfpq":
            assert folder is not None and ids is not None
            with open(self._f16_path, "rb") as fh:
                version = np.lib.format.read_magic(fh)
                read_header = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(fh)
                self._f16_offset = fh.tell()
            if dtype != np.float16 or fortran or shape != (ids.shape[0], index.d):
                raise ValueError(f"{F16_FILE} holds {shape} {dtype}, expected ({ids.shape[0]}, {index.d}) float16")

    @property
    def ntotal(self) -> int:
        removed = 0 if self.removed is None else self.removed.shape[0]
        return int(self.index.ntotal) - removed + self._delta_ids.shape[0]

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def vectors(self, ids) -> np.ndarray:
        """Stored vectors of ids, float32 (exact for flat; fp16-rounded for large indexes)."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.kind == "flat":
            if self.removed is not None and np.any(np.isin(ids, self.removed)):
                raise KeyError("id not in the vector store")
            in_delta = np.isin(ids, self._delta_ids)
            if not in_delta.any():
                return np.asarray(self.index.reconstruct_batch(ids), dtype=np.float32)
            out = np.empty((ids.shape[0], self.dim), dtype=np.float32)
            out[in_delta] = self.delta.reconstruct_batch(ids[in_delta])
            if not in_delta.all():
                out[~in_delta] = self.index.reconstruct_batch(ids[~in_delta])
            return out
        rows = np.searchsorted(self._ids, ids)
        if np.any(rows >= self._ids.shape[0]) or np.any(self._ids[np.minimum(rows, self._ids.shape[0] - 1)] != ids):
            raise KeyError("id not in the vector store")
        return self._read_rows(rows)

    def _read_rows(self, rows: np.ndarray) -> np.ndarray:
        # pread rather than mmap: pages read this way sit in the OS cache, not in our RSS.
        if self._fd is None:
            self._fd = os.open(self._f16_path, os.O_RDONLY)
        width, fd, offset = self.dim * 2, self._fd, self._f16_offset
        # One bytes join, one frombuffer: cheaper than a frombuffer per row.
        raw = b"".join([os.pread(fd, width, offset + row * width) for row in rows.tolist()])
        return np.frombuffer(raw, dtype=np.float16).reshape(rows.shape[0], self.dim).astype(np.float32)

    def search(self, qvec: np.ndarray, n: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores) of the top-n vectors by inner product, best first; allowed restricts the ids."""
        import faiss  # deferred: faiss is slow to import, and only index and search need it

        n = min(n, self.ntotal)
        if n <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        q = np.ascontiguousarray(qvec, dtype=np.float32).reshape(1, -1)
        if self.kind == "flat":
            return self._search_flat(q, n, allowed)
        if allowed is not None and allowed.shape[0] <= 4 * self.settings.rerank:
            # A filter to a few documents: score them all exactly instead of hoping IVF probes them.
            candidates = np.asarray(allowed, dtype=np.int64)
        else:
            params = (
                faiss.SearchParametersIVF(sel=faiss.IDSelectorBatch(allowed), nprobe=self.index.nprobe)
                if allowed is not None
                else None
            )
            _, ids = self.index.search(q, max(n, self.settings.rerank), params=params)
            candidates = ids[0][ids[0] >= 0]
        exact = self.vectors(candidates) @ q[0]
        order = np.argsort(-exact, kind="stable")[:n]
        return candidates[order], exact[order].astype(np.float32)

    def _search_flat(self, q: np.ndarray, n: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-n over base minus removed plus delta: the same inner products as one index holding
        them all (each score is one vector's dot product); ties keep base rows before delta rows, the
        order remove_ids + add_with_ids on one index would store them in."""
        import faiss  # deferred: faiss is slow to import, and only index and search need it

        selectors = []  # SWIG does not keep a combined selector's parts alive: we do
        if allowed is not None:
            selectors.append(faiss.IDSelectorBatch(allowed))
        if self.removed is not None:
            selectors.append(faiss.IDSelectorBatch(self.removed))
            selectors.append(faiss.IDSelectorNot(selectors[-1]))
            if allowed is not None:
                selectors.append(faiss.IDSelectorAnd(selectors[0], selectors[-1]))
        params = faiss.SearchParameters(sel=selectors[-1]) if selectors else None
        scores, ids = self.index.search(q, min(n, int(self.index.ntotal)), params=params)
        keep = ids[0] >= 0
        found, found_scores = ids[0][keep], scores[0][keep]
        if self.delta is None:
            return found, found_scores
        params = faiss.SearchParameters(sel=selectors[0]) if allowed is not None else None
        d_scores, d_ids = self.delta.search(q, min(n, int(self.delta.ntotal)), params=params)
        keep = d_ids[0] >= 0
        ids_all = np.concatenate([found, d_ids[0][keep]])
        scores_all = np.concatenate([found_scores, d_scores[0][keep]])
        order = np.argsort(-scores_all, kind="stable")[:n]
        return ids_all[order], scores_all[order]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def build_dense(
    vectors: np.ndarray,
    ids: np.ndarray,
    folder: Path,
    kind: str | None = None,
    settings: DenseSettings = DenseSettings(),
    seed: int = 0,
    nlist: int | None = None,
) -> str:
    """Write the dense index for (ids, vectors) into folder; returns the kind chosen."""
    import faiss  # deferred: faiss is slow to import, and only index and search need it

    ids = np.asarray(ids, dtype=np.int64)
    kind = kind or choose_kind(ids.shape[0])
    if kind == "flat":
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        vectors = np.ascontiguousarray(vectors[order], dtype=np.float32)
        # Inner product over L2-normalised vectors is cosine similarity; ids are the SQLite rowids.
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
        if ids.shape[0]:
            index.add_with_ids(vectors, ids)
        faiss.write_index(index, str(folder / FAISS_FILE))
        return kind
    if not np.all(ids[1:] > ids[:-1]):
        order = np.argsort(ids, kind="stable")
        ids, vectors = ids[order], vectors[order]
    # Already in id order (the builder's rowids), vectors are used as given, in RAM or
    # memory-mapped and in any float dtype: no fp32 copy of all of them is made.
    return _build_ivfpq(vectors, ids, folder, settings, seed, nlist)


ADD_BLOCK = 65_536
"""Vectors converted to fp32 and added at a time: bounds a large build's memory to the codes plus one block."""


def _build_ivfpq(vectors, ids: np.ndarray, folder: Path, settings: DenseSettings, seed: int, nlist: int | None) -> str:
    """IVF-PQ over vectors (any float dtype, in RAM or memory-mapped) whose ids ascend."""
    import faiss  # deferred: faiss is slow to import, and only index and search need it

    rng = np.random.default_rng(seed)
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # training is batch work (load_dense sets 1 for queries)
    n, dim = ids.shape[0], vectors.shape[1]
    nlist = nlist or n_lists(n)
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFPQ(quantizer, dim, nlist, settings.pq_bytes, 8, faiss.METRIC_INNER_PRODUCT)
    sample = np.ascontiguousarray(vectors[rng.choice(n, size=min(n, 30 * nlist), replace=False)], dtype=np.float32)
    # k-means converges enough for routing and coding in 10 rounds; more only cost build time
    index.cp.niter = 10
    index.pq.cp.niter = 10
    index.train(sample)
    del sample
    f16 = np.lib.format.open_memmap(folder / F16_FILE, mode="w+", dtype=np.float16, shape=(n, dim))
    for start in range(0, n, ADD_BLOCK):
        block = np.ascontiguousarray(vectors[start : start + ADD_BLOCK], dtype=np.float32)
        index.add_with_ids(block, ids[start : start + ADD_BLOCK])
        f16[start : start + block.shape[0]] = block
    f16.flush()
    del f16
    np.save(folder / F16_IDS_FILE, ids, allow_pickle=False)
    index.nprobe = calibrate_nprobe(index, vectors, folder, ids, settings, rng)
    faiss.write_index(index, str(folder / FAISS_FILE))
    return "ivfpq"


def calibrate_nprobe(
    index, vectors: np.ndarray, folder: Path, ids: np.ndarray, settings: DenseSettings, rng, n_queries: int = 100
) -> int:
    """Smallest nprobe whose re-ranked top-10 overlaps exact search by RECALL_TARGET on held-in queries.

    Queries are stored vectors with noise added, so they sit where real questions land: near
    documents but not on one.
    """
    picks = rng.choice(ids.shape[0], size=min(n_queries, ids.shape[0]), replace=False)
    queries = np.asarray(vectors[picks], dtype=np.float32) + rng.normal(
        0, 0.05, size=(picks.shape[0], vectors.shape[1])
    ).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = exact_top(vectors, ids, queries, 10, block=ADD_BLOCK)
    dense = DenseIndex(index, "ivfpq", folder, ids, settings)
    try:
        for nprobe in NPROBES:
            index.nprobe = nprobe
            found = [dense.search(q, 10)[0] for q in queries]
            if recall_at(found, exact) >= RECALL_TARGET:
                return nprobe
        return NPROBES[-1]
    finally:
        dense.close()


def exact_top(
    vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int, block: int = 200_000
) -> list[np.ndarray]:
    """Brute-force top-k ids per query (the reference for recall), in blocks to bound memory."""
    best_s = np.full((queries.shape[0], k), -np.inf, dtype=np.float32)
    best_i = np.zeros((queries.shape[0], k), dtype=np.int64)
    for start in range(0, vectors.shape[0], block):
        scores = queries @ np.asarray(vectors[start : start + block], dtype=np.float32).T
        top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(scores, top, axis=1)], axis=1)
        cand_i = np.concatenate([best_i, ids[start : start + block][top]], axis=1)
        keep = np.argsort(-cand_s, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(cand_s, keep, axis=1), np.take_along_axis(cand_i, keep, axis=1)
    return list(best_i)


def recall_at(found: list[np.ndarray], exact: list[np.ndarray]) -> float:
    """Mean share of the exact top-k ids that the approximate search also returned."""
    return float(np.mean([len(set(f.tolist()) & set(e.tolist())) / max(1, len(e)) for f, e in zip(found, exact)]))


def update_dense(
    old_folder: Path,
    old_kind: str,
    folder: Path,
    dropped: np.ndarray,
    new_ids: np.ndarray,
    new_vectors: np.ndarray,
    settings: DenseSettings = DenseSettings(),
) -> str:
    """Incremental update: drop ids, add new vectors; switches kind (rebuilding) when the size crosses FLAT_MAX."""
    import faiss  # deferred: faiss is slow to import, and only index and search need it

    dropped = np.asarray(dropped, dtype=np.int64)
    new_ids = np.asarray(new_ids, dtype=np.int64)
    if old_kind == "flat" and _update_flat_delta(old_folder, folder, dropped, new_ids, new_vectors):
        return "flat"
    if old_kind == "flat":
        index = _read_flat_whole(old_folder)
        old_ids = faiss_ids(index)
    else:
        index = faiss.read_index(str(old_folder / FAISS_FILE))
        old_ids = np.load(old_folder / F16_IDS_FILE, allow_pickle=False)
    kept = old_ids[~np.isin(old_ids, dropped)]
    total = kept.shape[0] + new_ids.shape[0]
    # Hysteresis: a large index shrinks back to exact only well below the threshold.
    kind = "flat" if total <= FLAT_MAX and (old_kind == "flat" or total <= FLAT_MAX // 2) else "ivfpq"
    if kind == old_kind == "flat":
        if dropped.size:
            index.remove_ids(dropped)
        if new_ids.size:
            index.add_with_ids(np.ascontiguousarray(new_vectors, dtype=np.float32), new_ids)
        faiss.write_index(index, str(folder / FAISS_FILE))
        return kind
    if old_kind == "flat":
        kept_vectors = (
            np.stack([index.reconstruct(int(i)) for i in kept]) if kept.size else np.zeros((0, index.d), np.float32)
        )
    else:
        stored = np.load(old_folder / F16_FILE, mmap_mode="r", allow_pickle=False)
        kept_vectors = np.asarray(stored[np.flatnonzero(~np.isin(old_ids, dropped))], dtype=np.float32)
    if kind != old_kind:
        all_vectors = np.concatenate([kept_vectors, np.asarray(new_vectors, dtype=np.float32).reshape(-1, index.d)])
        return build_dense(all_vectors, np.concatenate([kept, new_ids]), folder, kind, settings)
    # Same large kind: the trained IVF-PQ stays; only the lists and the fp16 rows change.
    if dropped.size:
        index.remove_ids(dropped)
    if new_ids.size:
        index.add_with_ids(np.ascontiguousarray(new_vectors, dtype=np.float32), new_ids)
    ids = np.concatenate([kept, new_ids])
    order = np.argsort(ids, kind="stable")
    rows = np.concatenate(
        [kept_vectors.astype(np.float16), np.asarray(new_vectors, dtype=np.float16).reshape(-1, index.d)]
    )[order]
    np.save(folder / F16_FILE, rows, allow_pickle=False)
    np.save(folder / F16_IDS_FILE, ids[order], allow_pickle=False)
    faiss.write_index(index, str(folder / FAISS_FILE))
    return kind


def faiss_ids(index) -> np.ndarray:
    """The ids of an IndexIDMap2, in storage order."""
    import faiss  # deferred: faiss is slow to import, and only index and search need it

    return faiss.vector_to_array(index.id_map).astype(np.int64)


def _read_delta(folder: Path):
    """(delta index or None, removed ids) of a flat generation."""
    import faiss  # deferred: faiss is slow to import, and only index and search need it

    delta = faiss.read_index(str(folder / DELTA_FILE)) if (folder / DELTA_FILE).is_file() else None
    removed = (
        np.load(folder / REMOVED_FILE, allow_pickle=False)
        if (folder / REMOVED_FILE).is_file()
        else np.zeros(0, dtype=np.int64)
    )
    return delta, removed


def _read_flat_whole(folder: Path):
    """A flat generation as one index: base minus removed, then the delta's vectors appended."""
    import faiss  # deferred: faiss is slow to import, and only index and search need it

    index = faiss.read_index(str(folder / FAISS_FILE))
    delta, removed = _read_delta(folder)
    if removed.size:
        index.remove_ids(removed)
    if delta is not None and delta.ntotal:
        ids = faiss_ids(delta)
        index.add_with_ids(np.asarray(delta.reconstruct_batch(ids), dtype=np.float32), ids)
    return index


def _update_flat_delta(
    old_folder: Path, folder: Path, dropped: np.ndarray, new_ids: np.ndarray, new_vectors: np.ndarray
) -> bool:
    """Update a flat index without touching its base: link the base, write a new delta and removed
    list. False when the result should be compacted (or change kind) instead."""
    import faiss  # deferred: faiss is slow to import, and only index and search need it

    delta, removed = _read_delta(old_folder)
    delta_ids = faiss_ids(delta) if delta is not None else np.zeros(0, dtype=np.int64)
    from_delta = np.isin(dropped, delta_ids)
    removed = np.union1d(removed, dropped[~from_delta]).astype(np.int64)
    kept = ~np.isin(delta_ids, dropped)
    new_vectors = np.ascontiguousarray(new_vectors, dtype=np.float32)
    dim = new_vectors.shape[1]
    # The base's rows from its size (IndexFlatIP: 4 * dim bytes a vector, IDMap: 8 a id), not by reading it.
    row_bytes = 4 * dim + 8
    base_bytes = (old_folder / FAISS_FILE).stat().st_size
    base_rows = max(1, base_bytes // row_bytes)
    n_delta = int(kept.sum()) + new_ids.shape[0]
    total = base_rows - removed.shape[0] + n_delta
    if n_delta + removed.shape[0] > DELTA_SHARE * base_rows or total > FLAT_MAX:
        return False
    link_or_copy(old_folder / FAISS_FILE, folder / FAISS_FILE)
    if n_delta:
        out = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        if kept.any():
            out.add_with_ids(np.asarray(delta.reconstruct_batch(delta_ids[kept]), dtype=np.float32), delta_ids[kept])
        if new_ids.size:
            out.add_with_ids(new_vectors, new_ids)
        faiss.write_index(out, str(folder / DELTA_FILE))
    if removed.size:
        np.save(folder / REMOVED_FILE, removed, allow_pickle=False)
    return True


def load_dense(folder: Path, kind: str, settings: DenseSettings = DenseSettings()) -> DenseIndex:
    """Open a generation's dense index (raises RuntimeError/ValueError/OSError when damaged)."""
    import faiss  # deferred: faiss is slow to import, and only index and search need it

    # Queries come one at a time: a second OpenMP thread only adds hand-off cost.
    faiss.omp_set_num_threads(1)
    index = faiss.read_index(str(folder / FAISS_FILE))
    if kind == "flat":
        delta, removed = _read_delta(folder)
        return DenseIndex(index, kind, delta=delta, removed=removed)
    ids = np.load(folder / F16_IDS_FILE, allow_pickle=False)
    return DenseIndex(index, kind, folder, ids, settings)
