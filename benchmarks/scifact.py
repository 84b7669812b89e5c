"""Full SciFact (BEIR test, 300 queries) accuracy run: our modes beside the published figures, as a table and a PNG.

    python benchmarks/scifact.py ../shared/datasets/scifact

Runs, all through `qa bench`'s code path (qa/bench_beir.py: the product's builder and Engine):
  1. granularity 'document' (one passage per abstract, as BEIR/MTEB/Anserini): bm25, dense -> the anchors;
  2. granularity 'chunks' (the product's chunker) with the product's default retrieval settings;
  3. the hybrid settings chosen on qrels/train.tsv (TUNED below; docs/benchmarks.md says how).
Indexes are cached under QA_HOME (or the user cache dir), so a second run only re-scores.
Writes benchmarks/results/scifact_accuracy.json and docs/img/scifact_accuracy.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _common import machine  # noqa: E402

from qa.engine import RetrievalSettings  # noqa: E402

PUBLISHED = (
    ("BM25, Anserini flat (k1=0.9, b=0.4)", 0.6789),
    ("BM25, BEIR paper (Elasticsearch)", 0.665),
    ("all-MiniLM-L6-v2, MTEB", 0.64508),
    ("Vespa hybrid (BM25 + ColBERT MiniLM)", 0.679),
)
TUNED = replace(RetrievalSettings(), alpha=0.6, short_document_chars=10**9)
"""The best setting on train (nDCG@10 0.7421): dense weight 0.6, and every document's chunks scored
lexically by the whole document."""
COLUMNS = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "hit@1", "hit@10")


def progress_bar():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
    )
    tasks: dict[str, int] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=max(total, 1))
        bar.update(tasks[stage], completed=done, total=max(total, 1))

    return bar, progress


def run(dataset_path: Path, backend: str) -> list[dict]:
    from index.embedder import make_embedder
    from index.locations import cache_dir
    from qa.beir import load_beir
    from qa.bench_beir import BeirSession, BeirSettings, beir_index_dir

    dataset = load_beir(dataset_path, "test")
    embedder = make_embedder(backend)
    rows = []
    plan = (
        (
            "document",
            (("bm25", None, "bm25 (whole document)"), ("dense", None, "dense (whole document, 256 wordpieces)")),
        ),
        (
            "chunks",
            (
                ("bm25", None, "bm25 (product chunks)"),
                ("dense", None, "dense (product chunks)"),
                ("hybrid", None, "hybrid (product default)"),
                ("hybrid", TUNED, "hybrid (tuned on train)"),
            ),
        ),
    )
    bar, progress = progress_bar()
    with bar:
        for granularity, runs in plan:
            settings = BeirSettings(granularity=granularity)
            session = BeirSession(
                dataset,
                embedder,
                beir_index_dir(cache_dir(), dataset, settings, embedder.fingerprint()),
                settings,
                progress,
            )
            try:
                for mode, retrieval, label in runs:
                    result = session.evaluate(mode, retrieval or RetrievalSettings(), progress=progress)
                    rows.append(
                        {
                            "system": label,
                            "granularity": granularity,
                            "mode": mode,
                            "metrics": result.metrics,
                            "queries_per_second": result.queries_per_second,
                            "settings": session.report([]).settings,
                        }
                    )
            finally:
                session.close()
    return rows


def markdown(rows: list[dict]) -> str:
    head = (
        "| system | "
        + " | ".join(
            c.replace("ndcg", "nDCG").replace("recall", "R").replace("mrr", "MRR").replace("hit", "Hit")
            for c in COLUMNS
        )
        + " | q/s |"
    )
    lines = [head, "|---" * (len(COLUMNS) + 2) + "|"]
    for row in rows:
        lines.append(
            f"| ours: {row['system']} | "
            + " | ".join(f"{row['metrics'][c]:.4f}" for c in COLUMNS)
            + f" | {row['queries_per_second']:.1f} |"
        )
    for name, value in PUBLISHED:
        lines.append(f"| published: {name} | {value:.4f} |" + " |" * (len(COLUMNS)))
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"ours: {r['system']}" for r in rows] + [f"published: {n}" for n, _ in PUBLISHED]
    values = [r["metrics"]["ndcg@10"] for r in rows] + [v for _, v in PUBLISHED]
    colors = ["tab:blue"] * len(rows) + ["tab:gray"] * len(PUBLISHED)
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(labels) + 1.2))
    ax.barh(range(len(labels)), values, color=colors)
    for i, v in enumerate(values):
        ax.text(v + 0.003, i, f"{v:.3f}", va="center", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0.5, 0.8)
    ax.set_xlabel("nDCG@10, SciFact test (300 queries)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="BEIR SciFact folder (corpus.jsonl, queries.jsonl, qrels/test.tsv)")
    parser.add_argument("--backend", default="torch", choices=["torch", "onnx", "onnx-int8"])
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "scifact_accuracy.json")
    parser.add_argument("--plot", type=Path, default=REPO / "docs" / "img" / "scifact_accuracy.png")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = run(args.dataset, args.backend)
    print(markdown(rows))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "command": " ".join(["python", *sys.argv]),
                "machine": machine(),
                "dataset": str(args.dataset),
                "backend": args.backend,
                "rows": rows,
                "published": PUBLISHED,
                "seconds": round(time.perf_counter() - started, 1),
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    plot(rows, args.plot)
    print(f"wrote {args.json} and {args.plot}")


if __name__ == "__main__":
    main()
