"""The question-answering engine: hybrid retrieval, dedup, answer extraction and verified citations."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from index.chunker import ChunkSettings
from index.documents import PAGE_BREAK
from index.embedder import Embedder, make_embedder
from index.errors import IndexMismatchError, InputError
from index.lexical import analyze, idf_weights
from index.ranking import top_rows
from index.store import LoadedIndex, expected_mismatch, load_index, rebuild_command
from qa.aliases import expanded_query
from qa.cite import SourceReader
from qa.dedup import overlap_ratio, resemblance, shingles
from qa.extract import Calibration, choose_answer, highlight_spans, score_sentences, with_what_follows_a_heading
from qa.fusion import fuse, minmax
from qa.rerank import TokenCache, maxsim, reranked_scores
from qa.results import Answer, AnswerSpan, Citation, Passage, Scores
from qa.sanitize import safe_text
from qa.verify import WordVectors, expected_answer_type, support

MODES = ("hybrid", "dense", "bm25")
MAX_QUESTION_CHARS = 2000


@dataclass(frozen=True)
class RetrievalSettings:
    """How candidates are gathered and fused; defaults chosen by measurement (see README)."""

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
    score from BM25 of the whole document (qa/doc_lexical.py DocumentLexical; 0 = never).
    Chosen on SciFact train (abstracts); the seed articles (3,230 and 4,105 characters) are longer."""
    rerank_top: int = 3
    """In hybrid mode, the top passages re-ranked by late interaction (qa/rerank.py; 0 = off)."""
    rerank_weight: float = 0.2
    """Weight of min-max(late interaction) added to their fused score. Both chosen on our seed
    questions (benchmarks/seed_rerank.py): 3 and 0.2 tie the best hit@1 with the least work."""


@dataclass(frozen=True)
class _Candidate:
    chunk_id: int
    dense: float
    bm25: float
    fused: float
    best_unit: int = -1
    """The chunk's sentence unit closest to the question (the dense score's)."""
    late: float | None = None
    ranking: float | None = None

    @property
    def scores(self) -> Scores:
        return Scores(self.bm25, self.dense, self.fused, self.late, self.ranking)


