"""ONNX encoding of many sentences: batch size, and one multi-threaded run vs single-threaded runs in parallel.

    python benchmarks/bench_encode_batches.py --dataset ../shared/datasets/scifact --docs 150 --repeat 2

Sentences come from the first N SciFact documents (the product's sentence splitter). For each ONNX
backend it reports CPU time on one thread per batch size (cache effects, independent of load), and
wall time of: one run at a time (one batch of 32 at a time on a session using every core) against the
product's way (index/onnx_encoder.py: small batches, one single-threaded run per core at once).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import SCIFACT, median, write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--docs", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--backends", default="onnx,onnx-int8")
    parser.add_argument("--name", default="encode_batches")
    args = parser.parse_args()

    from index.chunker import split_sentences
    from index.embedder import BATCH_SIZES, SentenceTransformerEmbedder

    texts = []
    with open(args.dataset / "corpus.jsonl", encoding="utf-8") as fh:
        for _, line in zip(range(args.docs), fh):
            row = json.loads(line)
            doc = f"{row.get('title', '')} {row['text']}"
            texts += [doc[s:e] for s, e in split_sentences(doc)]
    print(f"{len(texts)} sentences from {args.docs} documents", flush=True)
    results = {}
    for backend in args.backends.split(","):
        embedder = SentenceTransformerEmbedder(backend)
        embedder.load()
        encoder = embedder._model
        single = encoder._make_session()
        cpu = {}
        for batch in (1, 4, 8, 16, 32, 128):
            t = time.process_time()
            order = np.argsort([-len(x) for x in texts])
            for start in range(0, len(texts), batch):
                encoder._encode_batch([texts[i] for i in order[start : start + batch]], single)
            cpu[batch] = round(time.process_time() - t, 2)
        print(f"{backend}: CPU seconds on one thread by batch size {cpu}", flush=True)
        serial, parallel = [], []
        workers = encoder.workers
        for _ in range(args.repeat):
            encoder.workers = 1
            t = time.perf_counter()
            encoder.encode(texts, 32)
            serial.append(time.perf_counter() - t)
            encoder.workers = workers
            t = time.perf_counter()
            encoder.encode(texts, BATCH_SIZES[backend])
            parallel.append(time.perf_counter() - t)
        results[backend] = {
            "sentences": len(texts),
            "cpu_s_one_thread_by_batch": cpu,
            "wall_s_batch32_one_run_at_a_time": [round(x, 2) for x in serial],
            f"wall_s_batch{BATCH_SIZES[backend]}_parallel_x{workers}": [round(x, 2) for x in parallel],
            "speedup_median": round(median(serial) / median(parallel), 2),
        }
        print(
            f"{backend}: wall batch 32 one at a time {results[backend]['wall_s_batch32_one_run_at_a_time']} s, "
            f"batch {BATCH_SIZES[backend]} x{workers} in parallel {[round(x, 2) for x in parallel]} s: "
            f"{results[backend]['speedup_median']}x",
            flush=True,
        )
    write_result(args.name, results)


if __name__ == "__main__":
    main()
