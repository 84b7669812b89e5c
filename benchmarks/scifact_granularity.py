"""Hybrid retrieval on SciFact with all-MiniLM-L6-v2 only: granularity, aggregation, normalisation, BM25 and multi-signal fusion.

    QA_HOME=/tmp/bencheng python benchmarks/scifact_granularity.py --dataset ../shared/datasets/scifact --cache /tmp/h4/cache

Issue 4 asks whether any hybrid of the one model (no re-ranker, no second encoder) and BM25 reaches
nDCG@10 >= 0.75 on SciFact test. Everything is scored at document level in numpy, as in
benchmarks/scifact_signals.py: the sentence vectors and units come from the product's own SciFact
index (`qa bench --beir` builds and caches it under QA_HOME); extra dense views (sliding windows of
2 and 3 consecutive sentences, the whole abstract truncated at 256 wordpieces) are embedded here
and cached as .npy under --cache. The candidate pool of a query is, as in qa/engine.py, the union
of the top 100 documents of the dense side (best sentence) and of BM25 (whole document).

Every family of settings is tuned on qrels/train.tsv (809 queries) alone; test (300 queries) is
scored once, for the setting train picked in that family. The reported figures use qa/metrics.py
(checked against pytrec_eval); the grids use a vectorised nDCG@10 that gives the same numbers.
Results go to benchmarks/results/scifact_granularity.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _common import SCIFACT, write_result

SPLITS = ("train", "test")
POOL = 100
"""Candidates per retriever before fusion, as the product's RetrievalSettings.candidates."""
GRID = tuple(round(x, 2) for x in np.arange(0.0, 1.0001, 0.05))
"""Weights tried per signal by coordinate ascent."""
ALPHAS = (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8)
"""Dense weights tried for two-signal convex fusion."""


# --------------------------------------------------------------------------- data


@dataclass
class Split:
    """One qrels split: its query ids, raw query texts, query vectors and a dense grade matrix."""

    name: str
    qids: list[str]
    texts: list[str]
    qrels: dict[str, dict[str, int]]
    Q: np.ndarray = field(repr=False)
    grades: np.ndarray = field(repr=False)
    ideal: np.ndarray = field(repr=False)


@dataclass
class Corpus:
    """Documents (sorted ids), their indexed texts and titles, and the product's sentence units."""

    docs: list[str]
    texts: list[str]
    titles: list[str]
    unit_doc: np.ndarray
    """Document row of each unit; units are grouped by document, in text order."""
    unit_spans: list[tuple[int, int]]
    U: np.ndarray = field(repr=False)
    """Unit (sentence) vectors from the product index, L2-normalised."""

    @property
    def starts(self) -> np.ndarray:
        return np.flatnonzero(np.r_[True, self.unit_doc[1:] != self.unit_doc[:-1]])


