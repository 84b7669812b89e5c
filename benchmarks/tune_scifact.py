"""Choose hybrid retrieval settings on SciFact's qrels/train.tsv (809 queries) only; test is never looked at here.

    python benchmarks/tune_scifact.py ../shared/datasets/scifact

Scores every setting in GRID through the same code path as `qa bench --beir` (the product's index
and Engine.candidates; a document scores as its best chunk) on the train split, prints them best
first and writes benchmarks/results/scifact_tuning.json. The winner is what benchmarks/scifact.py
reports on test as "hybrid (tuned on train)".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from itertools import product
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from qa.engine import RetrievalSettings  # noqa: E402


def grid() -> list[RetrievalSettings]:
    """Fusion method, dense weight, and where the lexical weight goes (chunk, best sentence, whole document)."""
    base = RetrievalSettings(short_document_chars=0)
    out = [replace(base, fusion="rrf", rrf_k=60)]
    for alpha, unit_share, doc_share in product((0.5, 0.6, 0.7), (0.0, 0.67), (0.0, 0.5, 1.0)):
        out.append(
            replace(base, fusion="convex", alpha=alpha, unit_bm25_share=unit_share, document_bm25_share=doc_share)
        )
    # finer steps around the coarse winner (alpha 0.6, all lexical weight on the document)
    for alpha, doc_share in product((0.55, 0.6, 0.65), (0.75, 0.9)):
        out.append(replace(base, fusion="convex", alpha=alpha, document_bm25_share=doc_share))
    out += [replace(base, fusion="convex", alpha=alpha, document_bm25_share=1.0) for alpha in (0.55, 0.65)]
    # whole-document BM25 only for short documents, at the seed-tuned alpha (the product default is 2,500)
    out += [replace(base, short_document_chars=chars) for chars in (2500, 3000, 10**9)]
    out.append(replace(base, alpha=0.6, short_document_chars=10**9))
    return out


def key(settings: dict) -> tuple:
    """A setting's identity in the JSON (rows written before short_document_chars existed had it off)."""
    return tuple(sorted({"short_document_chars": 0, **settings}.items()))


def main() -> None:
    from index.embedder import make_embedder
    from index.locations import cache_dir
    from qa.beir import load_beir
    from qa.bench_beir import BeirSession, BeirSettings, beir_index_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--backend", default="torch", choices=["torch", "onnx", "onnx-int8"])
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "scifact_tuning.json")
    parser.add_argument(
        "--append", action="store_true", help="Keep the settings already in --json; score only the new ones."
    )
    args = parser.parse_args()
    results = json.loads(args.json.read_text(encoding="utf-8"))["results"] if args.append and args.json.exists() else []
    done = {key(r["retrieval"]) for r in results}

    dataset = load_beir(args.dataset, "train")
    embedder = make_embedder(args.backend)
    settings = BeirSettings(granularity="chunks")
    session = BeirSession(
        dataset, embedder, beir_index_dir(cache_dir(), dataset, settings, embedder.fingerprint()), settings
    )
    try:
        for i, retrieval in enumerate(grid()):
            if key(asdict(retrieval)) in done:
                continue
            started = time.perf_counter()
            result = session.evaluate("hybrid", retrieval)
            results.append({"retrieval": asdict(retrieval), "metrics": result.metrics})
            print(
                f"[{i + 1}] train nDCG@10 {result.metrics['ndcg@10']:.4f}  {describe(retrieval)}  ({time.perf_counter() - started:.0f}s)",
                flush=True,
            )
    finally:
        session.close()
    results.sort(key=lambda r: -r["metrics"]["ndcg@10"])
    print("\nbest on train:")
    for r in results[:5]:
        print(f"  {r['metrics']['ndcg@10']:.4f}  {describe(RetrievalSettings(**dict(key(r['retrieval']))))}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"split": "train", "n_queries": len(dataset.queries), "results": results}, indent=2),
        encoding="utf-8",
    )


def describe(r: RetrievalSettings) -> str:
    if r.fusion == "rrf":
        return f"rrf k={r.rrf_k}"
    return f"convex alpha={r.alpha} unit_bm25_share={r.unit_bm25_share} document_bm25_share={r.document_bm25_share} short_document_chars={r.short_document_chars}"


if __name__ == "__main__":
    main()
