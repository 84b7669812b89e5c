"""The BEIR side of `qa bench`: index a BEIR corpus with the product's builder, rank documents per mode."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from index.builder import build_index
from index.chunker import ChunkSettings
from index.embedder import Embedder, make_embedder
from index.lexical import BM25Settings
from index.locations import cache_dir
from qa.beir import GRANULARITIES, BeirDataset, WholeDocumentEmbedder, as_documents, load_beir, subset
from qa.bench import BenchReport, Failure, ModeResult, Progress, RankedItem, _check_modes, _failure, _noop
from qa.engine import MODES, Engine, RetrievalSettings, clean_question
from qa.metrics import DEFAULT_MEASURES, RunMetrics, evaluate_run, first_relevant_rank
from qa.results import Scores
from qa.snippet import snippet

WHOLE_DOCUMENT = ChunkSettings(max_tokens=WholeDocumentEmbedder.MAX_SENTENCES, overlap_tokens=0, dense_unit="chunk")
"""Chunking for granularity 'document': with WholeDocumentEmbedder (a sentence is one 'token'),
one passage per corpus row; the encoder itself truncates it at 256 wordpieces."""


@dataclass(frozen=True)
class BeirSettings:
    """How a BEIR corpus is indexed and searched by the bench."""

    granularity: str = "chunks"
    """'chunks': the product's chunker, a document scores as its best chunk. 'document': one
    passage per row, truncated by the encoder, as BEIR/MTEB/Anserini do (to reproduce them)."""
    chunking: ChunkSettings = ChunkSettings()
    """Product chunking, used when granularity is 'chunks'."""
    bm25: BM25Settings = BM25Settings()
    retrieval: RetrievalSettings = RetrievalSettings()
    """Fusion and candidate settings handed to the engine (the product's defaults)."""
    candidates: int | None = None
    """Override of the engine's per-retriever candidate count; None keeps the product's, so the
    bench ranks exactly as `qa ask` does (the pool still holds well over 100 documents)."""

    @property
    def index_chunking(self) -> ChunkSettings:
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}")
        return self.chunking if self.granularity == "chunks" else WHOLE_DOCUMENT


def beir_index_dir(cache: Path, dataset: BeirDataset, settings: BeirSettings, fingerprint: str) -> Path:
    """A cache folder per dataset and index settings (not per split), so later runs reuse the index."""
    key = f"{dataset.folder}|{settings.granularity}|{settings.index_chunking}|{settings.bm25}|{fingerprint}"
    return cache / "bench" / f"{dataset.name}-{settings.granularity}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


class BeirSession:
    """An indexed BEIR corpus with its queries embedded once, ready to be scored under many settings."""

    def __init__(
        self,
        dataset: BeirDataset,
        embedder: Embedder,
        index_dir: Path,
        settings: BeirSettings = BeirSettings(),
        progress: Progress = _noop,
    ) -> None:
        self.dataset = dataset
        self.settings = settings
        chunking = settings.index_chunking
        if settings.granularity == "document":
            embedder = WholeDocumentEmbedder(embedder)
        build = build_index(
            [dataset.folder],
            index_dir,
            embedder,
            chunking,
            settings.bm25,
            wait=True,
            progress=progress,
            documents=(dataset.folder, as_documents(dataset), []),
        )
        self.build = build
        self.index_seconds = build.seconds if build.embedded_chunks else 0.0
        self.engine = Engine.open(
            index_dir,
            embedder,
            chunking=chunking,
            settings=replace(settings.retrieval, candidates=settings.candidates or settings.retrieval.candidates),
        )
        self.query_ids = list(dataset.queries)
        self.query_texts = [clean_question(dataset.queries[q]) for q in self.query_ids]
        getattr(embedder, "load", lambda: None)()  # the model's start-up is not query time
        started = time.perf_counter()
        self.query_vectors = _embed_queries(embedder, self.query_texts, progress)
        self.embed_seconds = time.perf_counter() - started

    def evaluate(
        self,
        mode: str,
        retrieval: RetrievalSettings | None = None,
        *,
        candidates: int | None = None,
        measures: Sequence[str] = DEFAULT_MEASURES,
        failures: bool = False,
        progress: Progress = _noop,
    ) -> ModeResult:
        """Rank every query's documents (a document scores as its best chunk) and score the run.

        `retrieval` replaces the engine's settings; `candidates` overrides its per-retriever depth.
        """
        if retrieval is not None or candidates is not None:
            base = retrieval or self.engine.settings
            self.engine.settings = replace(base, candidates=candidates or self.settings.candidates or base.candidates)
        run, best = {}, {}
        started = time.perf_counter()
        for i, qid in enumerate(self.query_ids):
            progress(mode, i, len(self.query_ids))
            candidates = self.engine.candidates(self.query_texts[i], self.query_vectors[i], mode)
            if mode == "hybrid":
                candidates = self.engine.rerank(self.query_texts[i], candidates)  # as Engine.search does
            source_of = self.engine.index.catalog.sources_of([c.chunk_id for c in candidates])
            run[qid], best[qid] = document_scores(candidates, source_of)
        seconds = time.perf_counter() - started + self.embed_seconds
        progress(mode, len(self.query_ids), len(self.query_ids))
        metrics = evaluate_run(run, self.dataset.qrels, measures)
        missed = (
            ()
            if not failures
            else tuple(
                _beir_failure(self.dataset, qid, metrics, best[qid])
                for qid in self.query_ids
                if first_relevant_rank(metrics.rankings[qid], self.dataset.qrels[qid]) != 1
            )
        )
        return ModeResult(mode, metrics.means, len(self.query_ids), seconds, None, missed, metrics)

    def report(self, results: Sequence[ModeResult]) -> BenchReport:
        return BenchReport(
            dataset=f"{self.dataset.name} ({self.dataset.split})",
            n_documents=self.build.n_documents,
            n_chunks=self.build.n_chunks,
            n_queries=len(self.query_ids),
            n_unanswerable=0,
            index_seconds=self.index_seconds,
            results=tuple(results),
            settings={
                "granularity": self.settings.granularity,
                "chunking": asdict(self.settings.index_chunking),
                "bm25": asdict(self.settings.bm25),
                "retrieval": asdict(self.engine.settings),
            },
        )

    def close(self) -> None:
        self.engine.close()


