"""The question-answering engine: runs a question down the pipeline retrieve -> fuse -> re-rank -> cite -> answer.

Each stage is one module and sees only what the engine hands it: qa/retrieve.py gathers candidates
through the store (index/stores), qa/fusion.py ranks them, qa/rerank.py re-ranks the top ones by late
interaction, qa/cite.py checks the passages against their files (an answer is never taken from a
stale one), qa/answer.py chooses the answering span, and qa/cite.py quotes it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from index.chunker import ChunkSettings
from index.embedder import Embedder, make_embedder
from index.errors import IndexMismatchError, InputError
from index.lexical import analyze
from index.manifest import expected_mismatch, rebuild_command
from index.stores import open_store
from index.stores.base import Snapshot, Within
from qa.answer import AnswerChoice, AnswerContext, Calibration, Reading, Sentence, answer_span
from qa.cite import SourceReader, cite_passages, quote
from qa.fusion import Candidate, fuse_candidates
from qa.reader import AnswerModel
from qa.rerank import TokenCache, maxsim, reranked_scores
from qa.results import Answer, AnswerSpan, Passage
from qa.retrieve import Retriever
from qa.sanitize import safe_text
from qa.settings import MODES, RetrievalSettings

__all__ = ["MAX_QUESTION_CHARS", "MODES", "Candidate", "Engine", "RetrievalSettings", "clean_question"]

MAX_QUESTION_CHARS = 2000


class Engine:
    """Answers questions from one open index snapshot. Thread-safe for reads after construction."""

    def __init__(
        self,
        index: Snapshot,
        embedder: Embedder,
        settings: RetrievalSettings = RetrievalSettings(),
        calibration: Calibration | None = None,
        answer_model: AnswerModel | None = None,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self.calibration = calibration if calibration is not None else Calibration.bundled()
        self.answer_model = answer_model if answer_model is not None else _answer_model_for(embedder)
        if self.answer_model is not None:
            self.answer_model.load_in_background()  # like the embedder: the first question need not wait for it
        index.warm()
        self._retriever = Retriever(index)
        token_vectors = getattr(embedder, "token_vectors", None)
        self._tokens = TokenCache(token_vectors) if token_vectors is not None else None
        """Per-token vectors of sentence units for late interaction, cached across questions."""

    @classmethod
    def open(
        cls,
        index_dir: Path | str,
        embedder: Embedder | None = None,
        *,
        backend: str | None = None,
        chunking: ChunkSettings | None = None,
        settings: RetrievalSettings = RetrievalSettings(),
        calibration: Calibration | None = None,
        answer_model: AnswerModel | None = None,
    ) -> Engine:
        """Open the index at a store location, refusing one built with another model, backend or chunker."""
        index = open_store(index_dir).open()
        if embedder is None:
            embedder = make_embedder(backend or index.manifest.backend)
        problem = expected_mismatch(
            index.manifest, fingerprint=embedder.fingerprint(), chunking=chunking, backend=backend
        )
        if problem is None and embedder.backend != index.manifest.backend:
            problem = f"backend {index.manifest.backend}, this embedder is {embedder.backend}"
        if problem:
            index.close()
            command = rebuild_command(index.manifest.roots) or "qa index --rebuild PATH"
            raise IndexMismatchError(
                f"The index at {index_dir} was built with {problem}.",
                f"Rebuild it with the settings you want: {command}" + (f" --backend {backend}" if backend else ""),
            )
        return cls(index, embedder, settings, calibration, answer_model)

    # -- corpus -----------------------------------------------------------------

    @property
    def root(self) -> Path:
        return self.index.root

    def sources(self) -> list[str]:
        return self.index.catalog.sources()

    def document_text(self, source: str) -> str | None:
        """The file's current text (as indexed: decoded, HTML extracted), or None if unreadable."""
        return SourceReader(self.root).text_of(source)

    def unit_vectors(self, unit_ids: Sequence[int]) -> np.ndarray:
        """Stored vectors of sentence units."""
        return self.index.vectors.vectors(unit_ids)

    # -- retrieve, fuse, re-rank ------------------------------------------------

    def _within(self, sources: Iterable[str] | None) -> Within:
        """The documents a question is restricted to (None: all); unknown sources are refused."""
        if not sources:
            return None
        wanted = set(sources)
        ids = self.index.catalog.document_ids(sorted(wanted))
        unknown = wanted - set(ids)
        if unknown:
            raise InputError(
                f"Not in the index: {', '.join(sorted(unknown))}.", "Use a source name as listed by: qa sources"
            )
        return frozenset(ids.values())

    def candidates(
        self, question: str, qvec: np.ndarray, mode: str, sources: Iterable[str] | None = None
    ) -> list[Candidate]:
        """Candidate passages with raw scores and the fused score, best first (retrieve, then fuse)."""
        signals = self._retriever.retrieve(question, qvec, mode, self.settings, self._within(sources))
        return fuse_candidates(signals, mode, self.settings)

    def rerank(self, question: str, ranked: list[Candidate]) -> list[Candidate]:
        """The top `rerank_top` candidates reordered by fused + weight x min-max(late interaction of
        the question with each one's best sentence); the rest keep their order below them."""
        top = ranked[: self.settings.rerank_top]
        if not self._late_interaction("hybrid") or len(top) < 2:
            return ranked
        query = self._tokens.query(question)
        units = self._tokens.get([c.best_unit for c in top if c.best_unit >= 0], self._unit_texts)
        late = [maxsim(query, units[c.best_unit]) if c.best_unit >= 0 else 0.0 for c in top]
        score = reranked_scores([c.fused for c in top], late, self.settings.rerank_weight)
        order = np.argsort(-score, kind="stable")
        return [replace(top[i], late=late[i], ranking=float(score[i])) for i in order] + ranked[len(top) :]

    def _late_interaction(self, mode: str) -> bool:
        """Whether answers in this mode are re-ranked by late interaction (hybrid only, when the embedder can)."""
        return (
            mode == "hybrid"
            and self._tokens is not None
            and self.settings.rerank_top > 1
            and self.settings.rerank_weight > 0
        )

    def _unit_texts(self, ids: list[int]) -> dict[int, str]:
        return {uid: unit.text for uid, unit in self.index.catalog.units(ids).items()}

    # -- cite -------------------------------------------------------------------

    def search(
        self,
        question: str,
        k: int = 5,
        mode: str | None = None,
        sources: Iterable[str] | None = None,
        *,
        qvec: np.ndarray | None = None,
        reader: SourceReader | None = None,
    ) -> list[Passage]:
        """Top-k passages, near-duplicates collapsed, citations verified against the files (or against the stored
        texts' hashes where a file is not reachable)."""
        mode = mode or self.settings.mode
        if mode not in MODES:
            raise InputError(f"Unknown mode '{mode}'.", f"Use one of: {', '.join(MODES)}.")
        if qvec is None:
            qvec = self.embedder.embed([question])[0]
        reader = reader or SourceReader(self.root)
        ranked = self.candidates(question, qvec, mode, sources)
        if self._late_interaction(mode):
            ranked = self.rerank(question, ranked)
        window = ranked[: max(4 * k, 20)]
        records = self.index.catalog.passages([c.chunk_id for c in window])
        catalog = self.index.catalog
        return cite_passages(window, records, reader, k, self.settings.duplicate_resemblance, catalog.passage_hashes)

    # -- answer -----------------------------------------------------------------

    def ask(self, question: str, k: int = 5, mode: str | None = None, sources: Iterable[str] | None = None) -> Answer:
        """Best answer sentence with confidence (or not found), then the top-k cited passages."""
        question = clean_question(question)
        mode = mode or self.settings.mode
        sources = tuple(sorted(set(sources or ())))  # read once: the search and the reply's filter both use it
        timings = {}
        t = time.perf_counter()
        embed_query = getattr(self.embedder, "embed_query", None)
        if embed_query is not None and self._late_interaction(mode):
            qvec, tokens = embed_query(question)  # one run of the model gives both (late interaction needs the tokens)
            self._tokens.remember_query(question, tokens)
        else:
            qvec = self.embedder.embed([question])[0]
        timings["embed"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        reader = SourceReader(self.root)
        passages = self.search(question, k, mode, sources or None, qvec=qvec, reader=reader)
        timings["search"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        choice = self.answer_choice(question, qvec, passages)
        if choice is not None and self.answer_model is not None:  # without the model the "logits" are cosines
            passages = rerank_by_answer(passages, choice, self.calibration.rerank)
        best = _cited(choice, passages)
        timings["extract"] = (time.perf_counter() - t) * 1000
        # a question that is only punctuation or a terminal escape sequence ("\x1b[2J") has nothing to look for
        found = (
            best is not None and best.confidence >= self.calibration.threshold and analyze(safe_text(question)) != []
        )
        return Answer(
            question=question,
            found=found,
            answer=best if found else None,
            passages=tuple(passages),
            mode=mode,
            best_guess=best,
            threshold=self.calibration.threshold,
            timings_ms=timings,
            sources=sources,
        )

    def _readings(self, passages: Sequence[Passage]) -> list[Reading]:
        """The passages with their sentence units (text, span and vector) that lie inside them."""
        unit_lists = self.index.catalog.units_of([p.chunk_id for p in passages])
        flat = [u for units in unit_lists for u in units]
        if not flat:
            return []
        units = self.index.catalog.units(flat)
        vectors = dict(zip(flat, self.unit_vectors(flat)))
        readings = []
        for passage, unit_ids in zip(passages, unit_lists):
            cited = passage.citation
            sentences = tuple(
                Sentence(units[u].char_start, units[u].char_end, units[u].text, vectors[u])
                for u in unit_ids
                if units[u].char_start >= cited.char_start and units[u].char_end <= cited.char_end
            )
            readings.append(Reading(passage, sentences))
        return readings

    def answer_choice(self, question: str, qvec: np.ndarray, passages: Sequence[Passage]) -> AnswerChoice | None:
        """The answer stage over the top passages whose files still hold their text."""
        usable = [p for p in passages[: self.settings.answer_passages] if not p.citation.stale]
        readings = self._readings(usable)
        if not readings:
            return None
        context = AnswerContext(self.index.unit_lexical.idf, self.answer_model, self.calibration)
        return answer_span(question, qvec, readings, context)

    def close(self) -> None:
        self.index.close()


def rerank_by_answer(passages: list[Passage], choice: AnswerChoice, weight: float) -> list[Passage]:
    """The answer model re-ranks the passages it read by their ranking score + weight x their best sentence's
    logit (kept in `scores.answer`). They keep the places they held among themselves; the others (unread,
    stale) stay where they were, so a passage the model found nothing in never drops below one it did not read."""
    if weight <= 0 or not choice.read:
        return passages
    best: dict[int, float] = {}
    for sentence in choice.read:
        chunk_id = choice.read_passages[sentence.passage_index].chunk_id
        best[chunk_id] = max(best.get(chunk_id, -np.inf), sentence.logit)
    slots = [i for i, p in enumerate(passages) if p.chunk_id in best]
    read = sorted((passages[i] for i in slots), key=lambda p: -(p.scores.score + weight * best[p.chunk_id]))
    result = list(passages)
    for slot, p in zip(slots, read):
        result[slot] = replace(p, scores=replace(p.scores, answer=best[p.chunk_id]))
    return [replace(p, rank=i) for i, p in enumerate(result, 1)]


def _cited(choice: AnswerChoice | None, passages: list[Passage]) -> AnswerSpan | None:
    """The answer stage's choice, cited, with its passage's place in the list shown."""
    if choice is None:
        return None
    rank = next((p.rank for p in passages if p.chunk_id == choice.passage.chunk_id), choice.passage.rank)
    return AnswerSpan(
        citation=quote(choice.passage.citation, choice.char_start, choice.char_end),
        confidence=choice.confidence,
        passage_rank=rank,
        highlights=choice.highlights,
    )


def _answer_model_for(embedder: Embedder) -> AnswerModel | None:
    """The bundled answer model for a real embedder; a fake embedder (fast tests) answers by cosine alone."""
    if getattr(embedder, "backend", None) == "fake":
        return None
    model = AnswerModel()
    return model if model.available else None


def clean_question(question: str) -> str:
    """Trim and bound a question; empty ones are refused with a clear message."""
    question = " ".join(question.split())
    if not question:
        raise InputError("The question is empty.", 'Ask something, e.g. qa ask "Who did Hollande meet?"')
    return question[:MAX_QUESTION_CHARS]
