"""A query-side linear adapter for all-MiniLM-L6-v2, trained on SciFact train qrels: does it generalise?

    QA_HOME=/tmp/bencheng python benchmarks/scifact_adapter.py --dataset ../shared/datasets/scifact

The adapter maps a query vector q to normalise(q + qA) (A: 384 x 384, starts at zero), trained with
a listwise softmax loss over each train query's candidate pool (dense top 100 + BM25 top 100, as
qa/engine.py), a document scoring as its best sentence. Only the queries move: documents keep the
index's vectors. Hybrid = min-max convex fusion with whole-document BM25 (the tuned setting of
benchmarks/scifact_granularity.py), alpha picked on the held-out part of train.

SciFact's train and test claims often cite the same abstracts: a test query whose relevant abstract is
also relevant to a train query can be answered by remembering that abstract rather than by
understanding the claim. So the script reports test split by that overlap, and a 5-fold
cross-validation on train whose folds share no relevant abstract (queries linked by a shared abstract
stay in one fold). Results go to benchmarks/results/scifact_adapter.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import SCIFACT, write_result
from scifact_granularity import ALPHAS, SPLITS, load_corpus, load_split, ndcg10, top_mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument(
        "--index-backend",
        default="torch",
        help="backend of the product index to reuse (the cached SciFact index is torch)",
    )
    parser.add_argument("--backend", default="onnx", help="backend for the queries (onnx fp32 gives torch's vectors)")
    parser.add_argument("--steps", type=int, nargs="*", default=[15, 50])
    parser.add_argument("--l2", type=float, nargs="*", default=[0.0, 1.0], help="penalty on |A|^2")
    parser.add_argument("--name", default="scifact_adapter")
    args = parser.parse_args()

    import torch

    from index.embedder import SentenceTransformerEmbedder
    from index.lexical import BM25Settings, LexicalIndex

    torch.manual_seed(0)
    started = time.time()
    corpus = load_corpus(args.dataset, args.index_backend)
    embedder = SentenceTransformerEmbedder(args.backend)
    splits = {
        s: load_split(args.dataset, s, corpus, lambda t: np.asarray(embedder.embed(t), dtype=np.float32))
        for s in SPLITS
    }
    lexical = LexicalIndex.build(corpus.texts, BM25Settings())
    bm25 = {s: np.stack([lexical.scores(t) for t in splits[s].texts]).astype(np.float32) for s in SPLITS}
    U = torch.from_numpy(corpus.U)
    owner = torch.from_numpy(corpus.unit_doc).long()
    n_docs = len(corpus.docs)

    def dense(Q: np.ndarray) -> np.ndarray:
        return np.maximum.reduceat(Q @ corpus.U.T, corpus.starts, axis=1)

    def hybrid(D: np.ndarray, B: np.ndarray, alpha: float) -> np.ndarray:
        mask = top_mask(D) | top_mask(B)
        lo = lambda X: np.where(mask, X, np.inf).min(1, keepdims=True)
        hi = lambda X: np.where(mask, X, -np.inf).max(1, keepdims=True)
        mm = lambda X: (X - lo(X)) / np.maximum(hi(X) - lo(X), 1e-12)
        return np.where(mask, alpha * mm(D) + (1 - alpha) * mm(B), -1e9)

    def train(
        Q: np.ndarray, grades: np.ndarray, B: np.ndarray, steps: int, l2: float, tau: float = 0.05
    ) -> torch.Tensor:
        q0 = torch.from_numpy(Q)
        relevant = torch.from_numpy(grades > 0)
        pool = torch.from_numpy(top_mask(dense(Q)) | top_mask(B)) | relevant
        A = torch.zeros(Q.shape[1], Q.shape[1], requires_grad=True)
        opt = torch.optim.Adam([A], lr=1e-3)
        for _ in range(steps):
            q = torch.nn.functional.normalize(q0 + q0 @ A, dim=1)
            sentences = q @ U.T
            docs = torch.full((len(Q), n_docs), -1e4).scatter_reduce(
                1, owner.expand(len(Q), -1), sentences, reduce="amax"
            )
            logp = (docs / tau).masked_fill(~pool, -1e4).log_softmax(1)
            loss = -(logp.masked_fill(~relevant, 0).sum(1) / relevant.sum(1).clamp(min=1)).mean() + l2 * (A**2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return A.detach()

    def adapted(Q: np.ndarray, A: torch.Tensor) -> np.ndarray:
        q = torch.from_numpy(Q)
        return torch.nn.functional.normalize(q + q @ A, dim=1).numpy()

    tr, te = splits["train"], splits["test"]
    # Train queries linked by a shared relevant abstract form one group; groups go to folds whole.
    groups = list(range(len(tr.qids)))

    def root(i: int) -> int:
        while groups[i] != i:
            groups[i] = groups[groups[i]]
            i = groups[i]
        return i

    first_query_of: dict[int, int] = {}
    for i in range(len(tr.qids)):
        for d in np.flatnonzero(tr.grades[i] > 0):
            if d in first_query_of:
                groups[root(i)] = root(first_query_of[d])
            else:
                first_query_of[d] = i
    roots = np.asarray([root(i) for i in range(len(tr.qids))])
    order = np.random.default_rng(0).permutation(np.unique(roots))
    fold = np.asarray([{g: k % 5 for k, g in enumerate(order)}[r] for r in roots])
    seen_in_train = (tr.grades > 0).any(0)
    overlap = ((te.grades > 0) & seen_in_train).any(1)

    def per_query(S: np.ndarray, split, rows: np.ndarray) -> float:
        return ndcg10(S, split, rows)

    result = {
        "test_queries_with_a_relevant_abstract_also_relevant_in_train": int(overlap.sum()),
        "test_queries": len(te.qids),
        "settings": [],
    }
    baseline_alpha = max(ALPHAS, key=lambda a: ndcg10(hybrid(dense(tr.Q), bm25["train"], a), tr))
    base_test = hybrid(dense(te.Q), bm25["test"], baseline_alpha)
    base_cv = max(
        np.mean(
            [
                ndcg10(hybrid(dense(tr.Q[fold == k]), bm25["train"][fold == k], a), _rows(tr, fold == k))
                for k in range(5)
            ]
        )
        for a in ALPHAS
    )
    result["baseline"] = {
        "alpha": baseline_alpha,
        "test": round(ndcg10(base_test, te), 4),
        "test_overlap": round(per_query(base_test, te, np.flatnonzero(overlap)), 4),
        "test_no_overlap": round(per_query(base_test, te, np.flatnonzero(~overlap)), 4),
        "grouped_cv_train": round(float(base_cv), 4),
    }
    print(f"baseline (alpha {baseline_alpha}): {result['baseline']}", flush=True)
    for steps in args.steps:
        for l2 in args.l2:
            t = time.time()
            cv = {a: [] for a in ALPHAS}
            for k in range(5):
                A = train(tr.Q[fold != k], tr.grades[fold != k], bm25["train"][fold != k], steps, l2)
                D = dense(adapted(tr.Q[fold == k], A))
                for a in ALPHAS:
                    cv[a].append(ndcg10(hybrid(D, bm25["train"][fold == k], a), _rows(tr, fold == k)))
            alpha = max(ALPHAS, key=lambda a: np.mean(cv[a]))
            A = train(tr.Q, tr.grades, bm25["train"], steps, l2)
            S = hybrid(dense(adapted(te.Q, A)), bm25["test"], alpha)
            row = {
                "steps": steps,
                "l2": l2,
                "alpha_picked_by_grouped_cv": alpha,
                "grouped_cv_train": round(float(np.mean(cv[alpha])), 4),
                "test": round(ndcg10(S, te), 4),
                "test_overlap": round(per_query(S, te, np.flatnonzero(overlap)), 4),
                "test_no_overlap": round(per_query(S, te, np.flatnonzero(~overlap)), 4),
                "seconds": round(time.time() - t, 1),
            }
            result["settings"].append(row)
            print(row, flush=True)
    result["seconds"] = round(time.time() - started, 1)
    write_result(args.name, result)


def _rows(split, keep: np.ndarray):
    """The split restricted to some queries (a view with the fields ndcg10 reads)."""
    from types import SimpleNamespace

    return SimpleNamespace(grades=split.grades[keep], ideal=split.ideal[keep])


if __name__ == "__main__":
    main()
