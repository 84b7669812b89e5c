"""Cut the small SciFact slice committed under tests/data/scifact_slice from a full BEIR SciFact folder.

usage: python benchmarks/make_scifact_slice.py ../shared/datasets/scifact [tests/data/scifact_slice]

Every 12th test query (25 of 300), all their relevant documents, the 4 best-scoring non-relevant
documents of each query under BM25 (hard distractors) and 60 random documents (seed 7).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from index.lexical import BM25Settings  # noqa: E402
from index.stores import lexical_over_texts  # noqa: E402
from qa.beir import load_beir  # noqa: E402


def main(source: Path, target: Path) -> None:
    dataset = load_beir(source, "test")
    qids = list(dataset.queries)[::12]
    doc_ids = list(dataset.corpus)
    lexical = lexical_over_texts([dataset.corpus[d] for d in doc_ids], BM25Settings())
    rows = np.arange(len(doc_ids))
    keep: set[str] = set()
    for qid in qids:
        keep |= set(dataset.qrels[qid])
        scores = lexical.query(dataset.queries[qid]).score(rows)
        ranked = [doc_ids[i] for i in scores.argsort()[::-1]]
        keep |= set([d for d in ranked if d not in dataset.qrels[qid]][:4])
    rest = sorted(set(doc_ids) - keep)
    keep |= set(random.Random(7).sample(rest, 60))
    (target / "qrels").mkdir(parents=True, exist_ok=True)
    with (target / "corpus.jsonl").open("w", encoding="utf-8") as out:
        for line in (source / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
            if json.loads(line)["_id"] in keep:
                out.write(line + "\n")
    with (target / "queries.jsonl").open("w", encoding="utf-8") as out:
        for line in (source / "queries.jsonl").read_text(encoding="utf-8").splitlines():
            if json.loads(line)["_id"] in qids:
                out.write(line + "\n")
    with (target / "qrels" / "test.tsv").open("w", encoding="utf-8") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        for qid in qids:
            for doc, grade in dataset.qrels[qid].items():
                out.write(f"{qid}\t{doc}\t{grade}\n")
    print(f"{len(qids)} queries, {len(keep)} documents -> {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else "tests/data/scifact_slice"))
