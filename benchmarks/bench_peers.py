"""Against peers, same model and corpus, one run: qa vs txtai (dense, hybrid) and LlamaIndex over FAISS.

    python benchmarks/bench_peers.py --dataset ../shared/datasets/scifact --peer-python /tmp/peers-venv/bin/python

Every system runs in its own subprocess (so peak RSS is its own) over the same SciFact
.txt files and the same local all-MiniLM-L6-v2 folder. Each worker reports: build time
(raw files -> saved index, model load included), query latencies (one query at a time,
warm) and its top-100 documents per query; this process scores all runs with the same
nDCG@10 code. The peers live in a separate venv (docs/benchmarks.md says how to make it); this file
imports nothing from them at module level so it runs under either interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WARMUP_QUERIES = 5
DEPTH = 100
SYSTEMS = ("qa-torch", "qa-onnx", "qa-onnx-int8", "txtai-dense", "txtai-hybrid", "llamaindex-faiss")


def _read_files(folder: Path) -> list[tuple[str, str]]:
    return [(p.stem, p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.txt"))]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


# -- workers (run inside the subprocess) -------------------------------------------------


def _qa_worker(backend: str, files: Path, work: Path, model: str):
    """Our product with its defaults: build_index from the files, then hybrid retrieval."""
    from index.builder import build_index
    from index.embedder import SentenceTransformerEmbedder
    from qa.engine import Engine

    index_dir = work / f"qa-{backend}"
    t = time.perf_counter()
    embedder = SentenceTransformerEmbedder(backend)
    build_index([files], index_dir, embedder, rebuild=True)
    build_s = time.perf_counter() - t
    engine = Engine.open(index_dir, embedder)

    def search(query: str) -> dict[str, float]:
        qvec = embedder.embed([query])[0]
        scores: dict[str, float] = {}
        ranked = engine.candidates(query, qvec, engine.settings.mode)[: DEPTH * 4]
        source_of = engine.index.catalog.sources_of([c.chunk_id for c in ranked])
        for cand in ranked:
            doc = Path(source_of[cand.chunk_id]).stem
            scores[doc] = max(scores.get(doc, float("-inf")), cand.fused)
        return scores

    return build_s, search


def _txtai_worker(hybrid: bool, files: Path, work: Path, model: str):
    """txtai Embeddings with its defaults (faiss ANN; with hybrid, its BM25 scoring too)."""
    from txtai import Embeddings

    t = time.perf_counter()
    embeddings = Embeddings(path=model, method="sentence-transformers", content=False, hybrid=hybrid)
    embeddings.index((doc_id, text, None) for doc_id, text in _read_files(files))
    embeddings.save(str(work / f"txtai-{'hybrid' if hybrid else 'dense'}"))
    build_s = time.perf_counter() - t

    def search(query: str) -> dict[str, float]:
        return {str(doc): float(score) for doc, score in embeddings.search(query, DEPTH)}

    return build_s, search


def _llamaindex_worker(files: Path, work: Path, model: str):
    """LlamaIndex VectorStoreIndex over a FAISS inner-product index, default node parser."""
    import faiss
    from llama_index.core import Document, Settings, StorageContext, VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.faiss import FaissVectorStore

    t = time.perf_counter()
    Settings.llm = None
    Settings.embed_model = HuggingFaceEmbedding(model_name=model, device="cpu")
    documents = [Document(text=text, id_=doc_id) for doc_id, text in _read_files(files)]
    store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(384))
    index = VectorStoreIndex.from_documents(documents, storage_context=StorageContext.from_defaults(vector_store=store))
    index.storage_context.persist(persist_dir=str(work / "llamaindex"))
    build_s = time.perf_counter() - t
    retriever = index.as_retriever(similarity_top_k=DEPTH)

    def search(query: str) -> dict[str, float]:
        scores: dict[str, float] = {}
        for hit in retriever.retrieve(query):
            doc = str(hit.node.ref_doc_id)
            scores[doc] = max(scores.get(doc, float("-inf")), float(hit.score or 0.0))
        return scores

    return build_s, search


def run_worker(args) -> None:
    """Build, then answer every query once, one at a time; write build/latency/run/RSS as JSON."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.repo:
        sys.path.insert(0, args.repo)
    queries = json.loads(Path(args.queries).read_text(encoding="utf-8"))
    work = Path(args.work)
    files = Path(args.files)
    t = time.perf_counter()
    if args.worker.startswith("qa-"):
        build_s, search = _qa_worker(args.worker[3:], files, work, args.model)
    elif args.worker.startswith("txtai-"):
        build_s, search = _txtai_worker(args.worker == "txtai-hybrid", files, work, args.model)
    else:
        build_s, search = _llamaindex_worker(files, work, args.model)
    rss_after_build = _peak_rss_mb()
    for query in list(queries.values())[:WARMUP_QUERIES]:
        search(query)
    latencies, run = [], {}
    for qid, query in queries.items():
        t = time.perf_counter()
        run[qid] = search(query)
        latencies.append(time.perf_counter() - t)
    Path(args.out).write_text(
        json.dumps(
            {
                "system": args.worker,
                "build_s": build_s,
                "latencies_s": latencies,
                "peak_rss_mb": _peak_rss_mb(),
                "peak_rss_after_build_mb": rss_after_build,
                "run": run,
            }
        ),
        encoding="utf-8",
    )


# -- orchestrator (runs under the project's venv) ----------------------------------------


