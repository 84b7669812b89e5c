"""Soak: thousands of varied questions in one process; no errors, and resident memory must stay flat after warm-up.

    python benchmarks/soak.py                       # 10,000 queries, real model, seeds/
    python benchmarks/soak.py --backend fake --queries 2000

Questions cycle through the seed and held-out sets plus generated ones (random corpus words,
punctuation only, 5,000-character, markup-laden), over every mode, several k and source
filters. RSS is sampled every --sample queries; growth is measured from the end of the
warm-up to the end of the run (target < 5 %).
"""

from __future__ import annotations

import argparse
import gc
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, embedder_for, rss_mb, write_result

SEED = 7


def question_pool(engine, rng: random.Random) -> list[str]:
    """Real questions, then generated odd ones drawn from the corpus's own words."""
    from qa.questions import load_questions

    pool = [
        q.question
        for name in ("seed_questions.jsonl", "heldout_questions.jsonl")
        for q in load_questions(REPO / "tests" / "data" / name)
    ]
    words = sorted(
        {w for source in engine.sources() for w in (engine.document_text(source) or "").split() if w.isalpha()}
    )
    for _ in range(200):
        pool.append(" ".join(rng.choices(words, k=rng.randint(1, 12))) + "?")
    pool += ["?!?...", "¿¡ — … «»", "[bold red]who[/bold red] met [link=x]whom[/link]?", "\x1b[31mwhen\x1b[0m?"]
    pool += [" ".join(rng.choices(words, k=800))[:5000] for _ in range(5)]
    return pool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=1_000, help="queries before the baseline RSS is taken")
    parser.add_argument("--sample", type=int, default=250, help="RSS sampling interval, in queries")
    parser.add_argument("--backend", default="torch", choices=["torch", "onnx", "onnx-int8", "fake"])
    parser.add_argument("--corpus", type=Path, default=REPO / "seeds")
    parser.add_argument("--max-growth", type=float, default=5.0, help="allowed RSS growth after warm-up, percent")
    parser.add_argument("--no-save", action="store_true", help="do not write benchmarks/results/soak.json")
    args = parser.parse_args()

    from index.builder import build_index
    from qa.engine import MODES, Engine

    workdir = Path(tempfile.mkdtemp(prefix="qa-soak-"))
    try:
        embedder = embedder_for(args.backend)
        build_index([args.corpus], workdir / "index", embedder)
        engine = Engine.open(workdir / "index", embedder)
        rng = random.Random(SEED)
        pool = question_pool(engine, rng)
        sources = engine.sources()
        samples: list[tuple[int, float]] = [(0, rss_mb())]
        errors: list[str] = []
        latencies: list[float] = []
        baseline = None
        started = time.perf_counter()
        for i in range(1, args.queries + 1):
            question = pool[(i * 7919) % len(pool)]  # a fixed stride: every question, in a scrambled order
            mode = MODES[i % len(MODES)]
            k = (1, 5, 10)[i % 3]
            only = [sources[i % len(sources)]] if i % 11 == 0 else None
            t = time.perf_counter()
            try:
                engine.ask(question, k=k, mode=mode, sources=only)
            except Exception as exc:  # a soak counts every failure instead of stopping at the first
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
            latencies.append(time.perf_counter() - t)
            if i == args.warmup:
                gc.collect()
                baseline = rss_mb()
            if i % args.sample == 0:
                samples.append((i, rss_mb()))
                print(f"{i:>6} queries  rss {samples[-1][1]:.1f} MB  errors {len(errors)}", file=sys.stderr, flush=True)
        gc.collect()
        final = rss_mb()
        engine.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    growth = 100.0 * (final - baseline) / baseline if baseline else float("nan")
    latencies.sort()
    result = {
        "backend": args.backend,
        "corpus": str(args.corpus),
        "queries": args.queries,
        "distinct_questions": len(pool),
        "errors": len(errors),
        "first_errors": errors[:5],
        "rss_mb_start": round(samples[0][1], 1),
        "rss_mb_after_warmup": round(baseline, 1) if baseline else None,
        "rss_mb_end": round(final, 1),
        "rss_growth_after_warmup_percent": round(growth, 2),
        "median_ms": round(1000 * latencies[len(latencies) // 2], 2),
        "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99) - 1], 2),
        "seconds": round(time.perf_counter() - started, 1),
        "rss_samples": [(n, round(mb, 1)) for n, mb in samples],
    }
    print(
        f"{args.queries} queries, {len(errors)} errors, "
        f"RSS {result['rss_mb_after_warmup']} -> {result['rss_mb_end']} MB "
        f"after warm-up ({growth:+.2f} %), median {result['median_ms']} ms, p99 {result['p99_ms']} ms"
    )
    if not args.no_save:
        write_result("soak" if args.backend != "fake" else "soak_fake", result)
    ok = not errors and growth < args.max_growth
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
