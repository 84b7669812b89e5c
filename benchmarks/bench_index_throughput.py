"""Index build throughput against the encoder's own limit: raw files -> saved index vs encoding the same
chunks.

    python benchmarks/bench_index_throughput.py --dataset ../shared/datasets/scifact \\
        --backends torch,onnx-int8 --repeat 3

For each backend, in one process and in alternating order: build the index from the raw
.txt files (scan, chunk, embed, BM25, FAISS, SQLite, atomic commit), then encode the
texts the index embedded (its sentence units or chunks) with the same embedder and nothing else. The ratio
encode_seconds / build_seconds is the build's share of the encoder's throughput
(target >= 0.90). Each backend's retrieval quality (SciFact nDCG@10, seed questions) is
measured on the index it built, so the backend choice can weigh both.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from _common import REPO, SCIFACT, engine_doc_run, median, ndcg10, plot_bars, time_call, write_beir_files, write_result


def build_once(folder: Path, index_dir: Path, embedder) -> tuple[float, dict, int]:
    from index.builder import build_index

    shutil.rmtree(index_dir, ignore_errors=True)
    seconds, report = time_call(lambda: build_index([folder], index_dir, embedder, rebuild=True))
    return seconds, report.timings, report.n_chunks


def embedded_texts(index_dir: Path) -> list[str]:
    """Every text the build embedded: its sentence units."""
    from index.stores import open_store

    with open_store(index_dir).read_catalog() as (catalog, _):
        return [unit.text for unit in catalog.all_units()]


def measure_corpus(name: str, folder: Path, embedder, work: Path, repeat: int) -> dict:
    """Paired build/encode timings on one corpus; the order alternates so drift hits both sides."""
    index_dir = work / f"index-{name}-{embedder.backend}"
    runs = []
    texts: list[str] | None = None
    for r in range(repeat):
        pair = {}
        for step in ("build", "encode") if r % 2 == 0 else ("encode", "build"):
            if step == "build":
                seconds, timings, n_chunks = build_once(folder, index_dir, embedder)
                pair.update(build=seconds, stages={k: round(v, 3) for k, v in timings.items()}, n_chunks=n_chunks)
            else:
                if texts is None:
                    if not index_dir.exists():
                        build_once(folder, index_dir, embedder)
                    texts = embedded_texts(index_dir)
                pair["encode"], _ = time_call(lambda texts=texts: embedder.embed(texts))
        pair["ratio"] = pair["encode"] / pair["build"]
        runs.append(pair)
        print(
            f"  {name} {embedder.backend} run {r + 1}: build {pair['build']:.1f}s encode {pair['encode']:.1f}s "
            f"ratio {pair['ratio']:.3f} stages {pair['stages']}",
            flush=True,
        )
    n_chunks = runs[0]["n_chunks"]
    return {
        "corpus": name,
        "n_chunks": n_chunks,
        "n_embedded": len(texts or []),
        "build_s_median": median(r["build"] for r in runs),
        "encode_s_median": median(r["encode"] for r in runs),
        "ratio_median": median(r["ratio"] for r in runs),
        "build_chunks_per_s": n_chunks / median(r["build"] for r in runs),
        "encode_chunks_per_s": n_chunks / median(r["encode"] for r in runs),
        "runs": runs,
        "index_dir": str(index_dir),
    }


def quality(index_dir: Path, embedder, dataset: Path | None) -> dict:
    """SciFact nDCG@10 (hybrid and dense) or the seed question metrics, on an index just built."""
    from qa.engine import Engine

    engine = Engine.open(index_dir, embedder)
    try:
        if dataset is not None:
            from qa.beir import load_beir

            beir = load_beir(dataset)
            return {
                mode: round(ndcg10(engine_doc_run(engine, beir.queries, mode), beir.qrels), 4)
                for mode in ("hybrid", "dense")
            }
        from qa.evaluate import evaluate_engine
        from qa.questions import load_questions

        report = evaluate_engine(engine, load_questions(REPO / "tests" / "data" / "seed_questions.jsonl"))
        return {
            "hit@1": report.hit_at[1],
            "hit@5": report.hit_at[5],
            "mrr": round(report.mrr, 4),
            "abstention_accuracy": round(report.abstention_accuracy, 4),
        }
    finally:
        engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset", type=Path, default=SCIFACT, help="BEIR folder (default: ../shared/datasets/scifact)"
    )
    parser.add_argument("--backends", default="torch,onnx-int8")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--docs", type=int, default=None, help="Only the first N corpus rows (quick runs)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "qa-bench-throughput")
    parser.add_argument("--no-quality", action="store_true", help="Skip nDCG@10 / seed-question checks")
    parser.add_argument("--name", default="index_throughput")
    parser.add_argument("--corpora", default="scifact,seeds", help="which of scifact,seeds to measure")
    args = parser.parse_args()

    from index.embedder import SentenceTransformerEmbedder

    folder = args.work / ("scifact" if args.docs is None else f"scifact-{args.docs}")
    if "scifact" in args.corpora.split(","):
        write_beir_files(args.dataset, folder, args.docs)
    corpora = [("scifact" if args.docs is None else f"scifact[:{args.docs}]", folder), ("seeds", REPO / "seeds")]
    corpora = [(name, path) for name, path in corpora if name.split("[")[0] in args.corpora.split(",")]
    results = []
    for backend in args.backends.split(","):
        embedder = SentenceTransformerEmbedder(backend)
        load_s, _ = time_call(embedder.load)
        embedder.embed(["warm up the encoder"])
        print(f"{backend}: model load {load_s:.1f}s", flush=True)
        for name, path in corpora:
            row = {
                "backend": backend,
                "model_load_s": round(load_s, 2),
                **measure_corpus(name.split("[")[0], path, embedder, args.work, args.repeat),
            }
            row["corpus"] = name
            if not args.no_quality:
                if name == "seeds":
                    row["quality"] = quality(Path(row["index_dir"]), embedder, None)
                elif args.docs is None:
                    row["quality"] = quality(Path(row["index_dir"]), embedder, args.dataset)
                print(f"  quality {name} {backend}: {row.get('quality')}", flush=True)
            results.append(row)
    write_result(args.name, {"target_ratio": 0.90, "results": results})
    labels = [f"{r['corpus']}\n{r['backend']}" for r in results]
    plot_bars(
        args.name,
        "Index build throughput as a share of raw encode throughput (median of paired runs)",
        labels,
        {"build / encode throughput": [r["ratio_median"] for r in results]},
        "ratio",
        target=0.90,
        target_label="target 0.90",
    )


if __name__ == "__main__":
    main()
