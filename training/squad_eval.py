"""Ask SQuAD questions of the product over a folder and score its passages and answers the way
../shared/datasets/squad2/README.md says (hit@k, answer sentence right, flagged, refused, AUC, overall)."""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.answer_metrics import roc_auc
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
    read: tuple[tuple[float, ...], ...] = ()
    """Per sentence the answer model read: logit, cosine, coverage, its passage's fused score, whether it
    covers a gold answer, whether its passage does (1.0/0.0), its passage's index among the top passages, and
    its passage's ranking score."""


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

        def covers(source: str, start: int, end: int, q=q, kind=kind) -> bool:
            """The span is in the question's article and holds one of its gold answers."""
            return (
                kind == "answerable" and source == q.article and any(start <= s and e <= end for s, e in q.answer_spans)
            )

        hit = next(
            (p.rank for p in passages if covers(p.citation.source, p.citation.char_start, p.citation.char_end)), None
        )
        choice = engine.answer_choice(q.text, qvec, passages)
        right = choice is not None and covers(choice.passage.citation.source, choice.char_start, choice.char_end)
        read = []
        for r in choice.read if choice is not None else ():
            passage = passages[r.passage_index]
            c = passage.citation
            read.append(
                (
                    r.logit,
                    r.cosine,
                    r.coverage,
                    passage.scores.fused,
                    float(covers(c.source, r.char_start, r.char_end)),
                    float(covers(c.source, c.char_start, c.char_end)),
                    r.passage_index,
                    passage.scores.score,
                )
            )
        records.append(
            Record(
                kind,
                hit,
                right,
                choice.confidence if choice is not None else 0.0,
                choice.features if choice is not None else (),
                tuple(read),
            )
        )
    return records


def auc(pos, neg) -> float:
    """qa bench's ROC AUC (qa/answer_metrics.py) over any sequences of numbers; nan when a side is empty."""
    value = roc_auc([float(x) for x in pos], [float(x) for x in neg])
    return float("nan") if value is None else value


def metrics(records: list[Record], threshold: float, unanswerable: str, rerank: float = 0.0) -> dict[str, float]:
    """Figures over the answerable records and those of one unanswerable kind."""
    ans = [r for r in records if r.kind == "answerable"]
    una = [r for r in records if r.kind == unanswerable]
    answered = [r.confidence >= threshold for r in ans]
    flagged = [r.confidence < threshold for r in una]
    correct = sum(a and r.right for a, r in zip(answered, ans)) + sum(flagged)
    return {
        "answerable": len(ans),
        "unanswerable": len(una),
        "hit@1": float(np.mean([reranked_hit(r, rerank) for r in ans])),
        "hit@1_retrieval": float(np.mean([r.hit_rank == 1 for r in ans])),
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
        out.append(
            Record(
                d["kind"],
                d["hit_rank"],
                d["right"],
                d["confidence"],
                tuple(d["features"]),
                tuple(tuple(r) for r in d.get("read", ())),
            )
        )
    return out


def rechoose(record: Record, choice: tuple[float, float], calibration) -> Record:
    """The record as the answer stage would make it with these choice weights and this calibration."""
    if not record.read:
        return record
    scores = [r[0] + choice[0] * r[1] + choice[1] * r[2] for r in record.read]
    best = record.read[int(np.argmax(scores))]
    features = best[:4]
    return Record(
        record.kind,
        record.hit_rank,
        bool(best[4]),
        calibration.confidence(features),
        features,
        record.read,
    )


RERANK_GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)


def reranked_hit(record: Record, weight: float) -> bool:
    """Whether the top passage holds a gold answer when the passages the answer model read are ordered by
    fused score + weight * their best sentence's logit (the others stay below them, as retrieved)."""
    if weight <= 0 or not record.read:
        return record.hit_rank == 1
    best: dict[int, tuple[float, bool]] = {}
    for r in record.read:
        index, score = int(r[6]), r[7] + weight * r[0]
        if index not in best or score > best[index][0]:
            best[index] = (score, bool(r[5]))
    top = max(best.items(), key=lambda kv: (kv[1][0], -kv[0]))
    return top[1][1]