def read_titles(dataset: Path) -> dict[str, str]:
    titles = {}
    with open(dataset / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                titles[str(row["_id"])] = row.get("title") or ""
    return titles


def load_corpus(dataset: Path, backend: str) -> Corpus:
    """The product's SciFact index (built or reused under QA_HOME): units, their documents and vectors."""
    from index.embedder import make_embedder
    from index.locations import cache_dir
    from qa.beir import load_beir
    from qa.bench_beir import BeirSession, BeirSettings, beir_index_dir

    test = load_beir(dataset, "test")
    embedder = make_embedder(backend)
    settings = BeirSettings(granularity="chunks")
    session = BeirSession(test, embedder, beir_index_dir(cache_dir(), test, settings, embedder.fingerprint()), settings)
    index = session.engine.index
    rows = index.conn.execute(
        "SELECT units.id, documents.source, units.char_start, units.char_end FROM units "
        "JOIN documents ON documents.id = units.doc_id ORDER BY documents.source, units.char_start"
    ).fetchall()
    docs = sorted({src for _, src, _, _ in rows})
    position = {d: i for i, d in enumerate(docs)}
    U = index.dense.vectors([uid for uid, *_ in rows]).astype(np.float32)
    session.close()
    titles = read_titles(dataset)
    return Corpus(
        docs,
        [test.corpus[d] for d in docs],
        [titles.get(d, "") for d in docs],
        np.asarray([position[src] for _, src, _, _ in rows]),
        [(a, b) for _, _, a, b in rows],
        U,
    )


def load_split(dataset: Path, name: str, corpus: Corpus, embed: Callable[[list[str]], np.ndarray]) -> Split:
    from qa.beir import load_beir

    data = load_beir(dataset, name)
    qids = sorted(data.qrels)
    texts = [data.queries[q] for q in qids]
    position = {d: i for i, d in enumerate(corpus.docs)}
    grades = np.zeros((len(qids), len(corpus.docs)), np.float32)
    for i, q in enumerate(qids):
        for d, g in data.qrels[q].items():
            if d in position and g > 0:
                grades[i, position[d]] = g
    ideal = (-np.sort(-grades, axis=1)[:, :10] * DISCOUNT).sum(1)
    return Split(name, qids, texts, data.qrels, embed(texts), grades, ideal)


# --------------------------------------------------------------------------- metrics and fusion

DISCOUNT = 1.0 / np.log2(np.arange(2, 12))


def ndcg10(S: np.ndarray, split: Split, rows: np.ndarray | None = None) -> float:
    """Mean nDCG@10 (linear gain, as qa/metrics.py) of a query x document score matrix; fast, for grids."""
    top = np.argpartition(-S, 10, axis=1)[:, :10]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(S, top, 1), axis=1), 1)
    per_query = (np.take_along_axis(split.grades, top, 1) * DISCOUNT).sum(1) / np.maximum(split.ideal, 1e-12)
    return float(per_query.mean() if rows is None else per_query[rows].mean())


def ndcg10_exact(S: np.ndarray, split: Split, docs: Sequence[str]) -> float:
    """nDCG@10 by the project's metric code (qa/metrics.py) over each query's top 100."""
    from qa.metrics import evaluate_run

    run = {q: {docs[j]: float(S[i, j]) for j in np.argsort(-S[i])[:100]} for i, q in enumerate(split.qids)}
    return evaluate_run(run, split.qrels, ("ndcg@10",)).mean("ndcg@10")


def top_mask(X: np.ndarray, n: int = POOL) -> np.ndarray:
    mask = np.zeros_like(X, dtype=bool)
    np.put_along_axis(mask, np.argpartition(-X, n, axis=1)[:, :n], True, axis=1)
    return mask


def normalise(X: np.ndarray, mask: np.ndarray, kind: str) -> np.ndarray:
    """Scale one retriever's scores per query, using the candidates in `mask` (or all documents)."""
    if kind == "minmax":
        lo = np.where(mask, X, np.inf).min(1, keepdims=True)
        hi = np.where(mask, X, -np.inf).max(1, keepdims=True)
        return (X - lo) / np.maximum(hi - lo, 1e-12)
    if kind.startswith("top"):  # min-max against the k-th best score: 1 at the best, 0 at the k-th
        k = int(kind[3:])
        ordered = -np.sort(-X, axis=1)
        return (X - ordered[:, k - 1 : k]) / np.maximum(ordered[:, :1] - ordered[:, k - 1 : k], 1e-12)
    if kind in ("z_pool", "z_all", "dbsf"):
        ref = np.where(mask, X, np.nan) if kind == "z_pool" else X
        mu, sd = np.nanmean(ref, 1, keepdims=True), np.nanstd(ref, 1, keepdims=True)
        if kind == "dbsf":  # distribution-based score fusion: mean +- 3 sd mapped to 0..1
            return (X - (mu - 3 * sd)) / np.maximum(6 * sd, 1e-12)
        return (X - mu) / np.maximum(sd, 1e-12)
    if kind == "max":
        return X / np.maximum(X.max(1, keepdims=True), 1e-12)
    raise ValueError(kind)


