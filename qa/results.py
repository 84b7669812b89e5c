"""The results a user sees: small frozen dataclasses, serialisable to the documented JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

from index.readers.text import PAGE_BREAK


@dataclass(frozen=True)
class Citation:
    """Where a quoted text lives: file, lines and characters, checked against the file's current contents."""

    source: str
    """Path relative to the indexed folder."""
    line_start: int
    """1-based first line."""
    line_end: int
    """1-based last line."""
    char_start: int
    """Offset of the first character in the file text."""
    char_end: int
    """Offset one past the last character."""
    text: str
    """The quoted text, equal to file_text[char_start:char_end] when not stale."""
    stale: bool = False
    """The check failed: the file changed since indexing (the quote no longer matches it), or, the file not
    being reachable, the stored text does not match its hash or there is no hash to check it against."""
    page: int | None = None
    """1-based page the quote starts on, for a document with page breaks (PDFs); None otherwise (and when
    the file is not reachable)."""
    check: str = "file"
    """What the quote was checked against: "file" (the file's current text), "hash" (the file is not
    reachable: the stored text against the hash recorded when it was indexed), "none" (the file is not
    reachable and the index has no hash for it: not verified, so stale)."""

    @property
    def label(self) -> str:
        lines = f"{self.line_start}" if self.line_start == self.line_end else f"{self.line_start}-{self.line_end}"
        if self.page is None:
            return f"{self.source}:{lines}"
        last = self.page + self.text.count(PAGE_BREAK)  # the page breaks the quote crosses
        return f"{self.source}:{lines} " + (f"(p. {self.page})" if last == self.page else f"(pp. {self.page}-{last})")


@dataclass(frozen=True)
class Scores:
    """Per-passage score breakdown."""

    bm25: float
    """Raw BM25 score of the passage."""
    dense: float
    """Cosine similarity between question and passage embeddings."""
    fused: float
    """The fused retrieval score (depends on the mode)."""
    late: float | None = None
    """Late interaction (qa/rerank.py): MaxSim of the question's tokens against the passage's best
    sentence; only for the top passages re-ranked in hybrid mode."""
    ranking: float | None = None
    """What the order follows when it is not `fused`: fused plus the late-interaction bonus."""
    answer: float | None = None
    """The answer model's best logit among the passage's sentences; only for the passages it read, which are
    ordered among themselves by score + a weight (qa/answer_model/calibration.json "rerank") x this."""

    @property
    def score(self) -> float:
        """The score the ranking uses."""
        return self.fused if self.ranking is None else self.ranking


@dataclass(frozen=True)
class Passage:
    """One ranked, cited passage."""

    rank: int
    """1-based position, shown as [rank]."""
    chunk_id: int
    """Row id of the chunk in the index."""
    citation: Citation
    """Where the passage is."""
    scores: Scores
    """Why it ranked where it did."""
    also_in: tuple[Citation, ...] = ()
    """Near-duplicate passages in other documents, collapsed into this hit."""


@dataclass(frozen=True)
class AnswerSpan:
    """The best answering sentence, with its confidence and where it is."""

    citation: Citation
    """The sentence and its position."""
    confidence: float
    """Calibrated confidence in [0, 1]."""
    passage_rank: int
    """Rank of the passage the sentence comes from."""
    highlights: tuple[tuple[int, int], ...] = ()
    """(start, end) offsets within the sentence of words that match the question."""


@dataclass(frozen=True)
class Answer:
    """The reply to one question."""

    question: str
    """The question as asked."""
    found: bool
    """False means 'not in the documents' (confidence under the threshold)."""
    answer: AnswerSpan | None
    """Best sentence, or None when not found; the best candidate stays in `best_guess`."""
    passages: tuple[Passage, ...]
    """Top-k passages, shown as [1]..[k] even when not found."""
    mode: str = "hybrid"
    """Retrieval mode used."""
    best_guess: AnswerSpan | None = None
    """The highest-scoring sentence even when it is under the threshold."""
    threshold: float = 0.5
    """Confidence under which the answer counts as not found."""
    timings_ms: dict = field(default_factory=dict)
    """Where the time went (embed, search, extract), for the curious."""
    sources: tuple[str, ...] = ()
    """The documents the search was restricted to (`--source`, the chat's filter); empty: all of them."""

    @property
    def skipped_stale(self) -> tuple[str, ...]:
        """Sources of stale passages ranked above the best guess's (every stale one when there is no best
        guess): passages the answer was not taken from because their files changed since indexing."""
        limit = self.best_guess.passage_rank if self.best_guess else len(self.passages) + 1
        return tuple(dict.fromkeys(p.citation.source for p in self.passages if p.citation.stale and p.rank < limit))

    def to_json(self) -> dict:
        """The documented `qa ask --json` shape."""

        def cite(c: Citation) -> dict:
            return {
                "source": c.source,
                "line_start": c.line_start,
                "line_end": c.line_end,
                "char_start": c.char_start,
                "char_end": c.char_end,
                "text": c.text,
                "stale": c.stale,
                "check": c.check,
                "page": c.page,
            }

        answer = None
        if self.found and self.answer is not None:
            answer = {**cite(self.answer.citation), "confidence": round(self.answer.confidence, 4)}
        return {
            "question": self.question,
            "found": self.found,
            "answer": answer,
            "confidence": round(self.best_guess.confidence, 4) if self.best_guess else 0.0,
            "mode": self.mode,
            "filter": list(self.sources) or None,
            "passages": [
                {
                    "rank": p.rank,
                    **cite(p.citation),
                    "score": round(p.scores.score, 6),
                    "scores": {
                        "bm25": round(p.scores.bm25, 6),
                        "dense": round(p.scores.dense, 6),
                        "fused": round(p.scores.fused, 6),
                        **({"late": round(p.scores.late, 6)} if p.scores.late is not None else {}),
                        **({"answer": round(p.scores.answer, 6)} if p.scores.answer is not None else {}),
                    },
                    "also_in": [cite(c) for c in p.also_in],
                }
                for p in self.passages
            ],
        }
