"""Extra retrieval signals on SciFact, scored at document level in numpy: which of them would lift hybrid nDCG@10.

    python benchmarks/scifact_signals.py --dataset ../shared/datasets/scifact

Uses the product's own SciFact index (sentence vectors, `qa bench --beir` builds and caches it) and
its BM25 analyzer. A document's dense score is its best sentence's cosine; its lexical score is BM25
of the whole document (the product's tuned setting); the two are min-max normalised over the union
of each side's top 100 and mixed convexly, as qa/engine.py does. Each signal below is added to that
baseline. Train (809 queries) picks; test (300) is only reported. Numbers go to
results/scifact_signals.json.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
from _common import SCIFACT, write_result


def mm(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    lo = np.where(mask, x, np.inf).min(1, keepdims=True)
    hi = np.where(mask, x, -np.inf).max(1, keepdims=True)
    return np.where(mask, (x - lo) / np.maximum(hi - lo, 1e-12), 0.0)


def topmask(x: np.ndarray, n: int = 100) -> np.ndarray:
    mask = np.zeros_like(x, dtype=bool)
    np.put_along_axis(mask, np.argpartition(-x, n, axis=1)[:, :n], True, axis=1)
    return mask


def fuse(parts, weights, mask) -> np.ndarray:
    return np.where(mask, sum(w * mm(p, mask) for p, w in zip(parts, weights)), -1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--backend", default="onnx")
    parser.add_argument("--name", default="scifact_signals")
    args = parser.parse_args()

    import bm25s

    from index.embedder import make_embedder
    from index.lexical import BM25Settings, LexicalIndex, analyze
    from index.locations import cache_dir
    from qa.beir import load_beir
    from qa.bench_beir import BeirSession, BeirSettings, beir_index_dir
    from qa.metrics import evaluate_run

    embedder = make_embedder(args.backend)
    splits = {s: load_beir(args.dataset, s) for s in ("train", "test")}
    test = splits["test"]
    settings = BeirSettings(granularity="chunks")
    session = BeirSession(test, embedder, beir_index_dir(cache_dir(), test, settings, embedder.fingerprint()), settings)
    index = session.engine.index
    rows = index.conn.execute(
        "SELECT units.id, documents.source FROM units JOIN documents ON documents.id = units.doc_id ORDER BY documents.source, units.char_start"
    ).fetchall()
    docs = sorted({src for _, src in rows})
    position = {d: i for i, d in enumerate(docs)}
    unit_doc = np.asarray([position[src] for _, src in rows])
    starts = np.flatnonzero(np.r_[True, unit_doc[1:] != unit_doc[:-1]])
    U = index.dense.vectors([uid for uid, _ in rows]).astype(np.float32)
    session.close()
    texts = [test.corpus[d] for d in docs]
    doc_terms = [analyze(t) or ["\u2205"] for t in texts]
    sums = np.add.reduceat(U, starts, axis=0)
    centroid = sums / np.linalg.norm(sums, axis=1, keepdims=True)
    with_first = U + U[starts[unit_doc]]  # each sentence plus its document's first (the title)
    with_first /= np.linalg.norm(with_first, axis=1, keepdims=True)
    lexical = LexicalIndex.build(texts, BM25Settings())

    def bm25_of(token_lists):
        vocab: dict[str, int] = {}
        ids = [
            [vocab.setdefault(t, len(vocab)) for t in toks] or [vocab.setdefault("\u2205", len(vocab))]
            for toks in token_lists
        ]
        retriever = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
        retriever.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
        return lambda toks: (
            retriever.get_scores([vocab[t] for t in toks if t in vocab])
            if any(t in vocab for t in toks)
            else np.zeros(len(docs))
        )

    def bigrams(toks):
        return [a + "_" + b for a, b in zip(toks, toks[1:])]

    bigram_bm25 = bm25_of([bigrams(t) for t in doc_terms])
    first_unit_text = [index_text.split(". ")[0] for index_text in texts]  # SciFact titles end the first sentence
    title_bm25 = bm25_of([analyze(t) for t in first_unit_text])

    results: dict[str, dict[str, float]] = {}
    for split, data in splits.items():
        qids = sorted(data.qrels)
        Q = embedder.embed([data.queries[q] for q in qids]).astype(np.float32)
        dmax = np.maximum.reduceat(Q @ U.T, starts, axis=1)
        B = np.stack([lexical.scores(data.queries[q]) for q in qids]).astype(np.float32)
        mask = topmask(dmax) | topmask(B)

        def score(run_matrix: np.ndarray) -> float:
            run = {
                q: {docs[j]: float(run_matrix[i, j]) for j in np.argsort(-run_matrix[i])[:100]}
                for i, q in enumerate(qids)
            }
            return evaluate_run(run, data.qrels, ("ndcg@10",)).mean("ndcg@10")

        def record(label: str, run_matrix: np.ndarray) -> None:
            results.setdefault(label, {})[split] = round(score(run_matrix), 4)
            print(f"{split:5} {label:45} {results[label][split]:.4f}", flush=True)

        record("dense (best sentence)", dmax)
        record("bm25 (whole document)", B)
        for a in (0.5, 0.6, 0.7):
            record(f"convex alpha {a}", fuse([dmax, B], [a, 1 - a], mask))
        base = fuse([dmax, B], [0.6, 0.4], mask)
        cen = Q @ centroid.T
        for w in (0.1, 0.2):
            record(f"+ document centroid cosine {w}", fuse([dmax, B, cen], [0.6 - w / 2, 0.4 - w / 2, w], mask))
        wf = np.maximum.reduceat(Q @ with_first.T, starts, axis=1)
        for w in (0.3, 0.6):
            record(f"+ sentence-with-title cosine, share {w}", fuse([(1 - w) * dmax + w * wf, B], [0.6, 0.4], mask))
        BG = np.stack([bigram_bm25(bigrams(analyze(data.queries[q]))) for q in qids]).astype(np.float32)
        T = np.stack([title_bm25(analyze(data.queries[q])) for q in qids]).astype(np.float32)
        for w in (0.05, 0.1):
            record(f"+ bigram BM25 {w}", fuse([dmax, B, BG], [0.6, 0.4 - w, w], mask))
            record(f"+ title BM25 {w}", fuse([dmax, B, T], [0.6, 0.4 - w, w], mask))
        for k, beta in ((3, 0.3), (5, 0.5), (10, 0.5)):
            top = np.argsort(-base, axis=1)[:, :k]
            Q2 = Q + beta * centroid[top].mean(1)
            Q2 /= np.linalg.norm(Q2, axis=1, keepdims=True)
            d2 = np.maximum.reduceat(Q2 @ U.T, starts, axis=1)
            record(f"+ dense PRF (Rocchio, top {k}, beta {beta})", fuse([d2, B], [0.6, 0.4], topmask(d2) | topmask(B)))
        idf = {
            t: np.log(1 + (len(docs) - n + 0.5) / (n + 0.5))
            for t, n in Counter(t for toks in doc_terms for t in set(toks)).items()
        }
        top = np.argsort(-base, axis=1)[:, :3]
        B2 = np.zeros_like(B)
        for i, q in enumerate(qids):
            weights: Counter = Counter()
            for d in top[i]:
                for t, c in Counter(doc_terms[d]).items():
                    weights[t] += c / len(doc_terms[d]) * idf[t]
            B2[i] = lexical.scores(" ".join(t for t, _ in weights.most_common(10)))
        B2 = B + 0.3 * B2 * (B.max(1, keepdims=True) / np.maximum(B2.max(1, keepdims=True), 1e-9))
        record("+ lexical PRF (top 3 docs, 10 terms, 0.3)", fuse([dmax, B2], [0.6, 0.4], topmask(dmax) | topmask(B2)))
    best = max(results, key=lambda label: results[label].get("train", 0.0))
    print(f"best on train: {best} -> train {results[best]['train']}, test {results[best]['test']}")
    write_result(
        args.name, {"dataset": str(args.dataset), "backend": args.backend, "ndcg@10": results, "best_on_train": best}
    )


if __name__ == "__main__":
    main()