def pool_of(signals: dict[str, np.ndarray], dense: str = "dense_max", lexical: str = "bm25") -> np.ndarray:
    return top_mask(signals[dense]) | top_mask(signals[lexical])


def fused(parts: Sequence[np.ndarray], weights: Sequence[float], mask: np.ndarray) -> np.ndarray:
    return np.where(mask, sum(w * p for w, p in zip(weights, parts) if w), -1e9)


def ranks(X: np.ndarray) -> np.ndarray:
    out = np.empty(X.shape, np.float32)
    np.put_along_axis(
        out, np.argsort(-X, axis=1), np.broadcast_to(np.arange(1, X.shape[1] + 1, dtype=np.float32), X.shape), axis=1
    )
    return out


# --------------------------------------------------------------------------- signals


def segment_max(S: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.maximum.reduceat(S, starts, axis=1)


def unit_aggregates(S: np.ndarray, corpus: Corpus) -> dict[str, np.ndarray]:
    """Per-document aggregates of a query x unit cosine matrix: max, top-2/3 means, soft maxima."""
    starts, owner = corpus.starts, corpus.unit_doc
    counts = np.diff(np.r_[starts, len(owner)])
    m1 = segment_max(S, starts)
    S2 = np.where(S >= m1[:, owner], -2.0, S)
    m2 = segment_max(S2, starts)
    m2 = np.where(m2 < -1.5, m1, m2)
    S3 = np.where(S2 >= m2[:, owner], -2.0, S2)
    m3 = segment_max(S3, starts)
    m3 = np.where(m3 < -1.5, m2, m3)
    out = {
        "max": m1,
        "max + 0.1 x 2nd": m1 + 0.1 * m2,
        "max + 0.2 x 2nd": m1 + 0.2 * m2,
        "mean of top 2": (m1 + m2) / 2,
        "mean of top 3": (m1 + m2 + m3) / 3,
    }
    for t in (0.02, 0.05, 0.1):
        summed = np.add.reduceat(np.exp((S - m1[:, owner]) / t), starts, axis=1)
        out[f"log-sum-exp t={t}"] = m1 + t * np.log(summed)
        out[f"log-mean-exp t={t}"] = m1 + t * np.log(summed / counts)
    return out


def window_texts(corpus: Corpus, k: int) -> tuple[list[str], np.ndarray]:
    """Every run of k consecutive units of a document (the whole document if it has fewer)."""
    texts, owner = [], []
    starts = corpus.starts
    ends = np.r_[starts[1:], len(corpus.unit_doc)]
    for d, (a, b) in enumerate(zip(starts, ends)):
        for i in range(a, max(a + 1, b - k + 1)):
            j = min(i + k, b) - 1
            texts.append(corpus.texts[d][corpus.unit_spans[i][0] : corpus.unit_spans[j][1]])
            owner.append(d)
    return texts, np.asarray(owner)


def cached_vectors(
    cache: Path, name: str, texts: list[str], embed: Callable[[list[str]], np.ndarray], tag: str
) -> np.ndarray:
    """Embed texts (shortest first, so batches pad little) or read them from cache/<name>-<hash>.npy."""
    key = hashlib.sha256(("\x1f".join(texts) + "|" + tag).encode()).hexdigest()[:12]
    path = cache / f"{name}-{key}.npy"
    if path.exists():
        return np.load(path, allow_pickle=False)
    print(f"embedding {len(texts)} texts for {name} ...", file=sys.stderr, flush=True)
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), 384), np.float32)
    for s in range(0, len(texts), 2048):
        sel = order[s : s + 2048]
        out[sel] = embed([texts[i] for i in sel])
        print(f"  {name}: {s + len(sel)}/{len(texts)}", file=sys.stderr, flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, out, allow_pickle=False)
    return out


