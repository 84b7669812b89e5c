"""BM25 updates as a delta (index/lexical_delta.py) at scale: update cost and query latency, against a rewrite.

    python benchmarks/bench_bm25_delta.py --dataset ../shared/datasets/scifact --rows 1000000 --churn 20

The base is bench_query_latency's BM25 corpus: SciFact's 100-word passages repeated to --rows rows.
An update then removes --churn random rows and adds --churn passages (an edit of a file or two).
Measured in one process, --repeat times each:
- update: write_delta (links the base, writes a delta) against update_postings + write_bm25 (a
  new base, rescoring every posting: what every update did before deltas);
- query: ColumnLexical.scores for SciFact's claims, p50 / p95, over the base alone, the base + delta
  and the rewritten folder. The delta's scores are checked equal to the rewritten folder's.
The delta is written whatever the base's size; the product writes one only up to
index/lexical_delta.py DELTA_MAX_POSTINGS, which these numbers set.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import SCIFACT, median, percentile, plot_bars, write_result


def tiled_folder(folder: Path, rows: int, dataset: Path, settings) -> dict:
    """Write a BM25 folder of `rows` rows: the distinct passages' postings repeated (once; reused)."""
    from bench_query_latency import distinct_terms

    from index.lexical_build import Postings, RowTerms, _offsets, count_postings, row_terms, write_bm25

    if (folder / "params.index.json").is_file():  # built by an earlier run
        return {"built_s": None, "postings": int(np.load(folder / "indices.csc.index.npy", mmap_mode="r").shape[0])}
    started = time.perf_counter()
    distinct = row_terms(distinct_terms(dataset, settings))
    postings = count_postings(distinct)
    d = distinct.n_rows
    full, rest = divmod(rows, d)
    lengths = np.diff(distinct.offsets)
    out_rows, out_tf, df = [], [], np.zeros(len(distinct.terms), dtype=np.int64)
    for t in range(len(distinct.terms)):
        r = postings.rows[postings.indptr[t] : postings.indptr[t + 1]].astype(np.int64)
        tf = postings.tf[postings.indptr[t] : postings.indptr[t + 1]]
        tail = r < rest
        out_rows += [(r[None, :] + d * np.arange(full)[:, None]).ravel(), r[tail] + d * full]
        out_tf += [np.tile(tf, full), tf[tail]]
        df[t] = full * r.shape[0] + int(tail.sum())
    tiled = Postings(_offsets(df), np.concatenate(out_rows).astype(np.int32), np.concatenate(out_tf))
    offsets = _offsets(np.concatenate([np.tile(lengths, full), lengths[:rest]]))
    write_bm25(folder, RowTerms(distinct.terms, None, offsets), settings, postings=tiled)
    return {"built_s": time.perf_counter() - started, "postings": int(tiled.rows.shape[0]), "distinct_passages": d}


