"""Warm query latency and memory at 10k / 100k / 1M chunks, one query at a time.

    python benchmarks/bench_query_latency.py --sizes 10000,100000,1000000 --backend onnx-int8

What is real and what is synthetic (stated in the README too):
- queries: the 300 SciFact test claims, embedded by the real model (the backend given);
- BM25: the product's LexicalIndex over SciFact passages (~100 words each) repeated to N;
- dense: the product's DenseIndex (index/vectors.py picks exact or IVF-PQ by size) over N
  synthetic unit vectors drawn around 2,000 random centres (clustered like real
  embeddings; uniform random vectors have no neighbours worth finding), with queries drawn
  the same way. recall@10 is measured against brute-force exact search.
Each size runs in a fresh subprocess so its peak RSS is its own; the RSS the model alone
takes is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import REPO, SCIFACT, percentile, peak_rss_mb, plot_bars, rss_mb, write_result

CENTRES = 2000
SPREAD = 0.035
"""Per-dimension noise around a centre: about 0.6 cosine to it, like a passage to its topic."""


def clustered_vectors(n: int, dim: int, seed: int, centres: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        block = centres[rng.integers(0, centres.shape[0], m)] + rng.normal(0, SPREAD, size=(m, dim)).astype(np.float32)
        out[start:start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def scifact_passages(dataset: Path, words: int = 100) -> list[str]:
    from qa.beir import load_beir

    passages = []
    for text in load_beir(dataset).corpus.values():
        tokens = text.split()
        passages.extend(" ".join(tokens[i:i + words]) for i in range(0, len(tokens), words))
    return passages


def build(size: int, folder: Path, dataset: Path) -> dict:
    """Write the dense and BM25 indexes for `size` chunks into folder (once; reused if present)."""
    import bm25s

    from index.lexical import BM25Settings, LexicalIndex, analyze
    from index.vectors import build_dense, exact_top

    done = folder / "built.json"
    if done.is_file():
        return json.loads(done.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(CENTRES, 384)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = clustered_vectors(size, 384, 1, centres)
    ids = np.arange(1, size + 1, dtype=np.int64)
    t = time.perf_counter()
    kind = build_dense(vectors, ids, folder)
    dense_s = time.perf_counter() - t
    queries = clustered_vectors(300, 384, 2, centres)
    np.save(folder / "queries.npy", queries, allow_pickle=False)
    np.save(folder / "exact_top10.npy", np.stack(exact_top(vectors, ids, queries, 10)), allow_pickle=False)
    del vectors
    # Analyse each distinct passage once; the repeats share its terms (what a larger corpus of
    # similar text looks like to BM25, term statistics included).
    settings = BM25Settings()
    distinct = [analyze(p, settings) or ["\u2205"] for p in scifact_passages(dataset)]
    corpus = [distinct[i % len(distinct)] for i in range(size)]
    t = time.perf_counter()
    retriever = bm25s.BM25(k1=settings.k1, b=settings.b, method=settings.method)
    retriever.index(corpus, show_progress=False)
    (folder / "bm25").mkdir(exist_ok=True)
    LexicalIndex(retriever, settings).save(folder / "bm25")
    info = {"size": size, "kind": kind, "dense_build_s": round(dense_s, 1), "bm25_build_s": round(time.perf_counter() - t, 1)}
    done.write_text(json.dumps(info))
    return info


def measure(folder: Path, backend: str, dataset: Path, n_queries: int) -> dict:
    """Runs in a fresh process: load model + indexes, then time each query's three steps."""
    from index.embedder import SentenceTransformerEmbedder
    from index.lexical import BM25Settings, LexicalIndex
    from index.vectors import load_dense, recall_at
    from qa.beir import load_beir

    info = json.loads((folder / "built.json").read_text())
    embedder = SentenceTransformerEmbedder(backend)
    embedder.load()
    embedder.embed(["warm up"])
    rss_model = rss_mb()
    dense = load_dense(folder, info["kind"])
    lexical = LexicalIndex.load(folder / "bm25", BM25Settings())
    rss_loaded = rss_mb()
    texts = list(load_beir(dataset).queries.values())[:n_queries]
    qvecs = np.load(folder / "queries.npy", allow_pickle=False)
    exact = np.load(folder / "exact_top10.npy", allow_pickle=False)
    for text in texts[:5]:  # warm caches and lazy init
        embedder.embed([text])
        lexical.scores(text)
        dense.search(qvecs[0], 100)
    steps = {"embed": [], "bm25": [], "dense": [], "total": []}
    found = []
    for i, text in enumerate(texts):
        t0 = time.perf_counter()
        embedder.embed([text])
        t1 = time.perf_counter()
        scores = lexical.scores(text)
        np.argpartition(-scores, min(100, scores.shape[0] - 1))[:100]
        t2 = time.perf_counter()
        ids, _ = dense.search(qvecs[i % qvecs.shape[0]], 100)
        t3 = time.perf_counter()
        found.append(ids[:10])
        for name, value in (("embed", t1 - t0), ("bm25", t2 - t1), ("dense", t3 - t2), ("total", t3 - t0)):
            steps[name].append(value * 1000)
    n = min(len(found), exact.shape[0])
    return {
        **info,
        "backend": backend,
        "nprobe": int(getattr(dense.index, "nprobe", 0)),
        "queries": len(texts),
        **{f"{k}_p50_ms": round(percentile(v, 50), 2) for k, v in steps.items()},
        **{f"{k}_p95_ms": round(percentile(v, 95), 2) for k, v in steps.items()},
        "recall@10_vs_exact": round(recall_at(found[:n], list(exact[:n])), 4),
        "rss_model_mb": round(rss_model),
        "rss_index_mb": round(rss_loaded - rss_model),
        "peak_rss_mb": round(peak_rss_mb()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--backend", default="onnx-int8")
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "qa-bench-latency")
    parser.add_argument("--name", default="query_latency")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.backend, args.dataset, args.queries)))
        return
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        folder = args.work / f"n{size}"
        info = build(size, folder, args.dataset)
        print(f"{size}: built {info}", flush=True)
        out = subprocess.run([sys.executable, __file__, "--measure", str(folder), "--backend", args.backend, "--dataset", str(args.dataset), "--queries", str(args.queries)],
                             check=True, capture_output=True, text=True, cwd=REPO)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"  {row}", flush=True)
    targets = {"10k": "p50 <= 10 ms, p95 <= 25 ms", "1M": "p95 <= 50 ms, recall@10 >= 0.95 of exact, peak RSS <= 0.8 GB"}
    write_result(args.name, {"targets": targets, "rows": rows})
    labels = [f"{r['size']:,} ({r['kind']})" for r in rows]
    plot_bars(args.name, f"Warm query latency, one at a time ({args.backend}; dense part on synthetic vectors)", labels,
              {"p50 ms": [r["total_p50_ms"] for r in rows], "p95 ms": [r["total_p95_ms"] for r in rows]}, "ms")


if __name__ == "__main__":
    main()
