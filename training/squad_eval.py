"""Ask SQuAD questions of the product over a folder and score its passages and answers the way
../shared/datasets/squad2/README.md says (hit@k, answer sentence right, flagged, refused, AUC, overall)."""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.squad_data import Question


@dataclass(frozen=True)
class Record:
    kind: str
    """answerable | adversarial | off-corpus"""
    hit_rank: int | None
    """1-based rank of the first passage covering a gold answer (None: not in the top k)."""
    right: bool
    """The chosen sentence is from the question's article and covers a gold answer."""
    confidence: float
    features: tuple[float, ...]


def open_engine(folder: Path, work: Path):
    """The product's engine over folder (indexed once into work/<folder name>)."""
    os.environ.setdefault("QA_HOME", str(work / "home"))
    from index.builder import build_index
    from index.embedder import make_embedder
    from qa.engine import Engine

    index_dir = work / f"index-{folder.parent.name}-{folder.name}"
    embedder = make_embedder("onnx")
    if not index_dir.exists():
        build_index([folder], index_dir, embedder)
    return Engine.open(index_dir, embedder)


def ask_all(engine, questions: list[Question], kind_of, k: int = 5) -> list[Record]:
    records = []
    for q in questions:
        qvec = engine.embedder.embed([q.text])[0]
        passages = engine.search(q.text, k, "hybrid", qvec=qvec)
        kind = kind_of(q)
        hit = None
        if kind == "answerable":
            for p in passages:
                c = p.citation
                if c.source == q.article and any(c.char_start <= s and e <= c.char_end for s, e in q.answer_spans):
                    hit = p.rank
                    break
        choice = engine.answer_choice(q.text, qvec, passages)
        right = False
        if choice is not None and kind == "answerable":
            right = choice.passage.citation.source == q.article and any(
                choice.char_start <= s and e <= choice.char_end for s, e in q.answer_spans
            )
        records.append(
            Record(
                kind,
                hit,
                right,
                choice.confidence if choice is not None else 0.0,
                choice.features if choice is not None else (),
            )
        )
    return records


def auc(pos, neg) -> float:
    pos, neg = np.asarray(pos, dtype=float), np.asarray(neg, dtype=float)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def metrics(records: list[Record], threshold: float, unanswerable: str) -> dict[str, float]:
    """Figures over the answerable records and those of one unanswerable kind."""
    ans = [r for r in records if r.kind == "answerable"]
    una = [r for r in records if r.kind == unanswerable]
    answered = [r.confidence >= threshold for r in ans]
    flagged = [r.confidence < threshold for r in una]
    correct = sum(a and r.right for a, r in zip(answered, ans)) + sum(flagged)
    return {
        "answerable": len(ans),
        "unanswerable": len(una),
        "hit@1": float(np.mean([r.hit_rank == 1 for r in ans])),
        "hit@5": float(np.mean([r.hit_rank is not None for r in ans])),
        "mrr": float(np.mean([1 / r.hit_rank if r.hit_rank else 0.0 for r in ans])),
        "answer_sentence_right": float(np.mean([r.right for r in ans])),
        "unanswerable_flagged": float(np.mean(flagged)),
        "answerable_refused": float(1 - np.mean(answered)),
        "auc": auc([r.confidence for r in ans], [r.confidence for r in una]),
        "overall_correct": correct / (len(ans) + len(una)),
    }


def sample(questions: list[Question], n: int, seed: int) -> list[Question]:
    return random.Random(seed).sample(questions, min(n, len(questions)))


def save(records: list[Record], path: Path) -> None:
    path.write_text("\n".join(json.dumps(r.__dict__) for r in records) + "\n")


def load(path: Path) -> list[Record]:
    out = []
    for line in path.read_text().splitlines():
        d = json.loads(line)
        out.append(Record(d["kind"], d["hit_rank"], d["right"], d["confidence"], tuple(d["features"])))
    return out