def bench_beir(
    dataset: BeirDataset,
    embedder: Embedder,
    index_dir: Path,
    settings: BeirSettings = BeirSettings(),
    modes: Sequence[str] = MODES,
    *,
    measures: Sequence[str] = DEFAULT_MEASURES,
    failures: bool = False,
    progress: Progress = _noop,
) -> BenchReport:
    """Index the corpus with the product's builder, then rank documents by their best chunk per mode."""
    modes = _check_modes(modes)
    session = BeirSession(dataset, embedder, index_dir, settings, progress)
    try:
        return session.report(
            [session.evaluate(mode, measures=measures, failures=failures, progress=progress) for mode in modes]
        )
    finally:
        session.close()


def run_beir_bench(
    folder: Path,
    backend: str,
    modes: Sequence[str] = MODES,
    *,
    split: str = "test",
    settings: BeirSettings = BeirSettings(),
    index_dir: Path | None = None,
    limit: int | None = None,
    failures: bool = False,
    progress: Progress = _noop,
) -> BenchReport:
    """Bench a BEIR folder; its index is cached per dataset and settings (QA_HOME moves it)."""
    dataset = load_beir(folder, split)
    if limit:
        dataset = subset(dataset, list(dataset.queries)[:limit])
    embedder = make_embedder(backend)
    index_dir = index_dir or beir_index_dir(cache_dir(), dataset, settings, embedder.fingerprint())
    return bench_beir(dataset, embedder, index_dir, settings, modes, failures=failures, progress=progress)


def _embed_queries(embedder: Embedder, texts: list[str], progress: Progress, batch: int = 64):
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    for start in range(0, len(texts), batch):
        progress("queries", start, len(texts))
        out[start : start + batch] = embedder.embed(texts[start : start + batch])
    progress("queries", len(texts), len(texts))
    return out


def document_scores(candidates, source_of: dict[int, str]) -> tuple[dict[str, float], dict[str, Scores]]:
    """A document's score is that of its best chunk (candidates arrive best first)."""
    run: dict[str, float] = {}
    best: dict[str, Scores] = {}
    for cand in candidates:
        doc = source_of[cand.chunk_id]
        if doc not in run:
            best[doc] = cand.scores
            run[doc] = best[doc].score
    return run, best


def _beir_failure(dataset: BeirDataset, qid: str, metrics: RunMetrics, best: dict[str, Scores]) -> Failure:
    grades = dataset.qrels[qid]
    query = dataset.queries[qid]
    items = [
        RankedItem(rank, doc, "", best[doc], grades.get(doc, 0) > 0)
        for rank, doc in enumerate(metrics.rankings[qid], 1)
    ]
    expected = tuple(f"{doc}: {dataset.corpus.get(doc, '')[:120]}" for doc, g in grades.items() if g > 0)
    failure = _failure(qid, query, expected, items)

    def shown(item: RankedItem) -> RankedItem:  # only the few items a failure keeps get their preview
        return replace(item, text=snippet(dataset.corpus.get(item.key, ""), query, 200).text)

    return replace(
        failure,
        above=tuple(map(shown, failure.above)),
        relevant_item=None if failure.relevant_item is None else shown(failure.relevant_item),
    )