def unit_normalised(X: np.ndarray) -> np.ndarray:
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def dense_views(
    corpus: Corpus, cache: Path, embed, tag: str, windows: Sequence[int]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Extra dense views, each as (vectors, owning document of each vector)."""
    n = len(corpus.unit_doc)
    starts = corpus.starts
    ends = np.r_[starts[1:], n]
    nxt = np.minimum(np.arange(n) + 1, ends[corpus.unit_doc] - 1)
    prv = np.maximum(np.arange(n) - 1, starts[corpus.unit_doc])
    views = {
        "sentence + title vector": (unit_normalised(corpus.U + corpus.U[starts[corpus.unit_doc]]), corpus.unit_doc),
        "sentence + neighbours vector": (unit_normalised(corpus.U[prv] + corpus.U + corpus.U[nxt]), corpus.unit_doc),
        "whole document (256 wordpieces)": (
            cached_vectors(cache, "document", corpus.texts, embed, tag),
            np.arange(len(corpus.docs)),
        ),
    }
    for k in windows:
        texts, owner = window_texts(corpus, k)
        views[f"window of {k} sentences"] = (cached_vectors(cache, f"window{k}", texts, embed, tag), owner)
    return views


def bm25_scores(
    token_lists: list[list[str]], queries: list[list[str]], k1=0.9, b=0.4, method="lucene", delta=0.5
) -> np.ndarray:
    import bm25s

    retriever = bm25s.BM25(k1=k1, b=b, method=method, delta=delta)
    retriever.index([t or ["\u2205"] for t in token_lists], show_progress=False)
    out = np.zeros((len(queries), len(token_lists)), np.float32)
    for i, q in enumerate(queries):
        terms = [t for t in q if t in retriever.vocab_dict]
        if terms:
            out[i] = retriever.get_scores(terms)
    return out


# --------------------------------------------------------------------------- experiments


class Recorder:
    """Collects train (all settings) and test (the train-picked setting of each family) nDCG@10."""

    def __init__(self, corpus: Corpus, splits: dict[str, Split]) -> None:
        self.corpus, self.splits = corpus, splits
        self.families: dict[str, dict] = {}

    def family(
        self,
        name: str,
        train_grid: dict[str, float],
        picked: str,
        test_matrix: np.ndarray | None,
        train_matrix: np.ndarray,
        extra: dict | None = None,
    ) -> dict:
        entry = {
            "train_grid": {k: round(v, 4) for k, v in train_grid.items()},
            "picked_on_train": picked,
            "train": round(ndcg10_exact(train_matrix, self.splits["train"], self.corpus.docs), 4),
        }
        if test_matrix is not None:
            entry["test"] = round(ndcg10_exact(test_matrix, self.splits["test"], self.corpus.docs), 4)
        entry.update(extra or {})
        self.families[name] = entry
        print(
            f"{name:58} train {entry['train']:.4f}  test {entry.get('test', float('nan')):.4f}   [{picked}]", flush=True
        )
        return entry


def convex_family(
    rec: Recorder, name: str, make: Callable[[str], tuple[np.ndarray, np.ndarray, np.ndarray]], kind: str = "minmax"
) -> dict:
    """Two-signal convex fusion; `make(split)` gives (dense, lexical, pool); alpha picked on train."""
    built = {s: make(s) for s in SPLITS}

    def matrix(s: str, a: float) -> np.ndarray:
        D, B, M = built[s]
        return fused([normalise(D, M, kind), normalise(B, M, kind)], [a, 1 - a], M)

    grid = {f"alpha={a}": ndcg10(matrix("train", a), rec.splits["train"]) for a in ALPHAS}
    best = max(grid, key=grid.get)
    a = float(best.split("=")[1])
    return rec.family(name, grid, best, matrix("test", a), matrix("train", a))


def coordinate_ascent(
    parts: list[np.ndarray],
    mask: np.ndarray,
    split: Split,
    init: list[float],
    rows: np.ndarray | None = None,
    rounds: int = 3,
) -> tuple[list[float], float]:
    """Weights, one signal at a time over GRID, that maximise train nDCG@10 (rows: a subset of queries)."""
    w = list(init)
    best = ndcg10(fused(parts, w, mask), split, rows)
    for _ in range(rounds):
        improved = False
        for j in range(len(w)):
            for v in GRID:
                trial = w[:j] + [v] + w[j + 1 :]
                if v == w[j] or not any(trial):
                    continue
                score = ndcg10(fused(parts, trial, mask), split, rows)
                if score > best + 1e-6:
                    best, w, improved = score, trial, True
        if not improved:
            break
    return w, best


def pool_gather(parts: list[np.ndarray], mask: np.ndarray, split: Split) -> tuple[list[np.ndarray], np.ndarray, Split]:
    """The same fusion problem restricted to each query's candidate pool (padded), so a grid step is cheap."""
    width = int(mask.sum(1).max())
    cols = np.argsort(~mask, axis=1, kind="stable")[:, :width]
    valid = np.take_along_axis(mask, cols, 1)
    gathered = [np.where(valid, np.take_along_axis(p, cols, 1), 0.0) for p in parts]
    small = Split(
        split.name,
        split.qids,
        split.texts,
        split.qrels,
        split.Q,
        np.take_along_axis(split.grades, cols, 1),
        split.ideal,
    )
    return gathered, valid, small


def ascent_family(
    rec: Recorder, name: str, signals: dict[str, dict[str, np.ndarray]], names: list[str], kind: str, folds: int = 5
) -> dict:
    """Multi-signal fusion with weights by coordinate ascent on train; k-fold CV on train shows over-fitting."""
    train = rec.splits["train"]
    prepared = {}
    for s in SPLITS:
        M = pool_of(signals[s])
        prepared[s] = ([normalise(signals[s][n], M, kind).astype(np.float32) for n in names], M)
    pooled_parts, pooled_mask, pooled_train = pool_gather(*prepared["train"], train)
    init = [0.55 if n == names[0] else 0.45 if n == "bm25" else 0.0 for n in names]
    w, _ = coordinate_ascent(pooled_parts, pooled_mask, pooled_train, init)
    perm = np.random.default_rng(0).permutation(len(train.qids))
    cv = 0.0
    for held in np.array_split(perm, folds):
        wf, _ = coordinate_ascent(pooled_parts, pooled_mask, pooled_train, init, np.setdiff1d(perm, held))
        cv += ndcg10(fused(pooled_parts, wf, pooled_mask), pooled_train, held) * len(held)
    weights = {n: x for n, x in zip(names, w) if x}
    return rec.family(
        name,
        {},
        json.dumps(weights),
        fused(prepared["test"][0], w, prepared["test"][1]),
        fused(prepared["train"][0], w, prepared["train"][1]),
        {
            "normalisation": kind,
            "signals": names,
            "weights": weights,
            f"train_{folds}fold_cv": round(cv / len(perm), 4),
        },
    )


def run_singles(rec: Recorder, signals) -> None:
    for n in signals["train"]:
        rec.family(f"single: {n}", {}, "-", signals["test"][n], signals["train"][n])


def run_aggregation(rec: Recorder, unit_cosines: dict[str, np.ndarray], signals) -> None:
    aggs = {s: unit_aggregates(unit_cosines[s], rec.corpus) for s in SPLITS}
    for label in aggs["train"]:

        def make(s, label=label):
            D, B = aggs[s][label], signals[s]["bm25"]
            return D, B, top_mask(D) | top_mask(B)

        convex_family(rec, f"aggregation: {label} + bm25 (min-max)", make)


def run_normalisation(rec: Recorder, signals) -> None:
    make = lambda s: (signals[s]["dense_max"], signals[s]["bm25"], pool_of(signals[s]))
    for kind in ("minmax", "top10", "top20", "top50", "z_pool", "z_all", "dbsf", "max"):
        convex_family(rec, f"normalisation: {kind}", make, kind)
    R = {s: (ranks(signals[s]["dense_max"]), ranks(signals[s]["bm25"])) for s in SPLITS}
    settings = [(kd, kb, wd) for kd in (5, 10, 20, 60) for kb in (5, 10, 20, 60) for wd in (0.4, 0.5, 0.6, 0.7)]
    matrix = lambda s, kd, kb, wd: wd / (kd + R[s][0]) + (1 - wd) / (kb + R[s][1])
    grid = {
        f"kd={kd} kb={kb} wd={wd}": ndcg10(matrix("train", kd, kb, wd), rec.splits["train"]) for kd, kb, wd in settings
    }
    kd, kb, wd = settings[int(np.argmax(list(grid.values())))]
    rec.family(
        "normalisation: RRF, separate k per retriever",
        grid,
        f"kd={kd} kb={kb} wd={wd}",
        matrix("test", kd, kb, wd),
        matrix("train", kd, kb, wd),
    )


def run_bm25_variants(rec: Recorder, signals, doc_terms, query_terms) -> dict[str, np.ndarray]:
    """BM25 method/k1/b/delta jointly with alpha on train; returns the picked variant's score matrices."""
    grid_settings = [("lucene", k1, b, 0.5) for k1 in (0.6, 0.9, 1.2, 1.5) for b in (0.3, 0.4, 0.5, 0.65, 0.8)]
    grid_settings += [
        (m, k1, b, 0.5)
        for m in ("robertson", "atire", "bm25l", "bm25+")
        for k1, b in ((0.9, 0.4), (1.2, 0.5), (1.2, 0.75))
    ]
    grid_settings += [(m, 1.2, 0.5, 1.0) for m in ("bm25l", "bm25+")]
    grid, best = {}, (-1.0, None, None)
    train = rec.splits["train"]
    D = signals["train"]["dense_max"]
    for m, k1, b, delta in grid_settings:
        B = bm25_scores(doc_terms, query_terms["train"], k1, b, m, delta)
        M = top_mask(D) | top_mask(B)
        nd, nb = normalise(D, M, "minmax"), normalise(B, M, "minmax")
        for a in ALPHAS:
            score = ndcg10(fused([nd, nb], [a, 1 - a], M), train)
            label = f"{m} k1={k1} b={b} delta={delta} alpha={a}"
            grid[label] = score
            if score > best[0]:
                best = (score, (m, k1, b, delta), a)
    _, (m, k1, b, delta), a = best
    picked = {s: bm25_scores(doc_terms, query_terms[s], k1, b, m, delta) for s in SPLITS}

    def matrix(s):
        Ds, B = signals[s]["dense_max"], picked[s]
        M = top_mask(Ds) | top_mask(B)
        return fused([normalise(Ds, M, "minmax"), normalise(B, M, "minmax")], [a, 1 - a], M)

    rec.family(
        "bm25 variant (method, k1, b, delta) + alpha",
        grid,
        f"{m} k1={k1} b={b} delta={delta} alpha={a}",
        matrix("test"),
        matrix("train"),
    )
    rec.family("single: bm25 picked variant", {}, f"{m} k1={k1} b={b} delta={delta}", picked["test"], picked["train"])
    return picked


def run_granularity(rec: Recorder, signals, view_names: list[str]) -> None:
    """Each dense view beside the best sentence (3 signals), then every view together (ascent)."""
    for v in view_names:
        convex_family(
            rec,
            f"granularity: {v} instead of best sentence + bm25",
            lambda s, v=v: (signals[s][v], signals[s]["bm25"], pool_of(signals[s])),
        )
        ascent_family(rec, f"granularity: best sentence + {v} + bm25", signals, ["dense_max", v, "bm25"], "minmax")
    ascent_family(rec, "granularity: all dense views + bm25", signals, ["dense_max", *view_names, "bm25"], "minmax")


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument(
        "--cache", type=Path, default=Path("/tmp/scifact_granularity"), help="where extra dense views are cached (.npy)"
    )
    parser.add_argument(
        "--index-backend",
        default="torch",
        help="backend of the product index to reuse (the cached SciFact index is torch)",
    )
    parser.add_argument(
        "--backend",
        default="onnx",
        help="backend for queries and extra views (onnx fp32 gives torch's vectors, faster)",
    )
    parser.add_argument("--windows", type=int, nargs="*", default=[2, 3], help="sliding-window sizes in sentences")
    parser.add_argument("--name", default="scifact_granularity")
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["aggregation", "normalisation", "bm25", "granularity", "all"]
    )
    args = parser.parse_args()

    from index.embedder import SentenceTransformerEmbedder
    from index.lexical import BM25Settings, LexicalIndex, analyze

    started = time.time()
    corpus = load_corpus(args.dataset, args.index_backend)
    embedder = SentenceTransformerEmbedder(args.backend)
    embed = lambda texts: np.asarray(embedder.embed(texts), dtype=np.float32)
    splits = {s: load_split(args.dataset, s, corpus, embed) for s in SPLITS}
    views = dense_views(corpus, args.cache, embed, f"{embedder.fingerprint()}", args.windows)

    lexical = LexicalIndex.build(corpus.texts, BM25Settings())
    doc_terms = [analyze(t) for t in corpus.texts]
    query_terms = {s: [analyze(t) for t in splits[s].texts] for s in SPLITS}
    title_terms = [analyze(t) for t in corpus.titles]
    signals, unit_cosines = {}, {}
    for s, split in splits.items():
        unit_cosines[s] = split.Q @ corpus.U.T
        signals[s] = {
            "dense_max": segment_max(unit_cosines[s], corpus.starts),
            "bm25": np.stack([lexical.scores(t) for t in split.texts]).astype(np.float32),
            "bm25 of title": bm25_scores(title_terms, query_terms[s]),
        }
        aggs = unit_aggregates(unit_cosines[s], corpus)
        signals[s]["dense log-mean-exp t=0.05"] = aggs["log-mean-exp t=0.05"]
        for v, (V, owner) in views.items():
            signals[s][v] = segment_max(split.Q @ V.T, np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]]))

    rec = Recorder(corpus, splits)
    run_singles(rec, signals)
    convex_family(
        rec,
        "baseline: best sentence + bm25 (min-max, product fusion)",
        lambda s: (signals[s]["dense_max"], signals[s]["bm25"], pool_of(signals[s])),
    )
    if "aggregation" not in args.skip:
        run_aggregation(rec, unit_cosines, signals)
    if "normalisation" not in args.skip:
        run_normalisation(rec, signals)
    if "bm25" not in args.skip:
        picked = run_bm25_variants(rec, signals, doc_terms, query_terms)
        for s in SPLITS:
            signals[s]["bm25 picked variant"] = picked[s]
    if "granularity" not in args.skip:
        run_granularity(rec, signals, list(views))
    if "all" not in args.skip:
        everything = ["dense_max", "dense log-mean-exp t=0.05", *views, "bm25", "bm25 of title"]
        if "bm25 picked variant" in signals["train"]:
            everything.append("bm25 picked variant")
        for kind in ("minmax", "z_pool", "z_all"):
            ascent_family(rec, f"all signals, coordinate ascent ({kind})", signals, everything, kind)
        ascent_family(
            rec,
            "log-mean-exp sentences + bm25 (z_pool), ascent",
            signals,
            ["dense log-mean-exp t=0.05", "bm25"],
            "z_pool",
        )

    best = max((k for k in rec.families if not k.startswith("single")), key=lambda k: rec.families[k]["train"])
    print(f"best on train: {best}: train {rec.families[best]['train']}, test {rec.families[best]['test']}")
    write_result(
        args.name,
        {
            "dataset": str(args.dataset),
            "index_backend": args.index_backend,
            "backend": args.backend,
            "windows": args.windows,
            "seconds": round(time.time() - started, 1),
            "best_on_train": best,
            "results": rec.families,
        },
    )


if __name__ == "__main__":
    main()
