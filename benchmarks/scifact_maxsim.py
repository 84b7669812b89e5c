"""Late interaction (ColBERT-style MaxSim) with the same all-MiniLM-L6-v2 as an extra SciFact signal.

    HF_HUB_OFFLINE=1 QA_HOME=/tmp/bencheng python benchmarks/scifact_maxsim.py \
        --dataset ../shared/datasets/scifact --cache /tmp/maxsim/cache --views-cache /tmp/h4/cache

Issue 4: can a hybrid of the one model and BM25, with no second model, reach nDCG@10 >= 0.75 on
SciFact test? This script tries the one signal the earlier rounds (scifact_signals.py,
scifact_granularity.py) did not: MaxSim between the query's token states and each candidate
document's token states, both the model's `last_hidden_state` rows (before mean pooling), L2-normalised
per token, from the product's ONNX fp32 export. score(q, d) = mean over the query's tokens of the
best cosine among d's tokens (a sum ranks the same per query, and min-max or z-score fusion is
per query, so only the mean is scored).

Documents (title + " " + text, as the product's BEIR indexing) are encoded in two ways, both
keeping every wordpiece: "windows" of <= 254 wordpieces with stride 192 (each token kept once,
from the window where it is farther from the edge; each window's [CLS]/[SEP] kept as special
tokens), and "sentences", each of the product index's sentence units encoded on its own. Only
documents in some train/test query's candidate pool are encoded; token matrices are cached as
float16 .npy under --cache. Variants: which query tokens count (all; no [CLS]/[SEP]; no
punctuation; no stopwords), uniform or idf weights, and which document tokens count (all; no
specials; no specials or punctuation).

The candidate pool, signals, metrics and Recorder are those of scifact_granularity.py: the union
of the top 100 by best-sentence cosine and by whole-document BM25; MaxSim only re-ranks it. Each
family (MaxSim alone, MaxSim + BM25, best sentence + MaxSim + BM25, best sentence + whole-abstract
vector + MaxSim + BM25) picks its variant, normalisation and weights on qrels/train.tsv (809
queries) only; test (300) is scored once, for train's pick. 5-fold CV on train is given for the
weights (ascent_family) and, nested, for variant + weights. `--cost` also times computing token
states at query time (ONNX fp32 and int8). Results: benchmarks/results/scifact_maxsim.json.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _common import SCIFACT, median, write_result
from scifact_granularity import (
    SPLITS,
    Corpus,
    Recorder,
    Split,
    ascent_family,
    convex_family,
    coordinate_ascent,
    dense_views,
    fused,
    load_corpus,
    load_split,
    ndcg10,
    normalise,
    pool_gather,
    pool_of,
    segment_max,
)

WINDOW, STRIDE = 254, 192
"""Content wordpieces per encoded window (+ [CLS] and [SEP] = the model's 256) and the step between windows."""
QUERY_MASKS = ("all", "words", "no punct", "content")
DOC_MASKS = ("all", "no special", "no punct")
WEIGHTS = ("uniform", "idf")
KINDS = ("minmax", "z_pool")


# --------------------------------------------------------------------------- token states


class TokenEncoder:
    """Per-token states of the product's ONNX export: the graph OnnxEncoder runs, without the pooling."""

    def __init__(self, backend: str = "onnx") -> None:
        from index.embedder import SentenceTransformerEmbedder
        from index.onnx_encoder import wordpiece_tokenizer

        embedder = SentenceTransformerEmbedder(backend)
        embedder.load()
        self.backend = backend
        self.fingerprint = embedder.fingerprint()
        self.session = embedder._model._session
        self.input_names = embedder._model._input_names
        self.tokenizer = wordpiece_tokenizer(embedder._path)
        self.cls, self.sep = self.tokenizer.token_to_id("[CLS]"), self.tokenizer.token_to_id("[SEP]")
        self.vocab = {i: t for t, i in self.tokenizer.get_vocab().items()}

    def pieces(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

    def run(self, rows: list[list[int]]) -> np.ndarray:
        """last_hidden_state of a padded batch of full id rows ([CLS] ... [SEP])."""
        width = max(len(r) for r in rows)
        ids = np.zeros((len(rows), width), np.int64)
        mask = np.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, : len(r)], mask[i, : len(r)] = r, 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return self.session.run(["last_hidden_state"], {n: feed[n] for n in self.input_names})[0]

    def encode(
        self, sequences: list[list[int]], batch: int = 16, progress: str = ""
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Every wordpiece of every sequence once: (unit vectors float32, token ids, is-special) per sequence."""
        jobs = []  # (sequence, window start, end, first kept, last kept + 1)
        for s, ids in enumerate(sequences):
            n = len(ids)
            starts = [0]
            while starts[-1] + WINDOW < n:
                starts.append(starts[-1] + STRIDE)
            for w, a in enumerate(starts):
                b = min(a + WINDOW, n)
                lo = a if w == 0 else (a + starts[w - 1] + WINDOW) // 2
                hi = b if w == len(starts) - 1 else (starts[w + 1] + b) // 2
                jobs.append((s, a, b, lo, hi))
        parts: list[list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in sequences]
        order = sorted(range(len(jobs)), key=lambda j: jobs[j][2] - jobs[j][1])
        done, total, t0 = 0, sum(j[2] - j[1] + 2 for j in jobs), time.time()
        for k in range(0, len(order), batch):
            chosen = [jobs[j] for j in order[k : k + batch]]
            hidden = self.run([[self.cls, *sequences[s][a:b], self.sep] for s, a, b, _, _ in chosen])
            for row, (s, a, b, lo, hi) in enumerate(chosen):
                keep = np.r_[0, np.arange(1 + lo - a, 1 + hi - a), b - a + 1]
                ids = np.r_[self.cls, sequences[s][lo:hi], self.sep].astype(np.int32)
                parts[s].append((lo, hidden[row, keep], ids, np.r_[True, np.zeros(hi - lo, bool), True]))
                done += b - a + 2
            if progress and (k // batch) % 200 == 0:
                print(
                    f"  {progress}: {done}/{total} wordpieces, {done / max(time.time() - t0, 1e-9):.0f}/s",
                    file=sys.stderr,
                    flush=True,
                )
        out = []
        for p in parts:
            p.sort(key=lambda x: x[0])
            V = np.concatenate([x[1] for x in p])
            out.append(
                (
                    V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12),
                    np.concatenate([x[2] for x in p]),
                    np.concatenate([x[3] for x in p]),
                )
            )
        return out


@dataclass
class TokenStore:
    """Token states of some documents, grouped by document row: doc d owns rows offsets[d]:offsets[d + 1]."""

    vecs: np.ndarray = field(repr=False)  # float16, unit rows
    ids: np.ndarray = field(repr=False)
    special: np.ndarray = field(repr=False)
    offsets: np.ndarray = field(repr=False)


def doc_sequences(corpus: Corpus, rows: np.ndarray, mode: str, enc: TokenEncoder) -> tuple[list[list[int]], np.ndarray]:
    """Wordpiece sequences to encode and the document row of each: whole documents, or the product's sentence units."""
    if mode == "windows":
        return enc.pieces([corpus.texts[d] for d in rows]), rows
    wanted = np.zeros(len(corpus.docs), bool)
    wanted[rows] = True
    units = np.flatnonzero(wanted[corpus.unit_doc])
    texts = [corpus.texts[corpus.unit_doc[u]][corpus.unit_spans[u][0] : corpus.unit_spans[u][1]] for u in units]
    return enc.pieces(texts), corpus.unit_doc[units]


def token_store(corpus: Corpus, rows: np.ndarray, mode: str, enc: TokenEncoder, cache: Path) -> TokenStore:
    key = hashlib.sha256(
        f"{mode}|{WINDOW}|{STRIDE}|{enc.fingerprint}|".encode()
        + "\x1f".join(corpus.texts[d] for d in rows).encode()
        + rows.tobytes()
    ).hexdigest()[:12]
    paths = {n: cache / f"tokens-{mode}-{key}-{n}.npy" for n in ("vecs", "ids", "special", "offsets")}
    if all(p.exists() for p in paths.values()):
        return TokenStore(
            *(np.load(paths[n], mmap_mode="r" if n == "vecs" else None) for n in ("vecs", "ids", "special", "offsets"))
        )
    sequences, owner = doc_sequences(corpus, rows, mode, enc)
    print(
        f"encoding {len(sequences)} {mode} of {len(rows)} documents ({sum(map(len, sequences))} wordpieces) ...",
        file=sys.stderr,
        flush=True,
    )
    t0 = time.time()
    encoded = enc.encode(sequences, progress=mode)
    print(f"  {mode}: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    counts = np.zeros(len(corpus.docs), np.int64)
    for d, (_, ids, _) in zip(owner, encoded):
        counts[d] += len(ids)
    offsets = np.r_[0, np.cumsum(counts)]
    by_doc = sorted(range(len(encoded)), key=lambda i: owner[i])  # stable: a document's units stay in text order
    store = TokenStore(
        np.concatenate([encoded[i][0] for i in by_doc]).astype(np.float16),
        np.concatenate([encoded[i][1] for i in by_doc]),
        np.concatenate([encoded[i][2] for i in by_doc]),
        offsets,
    )
    cache.mkdir(parents=True, exist_ok=True)
    for n, p in paths.items():
        np.save(p, getattr(store, n), allow_pickle=False)
    return store


# --------------------------------------------------------------------------- MaxSim


def is_punct(token: str) -> bool:
    t = token[2:] if token.startswith("##") else token
    return bool(t) and all(unicodedata.category(c)[0] in "PS" for c in t)


def token_masks(ids: np.ndarray, special: np.ndarray, vocab: dict[int, str]) -> dict[str, np.ndarray]:
    from index.lexical import STOPWORDS_EN

    punct = np.array([is_punct(vocab[int(i)]) for i in ids], bool)
    stop = np.array([vocab[int(i)] in STOPWORDS_EN for i in ids], bool)
    return {
        "all": np.ones(len(ids), bool),
        "words": ~special,
        "no special": ~special,
        "no punct": ~special & ~punct,
        "content": ~special & ~punct & ~stop,
    }


def wordpiece_idf(enc: TokenEncoder, corpus: Corpus) -> np.ndarray:
    """BM25-style idf of each wordpiece id over the corpus's documents."""
    df = np.zeros(len(enc.vocab) + 1, np.int64)
    for ids in enc.pieces(corpus.texts):
        df[np.unique(ids)] += 1
    n = len(corpus.texts)
    return np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)


@dataclass
class QueryMaxSim:
    """Per query: the pool's document rows and, per document-token mask, the (query token x document) best cosines."""

    pool: np.ndarray
    best: dict[str, np.ndarray]
    qmasks: dict[str, np.ndarray]
    idf: np.ndarray


def maxsim_tables(
    split: Split,
    pool: np.ndarray,
    store: TokenStore,
    enc: TokenEncoder,
    idf: np.ndarray,
    doc_masks: dict[str, np.ndarray],
) -> list[QueryMaxSim]:
    queries = enc.encode([ids for ids in enc.pieces(split.texts)])
    out = []
    for i, (Q, qids, qspecial) in enumerate(queries):
        docs = np.flatnonzero(pool[i])
        lengths = store.offsets[docs + 1] - store.offsets[docs]
        rows = np.concatenate([np.arange(store.offsets[d], store.offsets[d + 1]) for d in docs])
        S = Q.astype(np.float32) @ np.asarray(store.vecs[rows], dtype=np.float32).T
        starts = np.r_[0, np.cumsum(lengths)[:-1]]
        best = {}
        for name, m in doc_masks.items():
            best[name] = np.maximum.reduceat(np.where(m[rows][None, :], S, -2.0), starts, axis=1)
        out.append(QueryMaxSim(docs, best, token_masks(qids, qspecial, enc.vocab), idf[qids]))
    return out


def maxsim_matrix(tables: list[QueryMaxSim], n_docs: int, variant: tuple[str, str, str]) -> np.ndarray:
    """Query x document MaxSim (0 outside the pool, which fusion never reads) for (query mask, weights, document mask)."""
    qmask, weighting, dmask = variant
    out = np.zeros((len(tables), n_docs), np.float32)
    for i, t in enumerate(tables):
        keep = t.qmasks[qmask] if t.qmasks[qmask].any() else t.qmasks["words"]
        w = (t.idf if weighting == "idf" else np.ones_like(t.idf)) * keep
        out[i, t.pool] = (w[:, None] * t.best[dmask]).sum(0) / w.sum()
    return out


def label(mode: str, variant: tuple[str, str, str]) -> str:
    return f"maxsim[{mode}; query {variant[0]}; {variant[1]}; doc {variant[2]}]"


# --------------------------------------------------------------------------- experiments


def pooled_ascent(
    signals: dict[str, np.ndarray], names: list[str], split: Split, kind: str, rows: np.ndarray | None = None
):
    M = pool_of(signals)
    parts, mask, small = pool_gather([normalise(signals[n], M, kind).astype(np.float32) for n in names], M, split)
    init = [0.55 if n == names[0] else 0.45 if n == "bm25" else 0.0 for n in names]
    return parts, mask, small, init


def variant_family(rec: Recorder, name: str, signals, maxsim, base: list[str], nested_cv: bool, folds: int = 5) -> dict:
    """base (ending in bm25) + one MaxSim variant, weights by coordinate ascent; variant and normalisation picked on train, test once."""
    train = rec.splits["train"]
    prepared = {}
    grid = {}
    for v in maxsim["train"]:
        for kind in KINDS:
            sig = {**signals["train"], v: maxsim["train"][v]}
            parts, mask, small, init = pooled_ascent(sig, [*base[:-1], v, "bm25"], train, kind)
            prepared[(v, kind)] = (parts, mask, small, init)
            grid[f"{v} | {kind}"] = coordinate_ascent(parts, mask, small, init)[1]
    best = max(grid, key=grid.get)
    v, kind = best.split(" | ")
    names = [*base[:-1], v, "bm25"]
    sig = {s: {**signals[s], v: maxsim[s][v]} for s in SPLITS}
    entry = ascent_family(rec, name, sig, names, kind, folds)
    entry["train_grid"] = {k: round(x, 4) for k, x in sorted(grid.items(), key=lambda kv: -kv[1])}
    entry["picked_on_train"] = f"{best}: {entry['picked_on_train']}"
    if nested_cv:  # the variant and normalisation chosen inside each fold too
        perm = np.random.default_rng(0).permutation(len(train.qids))
        total = 0.0
        for held in np.array_split(perm, folds):
            fit = np.setdiff1d(perm, held)
            scored = {key: coordinate_ascent(*p[:3], p[3], fit) for key, p in prepared.items()}
            key = max(scored, key=lambda k: scored[k][1])
            parts, mask, small, _ = prepared[key]
            total += ndcg10(fused(parts, scored[key][0], mask), small, held) * len(held)
        entry[f"train_{folds}fold_nested_cv"] = round(total / len(perm), 4)
        print(f"{'':58} nested {folds}-fold CV on train {entry[f'train_{folds}fold_nested_cv']:.4f}", flush=True)
    return entry


def measure_cost(corpus: Corpus, splits, signals, n_queries: int = 12) -> dict:
    """Seconds per query to get its token states, and to re-rank its top 20 / 50 if the documents' token
    states were computed at query time (tokenise + encode + MaxSim), ONNX fp32 and int8, all cores."""
    test = splits["test"]
    S = signals["test"]
    M = pool_of(S)
    fusedS = fused([normalise(S["dense_max"], M, "minmax"), normalise(S["bm25"], M, "minmax")], [0.55, 0.45], M)
    out = {}
    for backend in ("onnx", "onnx-int8"):
        enc = TokenEncoder(backend)
        enc.encode([enc.pieces(["warm up"])[0]])
        times = {"query": [], "top20": [], "top50": [], "maxsim only, top50 stored": []}
        for i in range(n_queries):
            t = time.perf_counter()
            ((Q, _, _),) = enc.encode(enc.pieces([test.texts[i]]))
            times["query"].append(time.perf_counter() - t)
            for k in (20, 50):
                top = np.argsort(-fusedS[i])[:k]
                t = time.perf_counter()
                docs = enc.encode(enc.pieces([corpus.texts[d] for d in top]), batch=8)
                [float((Q @ D.T).max(1).mean()) for D, _, _ in docs]  # the re-rank's scores (timed, not kept)
                times[f"top{k}"].append(time.perf_counter() - t)
                if k == 50:
                    stored = [D.astype(np.float16) for D, _, _ in docs]
                    t = time.perf_counter()
                    [float((Q @ D.astype(np.float32).T).max(1).mean()) for D in stored]
                    times["maxsim only, top50 stored"].append(time.perf_counter() - t)
        out[backend] = {f"{k} seconds (median of {n_queries})": round(median(v), 4) for k, v in times.items()}
        print(backend, out[backend], flush=True)
    pieces = sum(len(p) for p in TokenEncoder.pieces(enc, corpus.texts))
    out["storage"] = {
        "corpus wordpieces (no specials)": pieces,
        "bytes per wordpiece float16": 384 * 2,
        "bytes per wordpiece int8 + fp16 scale": 384 + 2,
        "corpus GB float16": round(pieces * 768 / 1e9, 2),
        "corpus GB int8": round(pieces * 386 / 1e9, 2),
        "sentence vectors in the index now, GB (float32)": round(len(corpus.unit_doc) * 384 * 4 / 1e9, 3),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/maxsim/cache"), help="token states (.npy float16)")
    parser.add_argument(
        "--views-cache",
        type=Path,
        default=Path("/tmp/scifact_granularity"),
        help="scifact_granularity.py's --cache (whole-abstract vectors)",
    )
    parser.add_argument("--index-backend", default="torch")
    parser.add_argument("--modes", nargs="*", default=["windows", "sentences"], choices=["windows", "sentences"])
    parser.add_argument("--no-nested-cv", action="store_true")
    parser.add_argument("--cost", action="store_true", help="also time query-time token states (fp32 and int8)")
    parser.add_argument("--name", default="scifact_maxsim")
    args = parser.parse_args()

    from index.embedder import SentenceTransformerEmbedder
    from index.lexical import BM25Settings, LexicalIndex

    started = time.time()
    corpus = load_corpus(args.dataset, args.index_backend)
    embedder = SentenceTransformerEmbedder("onnx")
    embed = lambda texts: np.asarray(embedder.embed(texts), dtype=np.float32)
    splits = {s: load_split(args.dataset, s, corpus, embed) for s in SPLITS}
    whole = dense_views(corpus, args.views_cache, embed, embedder.fingerprint(), [])["whole document (256 wordpieces)"]
    lexical = LexicalIndex.build(corpus.texts, BM25Settings())
    signals = {}
    for s, split in splits.items():
        signals[s] = {
            "dense_max": segment_max(split.Q @ corpus.U.T, corpus.starts),
            "bm25": np.stack([lexical.scores(t) for t in split.texts]).astype(np.float32),
            "whole": split.Q @ whole[0].T,
        }
    pools = {s: pool_of(signals[s]) for s in SPLITS}
    rows = np.flatnonzero(pools["train"].any(0) | pools["test"].any(0))
    print(
        f"{len(rows)} of {len(corpus.docs)} documents are in some pool; loaded in {time.time() - started:.0f} s",
        file=sys.stderr,
        flush=True,
    )

    enc = TokenEncoder("onnx")
    idf = wordpiece_idf(enc, corpus)
    maxsim = {s: {} for s in SPLITS}
    encode_info = {}
    for mode in args.modes:
        t0 = time.time()
        store = token_store(corpus, rows, mode, enc, args.cache)
        encode_info[mode] = {"tokens stored": int(len(store.ids)), "seconds (0 if cached)": round(time.time() - t0, 1)}
        doc_masks = {k: v for k, v in token_masks(store.ids, store.special, enc.vocab).items() if k in DOC_MASKS}
        for s in SPLITS:
            t0 = time.time()
            tables = maxsim_tables(splits[s], pools[s], store, enc, idf, doc_masks)
            for q in QUERY_MASKS:
                for w in WEIGHTS:
                    for d in DOC_MASKS:
                        maxsim[s][label(mode, (q, w, d))] = maxsim_matrix(tables, len(corpus.docs), (q, w, d))
            print(f"maxsim {mode} {s}: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
        del store

    rec = Recorder(corpus, splits)
    for n in ("dense_max", "bm25", "whole"):
        rec.family(f"single: {n}", {}, "-", signals["test"][n], signals["train"][n])
    masked = lambda s, v: np.where(pools[s], maxsim[s][v], -1e9)
    grid = {v: ndcg10(masked("train", v), splits["train"]) for v in maxsim["train"]}
    pick = max(grid, key=grid.get)
    entry = rec.family(
        "maxsim alone, re-ranking the pool (variant picked on train)",
        grid,
        pick,
        masked("test", pick),
        masked("train", pick),
    )
    entry["train_grid"] = {k: round(x, 4) for k, x in sorted(grid.items(), key=lambda kv: -kv[1])}
    product_alpha = lambda s: (
        lambda M: fused(
            [normalise(signals[s]["dense_max"], M, "minmax"), normalise(signals[s]["bm25"], M, "minmax")], [0.7, 0.3], M
        )
    )(pools[s])
    rec.family(
        "baseline: best sentence + bm25 at the product's alpha 0.7 (not tuned)",
        {},
        "alpha=0.7",
        product_alpha("test"),
        product_alpha("train"),
    )
    convex_family(
        rec,
        "baseline: best sentence + bm25 (min-max, alpha on train)",
        lambda s: (signals[s]["dense_max"], signals[s]["bm25"], pools[s]),
    )
    ascent_family(
        rec,
        "previous best: best sentence + whole-abstract vector + bm25",
        signals,
        ["dense_max", "whole", "bm25"],
        "minmax",
    )
    nested = not args.no_nested_cv
    variant_family(rec, "maxsim + bm25 (no sentence vector)", signals, maxsim, ["bm25"], False)
    variant_family(rec, "best sentence + maxsim + bm25", signals, maxsim, ["dense_max", "bm25"], nested)
    variant_family(
        rec,
        "best sentence + whole-abstract vector + maxsim + bm25",
        signals,
        maxsim,
        ["dense_max", "whole", "bm25"],
        nested,
    )

    cost = measure_cost(corpus, splits, signals) if args.cost else None
    fusion = [k for k in rec.families if not k.startswith(("single", "maxsim alone"))]
    best = max(fusion, key=lambda k: rec.families[k]["train"])
    print(f"best on train: {best}: train {rec.families[best]['train']}, test {rec.families[best]['test']}")
    write_result(
        args.name,
        {
            "dataset": str(args.dataset),
            "index_backend": args.index_backend,
            "token_backend": "onnx (fp32)",
            "window": WINDOW,
            "stride": STRIDE,
            "documents_encoded": int(len(rows)),
            "encoding": encode_info,
            "seconds": round(time.time() - started, 1),
            "best_on_train": best,
            "results": rec.families,
            "cost": cost,
        },
    )


if __name__ == "__main__":
    main()
