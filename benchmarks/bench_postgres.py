"""The PostgreSQL + pgvector store beside the embedded store at N passages: build, recall, latency, size.

    nice -n 19 python benchmarks/bench_postgres.py --sizes 100000

What is real and what is synthetic:
- documents: SciFact passages (~100 words, benchmarks/bench_query_latency.py scifact_passages) repeated
  to N, one document per passage, each passage one sentence unit (a real corpus has ~3-5 units per
  passage: the vector table and HNSW index are then that much larger than here);
- vectors: synthetic, drawn around 2,000 random centres (bench_query_latency.py clustered_vectors),
  queries drawn the same way; the real model is not run (embedding time is the same for both stores);
- BM25 queries: the SciFact test claims, through each store's own BM25 (postings in segments, scored in
  numpy, vs bm25s arrays read column by column).
Both stores are written through the same StoreUpdate calls the builder makes and read through the same
Snapshot calls the engine makes (index/stores/base.py). The PostgreSQL server is the throwaway one of
tests/pg_server.py (fsync on, shared_buffers from --shared-buffers; the HNSW build's maintenance_work_mem
from QA_PG_MAINTENANCE_WORK_MEM), on the same 2-core machine.

One query (end to end through the seam, without the model): the passage BM25 top 100, the vector
top 100 and the scores of the union (vector score of every candidate unit, BM25 score of every
candidate passage), as qa/retrieve.py asks them, plus the catalog read of the top 10 passages.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _common import SCIFACT, percentile, plot_bars, write_result  # noqa: E402
from bench_query_latency import clustered_vectors, scifact_passages  # noqa: E402

from index.chunker import Chunk, ChunkSettings, Segmentation, Unit  # noqa: E402
from index.lexical import BM25Settings  # noqa: E402
from index.manifest import BuildInfo  # noqa: E402
from index.readers import Document  # noqa: E402
from index.stores import open_store  # noqa: E402

DIM = 384
QUERIES = 200


def _document(name: str, text: str):
    seg = Segmentation([Unit(0, len(text), 100)], [Chunk(0, 0, len(text), 1, 1, 100, text)], [[0]])
    return Document(name, Path(f"/corpus/{name}"), text, hashlib.sha256(text.encode()).hexdigest(), "utf-8"), seg


def _documents(passages: list[str], n: int):
    for i in range(n):
        yield _document(f"doc{i:08d}.txt", passages[i % len(passages)])


def _info() -> BuildInfo:
    return BuildInfo(
        model="synthetic", model_fingerprint="synthetic", dim=DIM, backend="none",
        chunking=asdict(ChunkSettings()), bm25=asdict(BM25Settings()), roots=["/corpus"], root="/corpus",
    )  # fmt: skip


def build(location: str, passages: list[str], vectors: np.ndarray) -> dict:
    """Write N documents with their vectors through StoreUpdate; seconds per step."""
    store = open_store(location)
    t0 = time.perf_counter()
    with store.update() as update:
        update.start(False, BM25Settings())
        catalog = update.catalog()
        unit_ids: list[int] = []
        n = vectors.shape[0]
        for i, (doc, seg) in enumerate(_documents(passages, n)):
            unit_ids.extend(catalog.add_document(doc, seg, 0.0).unit_ids)
            if (i + 1) % max(1, n // 10) == 0:  # how far a long build got, if it has to be stopped
                print(
                    f"  {location[:12]}: {i + 1} documents, {time.perf_counter() - t0:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
        update.texts_written()
        t_catalog = time.perf_counter() - t0
        update.add_vectors(np.asarray(unit_ids, dtype=np.int64), vectors)
        update.finish(_info())
        update.commit()
    return {"build_s": time.perf_counter() - t0, "catalog_and_bm25_s": t_catalog, "timings": update.timings}


UPDATED = 10
"""Documents one incremental update replaces (a team's edit: a few files changed)."""


def update_figures(location: str, passages: list[str], vectors: np.ndarray, rounds: int = 3) -> dict:
    """Seconds for an incremental update that replaces UPDATED documents with new text (their vectors
    unchanged), as the builder does it (delete, add, vectors, finish, commit), `rounds` times."""
    seconds = []
    for r in range(rounds):
        t = time.perf_counter()
        with open_store(location).update() as update:
            update.start(True, BM25Settings())
            old = [f"doc{(r * UPDATED + i):08d}.txt" for i in range(UPDATED)]
            with update.read_previous() as previous:
                doc_ids = list(previous.document_ids(old).values())
            catalog = update.catalog()
            catalog.delete_documents(doc_ids)
            unit_ids: list[int] = []
            for i in range(UPDATED):
                text = f"Revised {r}: " + passages[(7 * (r * UPDATED + i)) % len(passages)]
                unit_ids.extend(catalog.add_document(*_document(f"new{r}_{i}.txt", text), 0.0).unit_ids)
            update.texts_written()
            update.add_vectors(np.asarray(unit_ids, dtype=np.int64), vectors[r * UPDATED : r * UPDATED + len(unit_ids)])
            update.finish(_info())
            update.commit()
        seconds.append(time.perf_counter() - t)
    return {"documents_replaced": UPDATED, "seconds": seconds}


def query_figures(location: str, claims: list[str], qvecs: np.ndarray, exact: list[set[int]], ef: int | None) -> dict:
    from index.stores import postgres

    default_ef = postgres.EF_SEARCH
    if ef is not None:
        postgres.EF_SEARCH = ef
    snapshot = open_store(location).open()
    snapshot.warm()
    try:
        recalls, times = [], []
        for i, (claim, q) in enumerate(zip(claims, qvecs)):
            t = time.perf_counter()
            dense = snapshot.vectors.search(q, 100)
            lexical = snapshot.passage_lexical.query(claim)
            top = lexical.top(100)
            units = sorted(set(dense.ids.tolist()))
            passages = sorted({p for ps in snapshot.catalog.passages_of(units) for p in ps} | set(top.ids.tolist()))
            snapshot.vectors.score(q, [u for us in snapshot.catalog.units_of(passages) for u in us])
            lexical.score(passages)
            snapshot.catalog.passages(passages[:10])
            times.append(time.perf_counter() - t)
            if i < len(exact):
                recalls.append(len(set(dense.ids[:10].tolist()) & exact[i]) / 10)
        return {
            "ef_search": ef,
            "recall_at_10": float(np.mean(recalls)) if recalls else None,
            "query_p50_ms": percentile(times, 50) * 1000,
            "query_p95_ms": percentile(times, 95) * 1000,
        }
    finally:
        snapshot.close()
        postgres.EF_SEARCH = default_ef


def pg_sizes(url: str) -> dict:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'qa' AND c.relkind = 'r'"
        ).fetchall()
        hnsw = conn.execute("SELECT pg_relation_size('qa.unit_vectors_hnsw')").fetchone()[0]
    tables = {name: size / 1e6 for name, size in rows}
    return {"tables_mb": tables, "total_mb": sum(tables.values()), "hnsw_mb": hnsw / 1e6}


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def run(n: int, server, work: Path, efs: list[int], scifact: Path) -> dict:
    passages = scifact_passages(scifact)
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, size=(2000, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = clustered_vectors(n, DIM, 1, centres)
    qvecs = clustered_vectors(QUERIES, DIM, 2, centres)
    from qa.beir import load_beir

    claims = list(load_beir(scifact).queries.values())[:QUERIES]
    # exact top 10 by unit id (ids are given in order from 1 in both stores: row i has id i + 1)
    exact = [set((np.argsort(-(vectors @ q), kind="stable")[:10] + 1).tolist()) for q in qvecs[:100]]

    url = server.create_database(f"bench_{n}")
    out: dict = {"n_passages": n, "n_units": n, "load_average_at_start": os.getloadavg()}
    print(f"{n}: building PostgreSQL", file=sys.stderr, flush=True)
    out["postgres"] = {"build": build(url, passages, vectors), "size": pg_sizes(url)}
    out["postgres"]["queries"] = [query_figures(url, claims, qvecs, exact, ef) for ef in efs]
    out["postgres"]["update"] = update_figures(url, passages, vectors)
    # after the updates, whose removed rows are hidden at query time (no recall: the replaced ids are gone)
    out["postgres"]["queries_after_update"] = query_figures(url, claims, qvecs, [], None)
    folder = work / f"embedded_{n}"
    print(f"{n}: building embedded", file=sys.stderr, flush=True)
    out["embedded"] = {"build": build(str(folder), passages, vectors), "size": {"total_mb": folder_mb(folder)}}
    out["embedded"]["queries"] = [query_figures(str(folder), claims, qvecs, exact, None)]
    out["embedded"]["update"] = update_figures(str(folder), passages, vectors)
    out["embedded"]["queries_after_update"] = query_figures(str(folder), claims, qvecs, [], None)
    out["load_average_at_end"] = os.getloadavg()  # 1, 5, 15 min: how loaded the 2-core machine was
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--ef", default="100,200,400", help="HNSW ef_search values (below k=100 the store uses 100)")
    parser.add_argument("--name", default="postgres")
    parser.add_argument("--scifact", type=Path, default=SCIFACT, help="the BEIR SciFact folder")
    parser.add_argument("--shared-buffers", default="4GB", help="the server's shared_buffers")
    args = parser.parse_args()
    from pg_server import start

    # fsync on: build times as a real server's; shared_buffers to hold the HNSW index, as docs/scale.md advises
    server = start(fast=False, settings={"shared_buffers": args.shared_buffers})
    try:
        with tempfile.TemporaryDirectory(prefix="qa-bench-pg-") as work:
            results = []
            for n in args.sizes.split(","):
                results.append(run(int(n), server, Path(work), [int(e) for e in args.ef.split(",")], args.scifact))
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)  # a long run's sizes, as they end
    finally:
        server.stop()
    print(json.dumps(results, indent=1))
    write_result(args.name, {"server_start_s": server.seconds_to_start, "runs": results})
    plot(args.name, results)