def query_times(folder: Path, queries: list[str], settings) -> dict:
    from index.lexical_column import load_lexical

    index = load_lexical(folder, settings)
    try:
        for q in queries[:20]:  # warm the page cache
            index.scores(q)
        times = []
        for q in queries:
            t = time.perf_counter()
            index.scores(q)
            times.append(time.perf_counter() - t)
    finally:
        index.close()
    return {"p50_ms": 1000 * median(times), "p95_ms": 1000 * percentile(times, 95)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--churn", type=int, default=20, help="rows removed and rows added by the update")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "qa-bench-bm25-delta")
    parser.add_argument("--name", default="bm25_delta")
    args = parser.parse_args()

    from bench_query_latency import scifact_passages

    from index.lexical import BM25Settings
    from index.lexical_build import update_postings, write_bm25
    from index.lexical_column import load_lexical
    from index.lexical_delta import write_delta
    from qa.beir import load_beir

    settings = BM25Settings()
    base = args.work / f"base-{args.rows}"
    built = tiled_folder(base, args.rows, args.dataset, settings)
    print(f"base: {args.rows} rows {built}", flush=True)
    rng = np.random.default_rng(0)
    previous_ids = np.arange(1, args.rows + 1, dtype=np.int64)
    gone = rng.choice(args.rows, size=args.churn, replace=False)
    passages = scifact_passages(args.dataset)
    texts = {
        args.rows + 1 + k: passages[int(i)]
        for k, i in enumerate(rng.choice(len(passages), size=args.churn, replace=False))
    }
    ids = np.concatenate([np.delete(previous_ids, gone), np.asarray(sorted(texts), dtype=np.int64)])

    def texts_of(wanted: np.ndarray) -> list[str]:
        return [texts[int(i)] for i in wanted]

    delta_s, rewrite_s = [], []
    for r in range(args.repeat):
        for kind, times in (("delta", delta_s), ("rewrite", rewrite_s)):
            out = args.work / f"{kind}{r}"
            shutil.rmtree(out, ignore_errors=True)
            t = time.perf_counter()
            if kind == "delta":
                assert write_delta(
                    base, out, previous_ids, ids, texts_of, settings, share=1.0, max_postings=float("inf")
                )
            else:
                updated = update_postings(base, previous_ids, ids, texts_of, settings)
                write_bm25(
                    out,
                    updated.rows,
                    settings,
                    vocab_from=base if updated.same_vocab else None,
                    postings=updated.postings,
                )
            times.append(time.perf_counter() - t)
        print(f"  update {r + 1}: delta {delta_s[-1]:.3f} s, rewrite {rewrite_s[-1]:.3f} s", flush=True)

    queries = list(load_beir(args.dataset).queries.values())[: args.queries]
    delta, rewrite = (
        load_lexical(args.work / "delta0", settings),
        load_lexical(args.work / "rewrite0", settings),
    )
    try:
        same = all(np.array_equal(delta.scores(q), rewrite.scores(q)) for q in queries[:50])
    finally:
        delta.close()
        rewrite.close()
    assert same, "the delta's scores differ from the rewritten folder's"
    rounds = []
    for r in range(args.repeat):
        rounds.append(
            {
                name: query_times(folder, queries, settings)
                for name, folder in (
                    ("base", base),
                    ("delta", args.work / "delta0"),
                    ("rewrite", args.work / "rewrite0"),
                )
            }
        )
        print(
            f"  queries {r + 1}: "
            + ", ".join(f"{k} p50 {v['p50_ms']:.2f} / p95 {v['p95_ms']:.2f} ms" for k, v in rounds[-1].items()),
            flush=True,
        )
    summary = {
        name: {stat: median(rd[name][stat] for rd in rounds) for stat in ("p50_ms", "p95_ms")} for name in rounds[0]
    }
    result = {
        "rows": args.rows,
        "churn": args.churn,
        "base": built,
        "update_delta_s": delta_s,
        "update_rewrite_s": rewrite_s,
        "update_delta_median_s": median(delta_s),
        "update_rewrite_median_s": median(rewrite_s),
        "scores_equal": same,
        "query_rounds": rounds,
        "query": summary,
    }
    print(
        f"update: delta {median(delta_s):.3f} s vs rewrite {median(rewrite_s):.3f} s; query p95: "
        + ", ".join(f"{k} {v['p95_ms']:.2f} ms" for k, v in summary.items())
    )
    write_result(args.name, result)
    plot_bars(
        args.name,
        f"BM25 at {args.rows:,} rows, an update of {args.churn} + {args.churn} rows (medians of {args.repeat})",
        ["update (s)", "query p50 (ms)", "query p95 (ms)"],
        {
            "update writes a new base": [median(rewrite_s), summary["rewrite"]["p50_ms"], summary["rewrite"]["p95_ms"]],
            "update writes a delta": [median(delta_s), summary["delta"]["p50_ms"], summary["delta"]["p95_ms"]],
        },
        "seconds / milliseconds",
        log=True,
    )
    for r in range(args.repeat):
        for kind in ("delta", "rewrite"):
            shutil.rmtree(args.work / f"{kind}{r}", ignore_errors=True)


if __name__ == "__main__":
    main()
