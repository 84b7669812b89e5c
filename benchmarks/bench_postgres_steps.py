"""Where a PostgreSQL store query's time goes, step by step, at N passages (the data of bench_postgres.py).

    QA_PG_MAINTENANCE_WORK_MEM=3GB python benchmarks/bench_postgres_steps.py --size 1000000

Builds N passages into a throwaway server (fsync off: the build is not what is measured here), waits
for the server to settle, then times each step of bench_postgres.py's query through the seam for 200
SciFact claims, twice (the second pass with the store's cache of scored BM25 terms warm): the vector
search, the BM25 scores, the BM25 top 100, the passage-unit links, the candidates' vector scores, their
BM25 scores and the catalog read. Prints p50/p95 per step in ms.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _common import SCIFACT, percentile  # noqa: E402
from bench_postgres import DIM, QUERIES, build  # noqa: E402
from bench_query_latency import clustered_vectors, scifact_passages  # noqa: E402
from pg_server import start  # noqa: E402

from index.stores import open_store  # noqa: E402

STEPS = ("dense", "bm25_scores", "bm25_top", "links", "vector_scores", "bm25_of_candidates", "catalog", "total")


def measure(url: str, claims: list[str], qvecs: np.ndarray) -> dict[str, list[float]]:
    snapshot = open_store(url).open()
    try:
        times: dict[str, list[float]] = {step: [] for step in STEPS}
        for claim, q in zip(claims, qvecs):
            t = [time.perf_counter()]
            dense = snapshot.vectors.search(q, 100)
            t.append(time.perf_counter())
            lexical = snapshot.passage_lexical.query(claim)
            t.append(time.perf_counter())
            top = lexical.top(100)
            t.append(time.perf_counter())
            units = sorted(set(dense.ids.tolist()))
            passages = sorted({p for ps in snapshot.catalog.passages_of(units) for p in ps} | set(top.ids.tolist()))
            candidates = [u for us in snapshot.catalog.units_of(passages) for u in us]
            t.append(time.perf_counter())
            snapshot.vectors.score(q, candidates)
            t.append(time.perf_counter())
            lexical.score(passages)
            t.append(time.perf_counter())
            snapshot.catalog.passages(passages[:10])
            t.append(time.perf_counter())
            for step, (a, b) in zip(STEPS, zip(t, t[1:])):
                times[step].append((b - a) * 1000)
            times["total"].append((t[-1] - t[0]) * 1000)
        return times
    finally:
        snapshot.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--shared-buffers", default="4GB")
    parser.add_argument("--settle", type=float, default=60.0, help="seconds to wait after the build")
    args = parser.parse_args()
    from qa.beir import load_beir

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, size=(2000, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    server = start(fast=True, settings={"shared_buffers": args.shared_buffers})
    try:
        url = server.create_database("steps")
        build(url, scifact_passages(SCIFACT), clustered_vectors(args.size, DIM, 1, centres))
        time.sleep(args.settle)
        claims = list(load_beir(SCIFACT).queries.values())[:QUERIES]
        qvecs = clustered_vectors(QUERIES, DIM, 2, centres)
        for run in (1, 2):
            times = measure(url, claims, qvecs)
            cells = (f"{s} {percentile(v, 50):.1f}/{percentile(v, 95):.1f}" for s, v in times.items())
            print(f"pass {run}, p50/p95 ms: " + ", ".join(cells), flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
