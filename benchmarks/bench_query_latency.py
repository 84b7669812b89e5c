"""Warm query latency and memory at 10k / 100k / 1M chunks, one query at a time.

    python benchmarks/bench_query_latency.py --sizes 10000,100000,1000000 --backend onnx-int8
    python benchmarks/bench_query_latency.py --sizes 10000,1000000 --repeat 3 --name query_latency_1m

What is real and what is synthetic (stated in docs/benchmarks.md too):
- queries: the 300 SciFact test claims, embedded by the real model (the backend given);
- BM25: the product's LexicalIndex over SciFact passages (~100 words each) repeated to N;
- dense: the product's DenseIndex (index/vectors.py picks exact or IVF-PQ by size) over N
  synthetic unit vectors drawn around 2,000 random centres (clustered like real
  embeddings; uniform random vectors have no neighbours worth finding), with queries drawn
  the same way. recall@10 is measured against brute-force exact search.
Each size runs in a fresh subprocess so its peak RSS is its own; the RSS the model alone
takes is reported beside it.

What one query's time covers (measure()), through the store seam (index/stores/base.py) as the
engine asks it, on the embedded store's vector and lexical stores: embed + the lexical store's top
100 (BM25 of all N rows) + the vector store's top 100 + fusion (union, the vector store's exact
scores of all candidates, the lexical store's scores of them, convex min-max fusion). Not catalog
look-ups, the answer sentence, or the second (sentence) BM25 index qa/retrieve.py also asks.

At 1M the build keeps its memory bounded: vectors are generated as float16 into a
memory-mapped file (not one fp32 array), build_dense adds them in blocks, the exact top-10
is computed in 50k blocks, and the BM25 index is computed from the distinct passages
(repeated_bm25, bit-identical to bm25s indexing the repeats; bm25s itself builds Python lists
of all 62M token ids at 1M, an estimated 1.5-2 GB). Built indexes are reused from --work.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import REPO, SCIFACT, peak_rss_mb, percentile, plot_bars, rss_mb, write_result

CENTRES = 2000
SPREAD = 0.035
"""Per-dimension noise around a centre: about 0.6 cosine to it, like a passage to its topic."""


def clustered_vectors(n: int, dim: int, seed: int, centres: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        block = centres[rng.integers(0, centres.shape[0], m)] + rng.normal(0, SPREAD, size=(m, dim)).astype(np.float32)
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def scifact_passages(dataset: Path, words: int = 100) -> list[str]:
    from qa.beir import load_beir

    passages = []
    for text in load_beir(dataset).corpus.values():
        tokens = text.split()
        passages.extend(" ".join(tokens[i : i + words]) for i in range(0, len(tokens), words))
    return passages


def write_vectors(path: Path, n: int, dim: int, seed: int, centres: np.ndarray) -> np.ndarray:
    """clustered_vectors(n) rounded to float16, written block by block to a .npy and memory-mapped.

    At 1M x 384 the fp32 array alone would be 1.5 GB; this keeps the build to one 100k block.
    The fp16 values are the data set: indexed, and the reference of the exact search.
    """
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n, dim))
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        block = centres[rng.integers(0, centres.shape[0], m)] + rng.normal(0, SPREAD, size=(m, dim)).astype(np.float32)
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


def repeated_bm25(distinct: list[list[str]], size: int, settings):
    """The bm25s index that `bm25s.BM25(...).index([distinct[i % D] for i in range(size)])` builds.

    Built from the D distinct passages instead of the `size` repeats: document i repeats passage
    i % D, so its column entries, term frequencies and length are those of the passage, and only
    df (summed over the repeats), the idf and the mean length depend on `size`. Same formulas and
    dtypes as bm25s 0.3 (checked equal, scores of all 300 queries, at 30k: `--check-bm25`); bm25s
    itself builds Python lists of all 1M x 62 token ids (an estimated 1.5-2 GB).
    """
    from collections import Counter

    import bm25s
    from bm25s.scoring import _select_idf_scorer, _select_tfc_scorer

    retriever = bm25s.BM25(k1=settings.k1, b=settings.b, method=settings.method)
    if retriever.method in retriever.methods_requiring_nonoccurrence:
        raise ValueError("repeated_bm25 covers the lucene/robertson/atire methods only")
    d = min(len(distinct), size)
    distinct = distinct[:d]
    unique = bm25s.get_unique_tokens(distinct, show_progress=False)
    vocab = {token: i for i, token in enumerate(unique)}
    n_vocab = len(vocab)
    repeats = np.array([(size - j + d - 1) // d for j in range(d)], dtype=np.int64)  # copies of passage j
    lengths = np.array([len(t) for t in distinct], dtype=np.int64)
    avg_len = np.float64(int((repeats * lengths).sum()) / size)  # == np.mean over all `size` lengths
    rows, cols, tfs = [], [], []
    for j, tokens in enumerate(distinct):
        counts = Counter(vocab[t] for t in tokens)
        rows.append(np.full(len(counts), j, dtype=np.int64))
        cols.append(np.fromiter(counts.keys(), dtype=np.int32, count=len(counts)))
        tfs.append(np.fromiter(counts.values(), dtype=np.float32, count=len(counts)))
    df = np.bincount(
        np.concatenate(cols), weights=np.repeat(repeats, [c.shape[0] for c in cols]), minlength=n_vocab
    ).astype(np.int64)
    idf_fn, tfc_fn = _select_idf_scorer(retriever.idf_method), _select_tfc_scorer(retriever.method)
    idf = np.zeros(n_vocab, dtype=retriever.dtype)
    for t in np.flatnonzero(df):
        idf[t] = idf_fn(int(df[t]), N=size)
    vals = []
    for j in range(d):
        tfc = tfc_fn(
            tf_array=tfs[j], l_d=int(lengths[j]), l_avg=avg_len, k1=retriever.k1, b=retriever.b, delta=retriever.delta
        )
        vals.append((idf[cols[j]] * tfc).astype(retriever.dtype))
    rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    order = np.lexsort((rows, cols))  # CSC over (document, term): by term, then document
    rows, cols, vals = rows[order], cols[order], vals[order]
    bounds = np.searchsorted(cols, np.arange(n_vocab + 1))
    nnz = int(df.sum())
    data = np.empty(nnz, dtype=retriever.dtype)
    indices = np.empty(nnz, dtype=retriever.int_dtype)
    indptr = np.zeros(n_vocab + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    full, rest = divmod(size, d)
    for t in range(n_vocab):
        r, v = rows[bounds[t] : bounds[t + 1]], vals[bounds[t] : bounds[t + 1]]
        tail = r < rest
        at = indptr[t]
        k = r.shape[0]
        if full:
            indices[at : at + full * k] = (r[None, :] + d * np.arange(full)[:, None]).ravel()
            data[at : at + full * k] = np.tile(v, full)
            at += full * k
        indices[at : at + int(tail.sum())] = r[tail] + d * full
        data[at : at + int(tail.sum())] = v[tail]
        assert at + int(tail.sum()) == indptr[t + 1]
    vocab[""] = n_vocab  # bm25s.index(create_empty_token=True)
    retriever.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": size}
    retriever.vocab_dict = vocab
    retriever.unique_token_ids_set = set(vocab.values())
    retriever.nonoccurrence_array = None
    return retriever


def distinct_terms(dataset: Path, settings) -> list[list[str]]:
    """Each distinct passage analysed once; the repeats share its terms (what a larger corpus of
    similar text looks like to BM25, term statistics included)."""
    from index.lexical import analyze

    return [analyze(p, settings) or ["\u2205"] for p in scifact_passages(dataset)]


def build(size: int, folder: Path, dataset: Path) -> dict:
    """Write the dense and BM25 indexes for `size` chunks into folder (once; reused if present)."""
    from index.lexical import BM25Settings, LexicalIndex
    from index.vectors import build_dense, exact_top

    done = folder / "built.json"
    if done.is_file():
        return json.loads(done.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(CENTRES, 384)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    source = folder / "source_f16.npy"
    vectors = write_vectors(source, size, 384, 1, centres)
    ids = np.arange(1, size + 1, dtype=np.int64)
    t = time.perf_counter()
    kind = build_dense(vectors, ids, folder)
    dense_s = time.perf_counter() - t
    print(f"{size}: dense {kind} built in {dense_s:.0f} s", flush=True)
    queries = clustered_vectors(300, 384, 2, centres)
    np.save(folder / "queries.npy", queries, allow_pickle=False)
    t = time.perf_counter()
    np.save(
        folder / "exact_top10.npy", np.stack(exact_top(vectors, ids, queries, 10, block=50_000)), allow_pickle=False
    )
    exact_s = time.perf_counter() - t
    del vectors
    source.unlink()
    settings = BM25Settings()
    t = time.perf_counter()
    retriever = repeated_bm25(distinct_terms(dataset, settings), size, settings)
    (folder / "bm25").mkdir(exist_ok=True)
    LexicalIndex(retriever, settings).save(folder / "bm25")
    info = {
        "size": size,
        "kind": kind,
        "dense_build_s": round(dense_s, 1),
        "exact_top10_s": round(exact_s, 1),
        "bm25_build_s": round(time.perf_counter() - t, 1),
        "bm25_nnz": int(retriever.scores["data"].shape[0]),
    }
    done.write_text(json.dumps(info))
    return info


def check_bm25(size: int, dataset: Path, n_queries: int) -> None:
    """repeated_bm25 against bm25s indexing the repeated corpus itself: same scores, bit for bit."""
    import bm25s

    from index.lexical import BM25Settings, LexicalIndex
    from qa.beir import load_beir

    settings = BM25Settings()
    distinct = distinct_terms(dataset, settings)
    t = time.perf_counter()
    ours = LexicalIndex(repeated_bm25(distinct, size, settings), settings)
    ours_s = time.perf_counter() - t
    t = time.perf_counter()
    reference = bm25s.BM25(k1=settings.k1, b=settings.b, method=settings.method)
    reference.index([distinct[i % len(distinct)] for i in range(size)], show_progress=False)
    ref_s = time.perf_counter() - t
    reference = LexicalIndex(reference, settings)
    assert ours._retriever.scores["data"].dtype == reference._retriever.scores["data"].dtype
    assert ours._retriever.scores["indices"].dtype == reference._retriever.scores["indices"].dtype
    assert ours._retriever.scores["data"].shape == reference._retriever.scores["data"].shape
    assert set(ours._retriever.vocab_dict) == set(reference._retriever.vocab_dict)
    texts = list(load_beir(dataset).queries.values())[:n_queries]
    same = sum(np.array_equal(ours.scores(q), reference.scores(q)) for q in texts)
    close = sum(np.allclose(ours.scores(q), reference.scores(q), rtol=1e-6, atol=0) for q in texts)
    print(
        json.dumps(
            {
                "size": size,
                "queries": len(texts),
                "bit_equal": int(same),
                "allclose": int(close),
                "repeated_bm25_s": round(ours_s, 1),
                "bm25s_index_s": round(ref_s, 1),
            }
        )
    )


def bm25s_mmap(folder: Path):
    import bm25s

    return bm25s.BM25.load(str(folder), allow_pickle=False, show_progress=False, mmap=True)


def measure(folder: Path, backend: str, dataset: Path, n_queries: int, bm25_mmap: bool = False) -> dict:
    """Runs in a fresh process: load model + indexes, then time each query's four steps.

    embed: the real model on the SciFact claim; bm25: the lexical store's top 100 (BM25 of all N
    rows, the product's partial sort); dense: the vector store's top 100 (synthetic query vector);
    fusion: the union of both top-100 lists, the vector store's score of every candidate (fp16
    rows via pread above 100k), the lexical store's scores of them, min-max convex fusion
    (qa/fusion.py) and the final order. Not included: catalog look-ups and the answer sentence.
    """
    from index.embedder import SentenceTransformerEmbedder
    from index.lexical import BM25Settings, LexicalIndex
    from index.lexical_column import load_lexical
    from index.stores.embedded import Bm25Lexical, FaissVectors
    from index.vectors import load_dense, recall_at
    from qa.beir import load_beir
    from qa.fusion import fuse

    info = json.loads((folder / "built.json").read_text())
    embedder = SentenceTransformerEmbedder(backend)
    embedder.load()
    embedder.embed(["warm up"])
    rss_model = rss_mb()
    dense = FaissVectors(load_dense(folder, info["kind"]))
    if bm25_mmap:  # the product's class and scoring; only the arrays are memory-mapped
        bm25 = LexicalIndex(bm25s_mmap(folder / "bm25"), BM25Settings())
    else:
        bm25 = load_lexical(folder / "bm25", BM25Settings())
    lexical = Bm25Lexical(bm25, np.arange(1, info["size"] + 1, dtype=np.int64))  # row p is chunk id p + 1
    rss_loaded = rss_mb()
    texts = list(load_beir(dataset).queries.values())[:n_queries]
    qvecs = np.load(folder / "queries.npy", allow_pickle=False)
    exact = np.load(folder / "exact_top10.npy", allow_pickle=False)
    for text in texts[:5]:  # warm caches and lazy init
        embedder.embed([text])
        lexical.query(text).top(100)
        dense.search(qvecs[0], 100)
    steps = {"embed": [], "bm25": [], "dense": [], "fusion": [], "total": []}
    found = []
    load_before = os.getloadavg()[0]
    for i, text in enumerate(texts):
        qvec = qvecs[i % qvecs.shape[0]]
        t0 = time.perf_counter()
        embedder.embed([text])
        t1 = time.perf_counter()
        query = lexical.query(text)
        bm25_ids = query.top(100).ids
        t2 = time.perf_counter()
        ids = dense.search(qvec, 100).ids
        t3 = time.perf_counter()
        pool = np.unique(np.concatenate([ids, bm25_ids]))
        d = dense.score(qvec, pool)
        b = np.maximum(query.score(pool), 0.0)
        ranked = pool[np.argsort(-fuse(d, b, "convex", alpha=0.5), kind="stable")][:10]
        t4 = time.perf_counter()
        found.append(ids[:10])
        for name, value in (
            ("embed", t1 - t0),
            ("bm25", t2 - t1),
            ("dense", t3 - t2),
            ("fusion", t4 - t3),
            ("total", t4 - t0),
        ):
            steps[name].append(value * 1000)
    assert ranked.shape[0] > 0
    n = min(len(found), exact.shape[0])
    return {
        **info,
        "backend": backend,
        "bm25": "LexicalIndex, memory-mapped"
        if bm25_mmap
        else "load_lexical (the product: columns read with pread, index/lexical_column.py ColumnLexical)",
        "nprobe": int(getattr(dense.dense.index, "nprobe", 0)),
        "rerank": dense.dense.settings.rerank if info["kind"] == "ivfpq" else 0,
        "queries": len(texts),
        **{f"{k}_p50_ms": round(percentile(v, 50), 2) for k, v in steps.items()},
        **{f"{k}_p95_ms": round(percentile(v, 95), 2) for k, v in steps.items()},
        "recall@10_vs_exact": round(recall_at(found[:n], list(exact[:n])), 4),
        "rss_model_mb": round(rss_model),
        "rss_index_mb": round(rss_loaded - rss_model),
        "rss_after_queries_mb": round(rss_mb()),
        "peak_rss_mb": round(peak_rss_mb()),
        "load_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--backend", default="onnx-int8")
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "qa-bench-latency")
    parser.add_argument("--name", default="query_latency")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each size this many times (fresh process each; the machine is shared)",
    )
    parser.add_argument("--bm25-mmap", action="store_true", help="memory-map the BM25 arrays instead of loading them")
    parser.add_argument(
        "--check-bm25", type=int, metavar="N", help="only compare repeated_bm25 with bm25s.index at N chunks"
    )
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.check_bm25:
        check_bm25(args.check_bm25, args.dataset, args.queries)
        return
    if args.measure:
        print(json.dumps(measure(args.measure, args.backend, args.dataset, args.queries, args.bm25_mmap)))
        return
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        folder = args.work / f"n{size}"
        info = build(size, folder, args.dataset)
        print(f"{size}: built {info}", flush=True)
        for run in range(args.repeat):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--measure",
                    str(folder),
                    "--backend",
                    args.backend,
                    "--dataset",
                    str(args.dataset),
                    "--queries",
                    str(args.queries),
                ]
                + (["--bm25-mmap"] if args.bm25_mmap else []),
                check=True,
                capture_output=True,
                text=True,
                cwd=REPO,
            )
            row = {**json.loads(out.stdout.strip().splitlines()[-1]), "run": run + 1}
            rows.append(row)
            print(f"  {row}", flush=True)
    targets = {
        "10k": "p50 <= 10 ms, p95 <= 25 ms",
        "1M": "p95 <= 50 ms, recall@10 >= 0.95 of exact, peak RSS <= 0.8 GB",
    }
    write_result(args.name, {"targets": targets, "rows": rows})
    plot(args.name, rows, args.backend, args.repeat, " (BM25 memory-mapped)" if args.bm25_mmap else "")


def plot(name: str, rows: list[dict], backend: str, repeat: int, variant: str = "") -> None:
    def short(n: int) -> str:
        return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else f"{n:,}"

    labels = [f"{short(r['size'])} {r['kind']}" + (f" #{r['run']}" if repeat > 1 else "") for r in rows]
    plot_bars(
        name,
        f"Warm query latency, one at a time ({backend}; dense part on synthetic vectors){variant}",
        labels,
        {"p50 ms": [r["total_p50_ms"] for r in rows], "p95 ms": [r["total_p95_ms"] for r in rows]},
        "ms",
    )


if __name__ == "__main__":
    main()