def slice_ids(beir, n: int) -> list[str]:
    """N documents that keep every test query answerable: the judged ones first, then corpus order."""
    judged = list(dict.fromkeys(d for grades in beir.qrels.values() for d in grades if d in beir.corpus))
    rest = [d for d in beir.corpus if d not in set(judged)]
    return (judged + rest)[: max(n, len(judged))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=None, help="BEIR folder (default: ../shared/datasets/scifact)")
    parser.add_argument(
        "--peer-python", default="/tmp/peers-venv/bin/python", help="Interpreter that has txtai and llama-index"
    )
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "qa-bench-peers")
    parser.add_argument(
        "--docs",
        type=int,
        default=None,
        help="A slice: every document judged for a test query, then corpus order up to N",
    )
    parser.add_argument("--name", default="peers")
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        help="Combine the rows of earlier result files (later files win per system) into --name",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    for hidden in ("files", "queries", "out", "model", "repo"):
        parser.add_argument(f"--{hidden}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
        return

    from _common import REPO, SCIFACT, ndcg10, percentile, write_beir_files

    from index.embedder import model_path
    from qa.beir import load_beir

    if args.merge:
        parts = [json.loads(path.read_text(encoding="utf-8")) for path in args.merge]
        # A system measured again in a later file replaces its earlier row.
        rows = list({row["system"]: row for part in parts for row in part["rows"]}.values())
        report(
            args.name,
            parts[0]["dataset"],
            parts[0]["documents"],
            parts[0]["queries"],
            rows,
            {"merged_from": [str(p) for p in args.merge]},
        )
        return

    dataset = args.dataset or SCIFACT
    beir = load_beir(dataset)
    args.work.mkdir(parents=True, exist_ok=True)
    files = args.work / ("scifact" if args.docs is None else f"scifact-slice-{args.docs}")
    write_beir_files(dataset, files, keep=slice_ids(beir, args.docs) if args.docs else None)
    queries_path = args.work / "queries.json"
    queries_path.write_text(json.dumps(beir.queries), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.setdefault("QA_HOME", str(args.work / "qa_home"))
    if any(system.startswith("qa-onnx") for system in args.systems.split(",")):
        # The one-off ONNX export is cached in QA_HOME like a user's; it is not part of a build.
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from index.embedder import SentenceTransformerEmbedder as E; E('onnx-int8').load(); E('onnx').load()",
            ],
            check=True,
            env=env,
            cwd=REPO,
        )
    rows = []
    for system in args.systems.split(","):
        python = sys.executable if system.startswith("qa-") else args.peer_python
        out = args.work / f"{system}.json"
        cmd = [
            python,
            str(Path(__file__).resolve()),
            "--worker",
            system,
            "--files",
            str(files),
            "--queries",
            str(queries_path),
            "--out",
            str(out),
            "--model",
            str(model_path()),
            "--work",
            str(args.work),
            "--repo",
            str(REPO),
        ]
        print(f"{system}: running", flush=True)
        started = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        result = json.loads(out.read_text(encoding="utf-8"))
        lat = [x * 1000 for x in result["latencies_s"]]
        row = {
            "system": system,
            "build_s": round(result["build_s"], 1),
            "ndcg@10": round(ndcg10(result["run"], beir.qrels), 4),
            "query_p50_ms": round(percentile(lat, 50), 1),
            "query_p95_ms": round(percentile(lat, 95), 1),
            "peak_rss_mb": round(result["peak_rss_mb"], 0),
            "wall_s": round(time.perf_counter() - started, 1),
        }
        row["load_average_1m"] = round(os.getloadavg()[0], 2)
        rows.append(row)
        print(f"  {row}", flush=True)
    report(args.name, str(dataset), sum(1 for _ in files.glob("*.txt")), len(beir.queries), rows, {})


def report(name: str, dataset: str, documents: int, queries: int, rows: list[dict], extra: dict) -> None:
    """Verdicts against the target, the JSON result and the three plots."""
    from _common import plot_bars, write_result

    ours = [r for r in rows if r["system"].startswith("qa-")]
    peers = [r for r in rows if not r["system"].startswith("qa-")]
    verdicts = {}
    for r in ours:
        speedups = {p["system"]: round(p["build_s"] / r["build_s"], 2) for p in peers}
        verdicts[r["system"]] = {
            "build_speedup_vs": speedups,
            "met": bool(peers)
            and all(s >= 2.5 for s in speedups.values())
            and all(r["ndcg@10"] >= p["ndcg@10"] for p in peers),
        }
    write_result(
        name,
        {
            "dataset": dataset,
            "documents": documents,
            "queries": queries,
            "rows": rows,
            "target": "build >= 2.5x faster than every peer at equal or better nDCG@10",
            "verdicts": verdicts,
            **extra,
        },
    )
    labels = [r["system"] for r in rows]
    plot_bars(
        f"{name}_build",
        f"SciFact ({documents:,} docs): build time, raw files -> saved index (lower is better)",
        labels,
        {"build s": [r["build_s"] for r in rows]},
        "seconds",
    )
    plot_bars(
        f"{name}_ndcg",
        f"SciFact test ({queries} queries): nDCG@10 (higher is better)",
        labels,
        {"nDCG@10": [r["ndcg@10"] for r in rows]},
        "nDCG@10",
    )
    plot_bars(
        f"{name}_latency",
        "Query latency, one at a time, warm (lower is better)",
        labels,
        {"p50 ms": [r["query_p50_ms"] for r in rows], "p95 ms": [r["query_p95_ms"] for r in rows]},
        "ms",
    )


if __name__ == "__main__":
    main()
