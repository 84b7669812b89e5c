"""Warm `qa ask` end-to-end latency on the SQuAD corpus: p50 / p95 per question, one at a time.

    python benchmarks/bench_ask_latency.py [--squad ../shared/datasets/squad2] [-n 100] [--seed 0]

The index of corpus/ (35 articles) is built once (kept in QA_HOME's cache, as `qa ask --corpus` keeps it)
and the service is opened once, exactly as `qa ask` opens it (qa.service.open_engine with preload). Then
N questions sampled from dev.jsonl (answerable and unanswerable alike) go one at a time through the rest of
the CLI's path: Engine.ask(k=5, hybrid), then the answer rendered as `qa ask` renders it (to a string).
One warm-up question is asked first and not timed. The timings are wall-clock on a machine that may be
shared: machine.load_average_1m in the JSON says how busy it was.
Writes benchmarks/results/ask_latency.json and docs/img/ask_latency.png.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import percentile, plot_bars, rss_mb, shared_dataset, write_result  # noqa: E402

SQUAD = shared_dataset("squad2")
STAGES = ("ask", "render", "total")


def questions(squad: Path, n: int, seed: int) -> list[str]:
    lines = (squad / "dev.jsonl").read_text(encoding="utf-8").splitlines()
    asked = [json.loads(line)["question"] for line in lines if line.strip()]
    return random.Random(seed).sample(asked, min(n, len(asked)))


def measure(squad: Path, n: int, seed: int) -> dict:
    from rich.console import Console

    from qa.cli import _config
    from qa.render import render_answer
    from qa.service import open_engine

    config = _config((squad / "corpus",), None, None)
    started = time.perf_counter()
    engine, build = open_engine(config, preload=True)
    open_seconds = time.perf_counter() - started
    timings = {stage: [] for stage in STAGES}
    found = 0
    try:
        asked = questions(squad, n + 1, seed)
        for i, question in enumerate(asked):
            t0 = time.perf_counter()
            answer = engine.ask(question, k=5, mode="hybrid")
            t1 = time.perf_counter()
            render_answer(answer, Console(file=io.StringIO(), highlight=False, markup=False, emoji=False, width=100))
            t2 = time.perf_counter()
            if i == 0:
                continue  # warm-up: the model's first encode and the first page-ins are not a question's time
            found += answer.found
            for stage, seconds in zip(STAGES, (t1 - t0, t2 - t1, t2 - t0), strict=True):
                timings[stage].append(seconds * 1000)
        manifest = engine.index.manifest
        n_documents, n_chunks, backend = manifest.n_documents, manifest.n_chunks, manifest.backend
    finally:
        engine.close()
    return {
        "corpus": str(squad / "corpus"),
        "n_documents": n_documents,
        "n_chunks": n_chunks,
        "backend": backend,
        "n_questions": len(timings["total"]),
        "answered": found,
        "index_built_seconds": None if build is None else round(open_seconds, 2),
        "open_seconds": round(open_seconds, 3),
        "rss_mb": round(rss_mb(), 1),
        "ms": {
            stage: {
                "p50": round(percentile(values, 50), 2),
                "p95": round(percentile(values, 95), 2),
                "max": round(max(values), 2),
            }
            for stage, values in timings.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=SQUAD, help="The shared SQuAD 2.0 folder.")
    parser.add_argument("-n", type=int, default=100, help="Questions timed (after one warm-up).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the question sample.")
    args = parser.parse_args()
    if not (args.squad / "dev.jsonl").is_file():
        sys.exit(f"error: {args.squad}/dev.jsonl not found; pass --squad FOLDER (the shared SQuAD 2.0 folder).")
    result = measure(args.squad, args.n, args.seed)
    write_result("ask_latency", {"seed": args.seed, **result})
    ms = result["ms"]
    plot_bars(
        "ask_latency",
        f"Warm qa ask on SQuAD corpus/ ({result['n_chunks']} chunks, {result['n_questions']} questions, "
        f"{result['backend']})",
        list(STAGES),
        {"p50": [ms[s]["p50"] for s in STAGES], "p95": [ms[s]["p95"] for s in STAGES]},
        "ms per question",
    )
    print("| stage | p50 ms | p95 ms | max ms |\n|---|---|---|---|")
    for stage in STAGES:
        print(f"| {stage} | {ms[stage]['p50']:.1f} | {ms[stage]['p95']:.1f} | {ms[stage]['max']:.1f} |")


if __name__ == "__main__":
    main()