class Engine:
    """Answers questions from one loaded index. Thread-safe for reads after construction."""

    def __init__(
        self,
        index: LoadedIndex,
        embedder: Embedder,
        settings: RetrievalSettings = RetrievalSettings(),
        calibration: Calibration = Calibration(),
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self.calibration = calibration
        rows = index.conn.execute(
            "SELECT chunks.id, documents.source FROM chunks JOIN documents ON documents.id = chunks.doc_id"
        ).fetchall()
        self._source_of = {cid: src for cid, src in rows}
        self._position = {int(cid): i for i, cid in enumerate(index.bm25_ids)}
        self._unit_position = {int(uid): i for i, uid in enumerate(index.unit_ids)}
        pairs = index.conn.execute("SELECT chunk_id, unit_id FROM chunk_units ORDER BY chunk_id, unit_id").fetchall()
        self._units_of: dict[int, list[int]] = {}
        self._chunks_of: dict[int, list[int]] = {}
        for cid, uid in pairs:
            self._units_of.setdefault(cid, []).append(uid)
            self._chunks_of.setdefault(uid, []).append(cid)
        self._short_lexical = None  # built on first use when the corpus has short documents
        self._short_lexical_for = None
        self._word_vectors = WordVectors(embedder.embed)
        """Single-word embeddings for the answer verifier (qa/verify.py), cached across questions."""
        token_vectors = getattr(embedder, "token_vectors", None)
        self._tokens = TokenCache(token_vectors) if token_vectors is not None else None
        """Per-token vectors of sentence units for late interaction, cached across questions."""

    @classmethod
    def open(
        cls,
        index_dir: Path,
        embedder: Embedder | None = None,
        *,
        backend: str | None = None,
        chunking: ChunkSettings | None = None,
        settings: RetrievalSettings = RetrievalSettings(),
        calibration: Calibration = Calibration(),
    ) -> Engine:
        """Load an index, refusing one built with another model, backend or chunker."""
        index = load_index(index_dir)
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
        return cls(index, embedder, settings, calibration)

    # -- corpus -----------------------------------------------------------------

    @property
    def root(self) -> Path:
        return self.index.root

    def sources(self) -> list[str]:
        return [r[0] for r in self.index.conn.execute("SELECT source FROM documents ORDER BY source")]

    def document_text(self, source: str) -> str | None:
        """The file's current text (as indexed: decoded, HTML extracted), or None if unreadable."""
        return SourceReader(self.root).text_of(source)

    # -- retrieval --------------------------------------------------------------

    def _allowed_ids(self, sources: Iterable[str] | None) -> np.ndarray | None:
        if not sources:
            return None
        wanted = set(sources)
        unknown = wanted - set(self._source_of.values())
        if unknown:
            raise InputError(
                f"Not in the index: {', '.join(sorted(unknown))}.", "Use a source name as listed by: qa sources"
            )
        return np.asarray(sorted(cid for cid, src in self._source_of.items() if src in wanted), dtype=np.int64)

    def _dense_top(self, qvec: np.ndarray, n: int, allowed_units: np.ndarray | None) -> dict[int, float]:
        """Top-n units by cosine, as {unit_id: score} (exact or IVF-PQ re-ranked: index/vectors.py)."""
        ids, scores = self.index.dense.search(qvec, n, allowed_units)
        return {int(i): float(s) for i, s in zip(ids, scores)}

    def unit_vectors(self, unit_ids: Sequence[int]) -> np.ndarray:
        """Stored vectors of units (for scoring candidates and picking the answer sentence)."""
        if not unit_ids:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return self.index.dense.vectors(unit_ids)

    def _known_term(self, term: str) -> bool:
        """Whether any sentence of the index holds the (analysed) term."""
        return self.index.unit_lexical.document_frequency(term) > 0

    def candidates(
        self, question: str, qvec: np.ndarray, mode: str, sources: Iterable[str] | None = None
    ) -> list[_Candidate]:
        """Candidate chunks with raw scores and the fused score, best first.

        A chunk's dense score is the cosine of its best sentence; its lexical score mixes BM25 of the
        whole chunk with BM25 of its best sentence (so a passage that answers in one sentence wins).
        """
        allowed = self._allowed_ids(sources)
        allowed_units = None
        n = self.settings.candidates
        lexical_query = expanded_query(question, self._known_term)  # "UK" also finds "British" (qa/aliases.py)
        chunk_bm25 = self.index.lexical.scores(lexical_query)
        unit_bm25 = self.index.unit_lexical.scores(lexical_query)
        if allowed is not None:
            allowed_units = np.asarray(
                sorted({u for c in allowed for u in self._units_of.get(int(c), [])}), dtype=np.int64
            )
            mask = np.zeros(chunk_bm25.shape[0], dtype=bool)
            mask[[self._position[int(c)] for c in allowed]] = True
            chunk_bm25 = np.where(mask, chunk_bm25, 0.0)
            umask = np.zeros(unit_bm25.shape[0], dtype=bool)
            umask[[self._unit_position[int(u)] for u in allowed_units]] = True
            unit_bm25 = np.where(umask, unit_bm25, 0.0)
        short_bm25, short_rows = None, None
        short = self._short_docs() if mode == "hybrid" and self.settings.fusion == "convex" else None
        if short is not None:
            short_rows = short.whole
            short_bm25 = short.chunk_scores(lexical_query)
            if allowed is not None:
                short_bm25 = np.where(mask, short_bm25, 0.0)
        pool: dict[int, None] = {}
        if short_bm25 is not None:
            in_short_docs = np.where(short_rows, short_bm25, 0.0)
            for p in top_rows(in_short_docs, 3 * n):  # a short document has ~3 chunks
                if in_short_docs[p] > 0:
                    pool[int(self.index.bm25_ids[p])] = None
        for uid in self._dense_top(qvec, n, allowed_units):
            pool.update(dict.fromkeys(self._chunks_of.get(uid, [])))
        for p in top_rows(unit_bm25, n):
            if unit_bm25[p] > 0:
                pool.update(dict.fromkeys(self._chunks_of.get(int(self.index.unit_ids[p]), [])))
        for p in top_rows(chunk_bm25, n):
            if chunk_bm25[p] > 0:
                pool[int(self.index.bm25_ids[p])] = None
        ids = list(pool)
        if not ids:
            return []
        members = [self._units_of.get(c, []) for c in ids]
        flat = [u for m in members for u in m]
        sims = dict(zip(flat, self.unit_vectors(flat) @ qvec))
        best_units = [max(m, key=lambda u: float(sims[u])) if m else -1 for m in members]
        d = np.asarray([float(sims[u]) if u >= 0 else -1.0 for u in best_units], dtype=np.float32)
        b = np.asarray([max(0.0, float(chunk_bm25[self._position[c]])) for c in ids], dtype=np.float32)
        ub = np.asarray(
            [max((float(unit_bm25[self._unit_position[u]]) for u in m), default=0.0) for m in members], dtype=np.float32
        )
        if mode == "dense":
            fused = d
        elif mode == "bm25":
            fused = b + 1e-6 * d  # dense breaks ties among equal (often zero) BM25 scores
        elif self.settings.fusion == "rrf":
            fused = fuse(d, b, "rrf", rrf_k=self.settings.rrf_k)
        else:
            lexical_weight = 1.0 - self.settings.alpha
            share = self.settings.unit_bm25_share
            chunk_part = minmax(b)
            if short_bm25 is not None:
                # the short-document index scores every chunk: whole documents, or the chunk itself
                positions = [self._position[c] for c in ids]
                chunk_part = minmax(np.asarray(short_bm25[positions], dtype=np.float32))
            lexical = (1.0 - share) * chunk_part + share * minmax(ub)
            if short_bm25 is not None:
                lexical = np.where(short_rows[positions], chunk_part, lexical)
            fused = self.settings.alpha * minmax(d) + lexical_weight * lexical
        order = np.argsort(-fused, kind="stable")
        return [_Candidate(ids[i], float(d[i]), float(b[i]), float(fused[i]), best_units[i]) for i in order]

    def rerank(self, question: str, ranked: list[_Candidate]) -> list[_Candidate]:
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
        marks = ",".join("?" * len(ids))
        return dict(self.index.conn.execute(f"SELECT id, text FROM units WHERE id IN ({marks})", ids).fetchall())

    def _short_docs(self):
        """The short-document BM25 (qa/doc_lexical.py), or None when no document is short."""
        limit = self.settings.short_document_chars
        if limit <= 0:
            return None
        if self._short_lexical_for != limit:
            ids = [r[0] for r in self.index.conn.execute("SELECT id FROM documents WHERE n_chars <= ?", (limit,))]
            if ids:
                from qa.doc_lexical import DocumentLexical

                self._short_lexical = DocumentLexical(self.index, ids)
            else:
                self._short_lexical = None
            self._short_lexical_for = limit
        return self._short_lexical

    def _chunk_rows(self, ids: Sequence[int]) -> dict[int, tuple]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.index.conn.execute(
            f"SELECT chunks.id, documents.source, chunks.line_start, chunks.line_end, chunks.char_start, chunks.char_end, chunks.text "
            f"FROM chunks JOIN documents ON documents.id = chunks.doc_id WHERE chunks.id IN ({marks})",
            [int(i) for i in ids],
        ).fetchall()
        return {r[0]: r[1:] for r in rows}

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
        """Top-k passages, near-duplicates collapsed, citations verified against the files."""
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
        rows = self._chunk_rows([c.chunk_id for c in window])
        kept: list[tuple[_Candidate, Citation, frozenset, list[Citation]]] = []
        for cand in window:
            if len(kept) >= k:
                break
            source, l0, l1, c0, c1, text = rows[cand.chunk_id]
            current = reader.is_current(source, c0, c1, text)
            cite = Citation(
                source, l0, l1, c0, c1, text, stale=not current, page=reader.page_at(source, c0) if current else None
            )
            sh = shingles(text)
            duplicate = False
            for _, other, other_sh, also in kept:
                if other.source == source:
                    if overlap_ratio((c0, c1), (other.char_start, other.char_end)) >= 0.5:
                        duplicate = True
                        break
                elif resemblance(sh, other_sh) >= self.settings.duplicate_resemblance:
                    also.append(cite)
                    duplicate = True
                    break
            if not duplicate:
                kept.append((cand, cite, sh, []))
        return [
            Passage(rank=i + 1, chunk_id=cand.chunk_id, citation=cite, scores=cand.scores, also_in=tuple(also))
            for i, (cand, cite, _, also) in enumerate(kept)
        ]

    # -- answering --------------------------------------------------------------

    def ask(self, question: str, k: int = 5, mode: str | None = None, sources: Iterable[str] | None = None) -> Answer:
        """Best answer sentence with confidence (or not found), then the top-k cited passages."""
        question = clean_question(question)
        mode = mode or self.settings.mode
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
        passages = self.search(question, k, mode, sources, qvec=qvec, reader=reader)
        timings["search"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        best = self._best_sentence(question, qvec, passages)
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
        )

    def _best_sentence(self, question: str, qvec: np.ndarray, passages: list[Passage]) -> AnswerSpan | None:
        usable = [p for p in passages[: self.settings.answer_passages] if not p.citation.stale]
        if not usable:
            return None
        idf = idf_weights(self.index.unit_lexical, analyze(question))
        unit_lists = [self._units_of.get(p.chunk_id, []) for p in usable]
        flat = [u for units in unit_lists for u in units]
        if not flat:
            return None
        marks = ",".join("?" * len(flat))
        spans = {
            r[0]: r[1:]
            for r in self.index.conn.execute(
                f"SELECT id, char_start, char_end, text FROM units WHERE id IN ({marks})", flat
            )
        }
        vectors = dict(zip(flat, self.unit_vectors(flat)))
        items = []
        for p_index, (passage, units) in enumerate(zip(usable, unit_lists)):
            for uid in units:
                start, end, text = spans[uid]
                if start >= passage.citation.char_start and end <= passage.citation.char_end:
                    items.append((p_index, start, end, text, vectors[uid]))
        scored = score_sentences(question, qvec, items, idf, self.calibration, [p.scores.score for p in usable])
        contexts = [p.citation.text for p in usable]
        top = choose_answer(question, scored, expected_answer_type(question), self.calibration.type_window, contexts)
        if top is None:
            return None
        passage = usable[top.passage_index]
        top = with_what_follows_a_heading(top, scored, passage.citation.char_start, passage.citation.text)
        evidence = support(
            question,
            top.text,
            top.dense,
            lambda terms: idf_weights(self.index.unit_lexical, terms),
            self._word_vectors,
            passage.citation.text,
        )
        text = passage.citation.text[
            top.char_start - passage.citation.char_start : top.char_end - passage.citation.char_start
        ]
        prefix = passage.citation.text[: top.char_start - passage.citation.char_start]
        line_start = passage.citation.line_start + prefix.count("\n")
        page = passage.citation.page
        citation = replace(
            passage.citation,
            line_start=line_start,
            line_end=line_start + text.count("\n"),
            char_start=top.char_start,
            char_end=top.char_end,
            text=text,
            page=None if page is None else page + prefix.count(PAGE_BREAK),
        )
        return AnswerSpan(
            citation=citation,
            confidence=self.calibration.confidence(evidence),
            passage_rank=passage.rank,
            highlights=highlight_spans(question, text),
        )

    def close(self) -> None:
        self.index.close()


def clean_question(question: str) -> str:
    """Trim and bound a question; empty ones are refused with a clear message."""
    question = " ".join(question.split())
    if not question:
        raise InputError("The question is empty.", 'Ask something, e.g. qa ask "Who did Hollande meet?"')
    return question[:MAX_QUESTION_CHARS]
