"""Cut the small SQuAD 2.0 slice committed under tests/data/squad_slice from ../shared/datasets/squad2.

usage: python benchmarks/make_squad_slice.py ../shared/datasets/squad2 [tests/data/squad_slice]

Three articles of dev.jsonl's training side (none of training/squad_split.json's validation articles),
copied verbatim into corpus/, with 10 answerable and 10 unanswerable questions of each (seed 7), and 10
questions of one squad11-extra training article (offcorpus.jsonl) to ask as unanswerable over corpus/.
Lines are copied verbatim, so answer_spans hold for the copied articles.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARTICLES = ("1973_oil_crisis.txt", "Black_Death.txt", "Sky_United_Kingdom.txt")
OFF_CORPUS = "Genghis_Khan.txt"
PER_KIND = 10
SEED = 7


def _lines(path: Path) -> list[tuple[str, dict]]:
    return [(line, json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(source: Path, target: Path) -> None:
    split = json.loads((REPO / "training" / "squad_split.json").read_text(encoding="utf-8"))
    held = {name for key, names in split.items() if isinstance(names, list) for name in names}
    assert not held & {*ARTICLES, OFF_CORPUS}, "the slice must not hold validation articles"
    rng = random.Random(SEED)
    (target / "corpus").mkdir(parents=True, exist_ok=True)
    kept: list[str] = []
    rows = _lines(source / "dev.jsonl")
    for article in ARTICLES:
        shutil.copyfile(source / "corpus" / article, target / "corpus" / article)
        for answerable in (True, False):
            pool = [line for line, q in rows if q["article"] == article and bool(q["answers"]) == answerable]
            kept += sorted(rng.sample(pool, PER_KIND), key=pool.index)
    (target / "questions.jsonl").write_text("\n".join(kept) + "\n", encoding="utf-8")
    pool = [line for line, q in _lines(source / "squad11-extra" / "train.jsonl") if q["article"] == OFF_CORPUS]
    off = sorted(rng.sample(pool, PER_KIND), key=pool.index)
    (target / "offcorpus.jsonl").write_text("\n".join(off) + "\n", encoding="utf-8")
    print(f"{len(kept)} questions over {len(ARTICLES)} articles, {len(off)} off-corpus -> {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "tests" / "data" / "squad_slice")
