"""How a question is answered: the retrieval modes and the settings of each stage (retrieve, fuse, re-rank, cite)."""

from __future__ import annotations

from dataclasses import dataclass

MODES = ("hybrid", "dense", "bm25")


@dataclass(frozen=True)
class RetrievalSettings:
    """How candidates are gathered and fused; defaults chosen by measurement (docs/benchmarks.md)."""

    mode: str = "hybrid"
    fusion: str = "convex"
    alpha: float = 0.7
    """Weight of the dense side (best sentence's cosine) in convex fusion."""
    unit_bm25_share: float = 0.67
    """Share of the lexical weight (1 - alpha) given to BM25 of the best sentence, the rest to the whole chunk."""
    rrf_k: int = 60
    candidates: int = 100
    """Candidates taken from each retriever before fusion."""
    duplicate_resemblance: float = 0.6
    """Shingle containment above which passages from two documents count as one fact."""
    answer_passages: int = 3
    """How many top passages the answer sentence is chosen from."""
    short_document_chars: int = 2500
    """In hybrid mode, a chunk of a document of at most this many characters takes its lexical
    score from BM25 of the whole document (qa/doc_lexical.py; 0 = never).
    Chosen on SciFact train (abstracts); the seed articles are longer than it."""
    rerank_top: int = 3
    """In hybrid mode, the top passages re-ranked by late interaction (qa/rerank.py; 0 = off)."""
    rerank_weight: float = 0.2
    """Weight of min-max(late interaction) added to their fused score. Both chosen on our seed
    questions (benchmarks/seed_rerank.py): 3 and 0.2 tie the best hit@1 with the least work."""