def plot(name: str, results: list[dict]) -> None:
    """docs/img/<name>.png: query p50/p95 of both stores per size (PostgreSQL at the store's ef_search), titled
    with the machine's load."""
    from index.stores.postgres import EF_SEARCH

    labels, pg_p50, pg_p95, emb_p50, emb_p95 = [], [], [], [], []
    for r in results:
        chosen = next(q for q in r["postgres"]["queries"] if q["ef_search"] == EF_SEARCH)
        labels.append(f"{r['n_passages'] // 1000}k passages")
        pg_p50.append(chosen["query_p50_ms"])
        pg_p95.append(chosen["query_p95_ms"])
        emb_p50.append(r["embedded"]["queries"][0]["query_p50_ms"])
        emb_p95.append(r["embedded"]["queries"][0]["query_p95_ms"])
    loads = [f"{r['load_average_at_start'][0]:.1f}-{r['load_average_at_end'][0]:.1f}" for r in results]
    plot_bars(
        name,
        f"Query time through the store seam, ms (ef_search {EF_SEARCH})\n"
        f"2-core machine, load average {', '.join(loads)}",
        labels,
        {"PostgreSQL p50": pg_p50, "PostgreSQL p95": pg_p95, "embedded p50": emb_p50, "embedded p95": emb_p95},
        "ms",
    )


if __name__ == "__main__":
    main()
