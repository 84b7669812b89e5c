"""The retrieval benchmark behind `qa bench`: per-mode trec_eval metrics on a question set or a BEIR dataset."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from index.errors import InputError
from qa.answer_metrics import AnswerMetrics, AnswerOutcome, answer_metrics, answer_outcome
from qa.engine import MODES, Engine, RetrievalSettings
from qa.evaluate import evaluate_answers
from qa.metrics import DEFAULT_MEASURES, RunMetrics, evaluate_run, first_relevant_rank
from qa.questions import Question, covers_answer, load_questions, passage_matches, select_questions
from qa.results import Answer, Citation, Scores
from qa.service import open_engine
from qa.snippet import snippet

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): builder stages, then 'queries' and one stage per mode."""

SHOWN_ABOVE = 5
"""How many results ranked above the first relevant one a failure lists."""


def _noop(stage: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True)
class RankedItem:
    """One retrieved document (BEIR) or passage (question set) with its score breakdown."""

    rank: int
    """1-based position in the evaluated ranking."""
    key: str
    """Document id (BEIR) or 'source:lines' of the passage (question set)."""
    text: str
    """At most 200 characters of the document or passage, one line, for a person to judge: from the
    evidence it holds (question sets), else where the query's words are."""
    scores: Scores
    """bm25, dense and fused score of the best passage of this item."""
    relevant: bool
    """Whether the qrels or evidence count it as relevant."""


@dataclass(frozen=True)
class Failure:
    """A query whose first relevant result is not at rank 1: what was expected and what beat it.

    QuestionOutcome keeps the same record for questions that did reach rank 1 (nothing above them)."""

    query_id: str
    query: str
    expected: tuple[str, ...]
    """Relevant document ids with their opening words, or the evidence spans ('source: text')."""
    first_relevant_rank: int | None
    """Rank of the first relevant result; None when none was retrieved at all."""
    above: tuple[RankedItem, ...]
    """Results ranked above the first relevant one (at most SHOWN_ABOVE)."""
    relevant_item: RankedItem | None
    """The first relevant result itself, if it was retrieved."""


@dataclass(frozen=True)
class QuestionOutcome:
    """How one question of a question set fared in one mode, hit or miss (the chat's bench list)."""

    question: Question
    found: bool
    """Whether the engine answered (True) or said the documents do not say (False)."""
    ranking: Failure | None = None
    """The record `--failures` prints, kept for hits too (rank 1, nothing above); None when unanswerable."""
    answer: AnswerOutcome | None = None
    """Whether the answer sentence was right, and the confidence (qa/answer_metrics.py)."""
    extra: bool = False
    """The question comes from the --unanswerable file (counted unanswerable whatever it says)."""

    @property
    def first_relevant_rank(self) -> int | None:
        return self.ranking.first_relevant_rank if self.ranking else None

    @property
    def abstention_correct(self) -> bool:
        """Answered when the documents say it, flagged 'not in the documents' when they do not."""
        return self.found == self.question.answerable


@dataclass(frozen=True)
class ModeResult:
    """Metrics of one retrieval mode over the whole query set."""

    mode: str
    metrics: dict[str, float]
    """Mean of each measure (trec_eval semantics) over the queries with relevant items."""
    n_queries: int
    seconds: float
    """Wall time spent answering, including the query embeddings."""
    abstention_accuracy: float | None = None
    """Share of questions flagged correctly (found vs not-in-the-documents); None for BEIR."""
    failures: tuple[Failure, ...] = ()
    run_metrics: RunMetrics | None = field(default=None, repr=False, compare=False)
    outcomes: tuple[QuestionOutcome, ...] = field(default=(), repr=False, compare=False)
    """Every question of a question set in file order (empty for BEIR)."""
    answers: dict[str, AnswerMetrics] = field(default_factory=dict)
    """Answer figures of a question set (empty for BEIR), per group of ANSWER_GROUPS that has questions."""

    @property
    def queries_per_second(self) -> float:
        return self.n_queries / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class BenchReport:
    """Everything one `qa bench` run measured."""

    dataset: str
    """Question file name, or 'scifact (test)' for a BEIR split."""
    n_documents: int
    n_chunks: int
    n_queries: int
    """Queries with relevant items (the metric denominators)."""
    n_unanswerable: int
    index_seconds: float
    """Time to build or update the index (0 when it was already current)."""
    results: tuple[ModeResult, ...]
    settings: dict
    """Chunking, BM25 and retrieval settings the run used."""

    def to_json(self) -> dict:
        return {
            "dataset": self.dataset,
            "n_documents": self.n_documents,
            "n_chunks": self.n_chunks,
            "n_queries": self.n_queries,
            "n_unanswerable": self.n_unanswerable,
            "index_seconds": round(self.index_seconds, 3),
            "settings": self.settings,
            "modes": [
                {
                    "mode": r.mode,
                    "metrics": {k: round(v, 6) for k, v in r.metrics.items()},
                    "abstention_accuracy": r.abstention_accuracy,
                    "answers": {group: m.to_json() for group, m in r.answers.items()},
                    "queries_per_second": round(r.queries_per_second, 3),
                    "failures": [asdict(f) for f in r.failures],
                    "questions": [_outcome_json(o) for o in r.outcomes],
                }
                for r in self.results
            ],
        }


def _outcome_json(outcome: QuestionOutcome) -> dict:
    """One question's record in the JSON report: what a reader of the figures needs to recount them."""
    q, a = outcome.question, outcome.answer
    return {
        "id": q.id,
        "question": q.question,
        "answerable": q.answerable,
        "from_unanswerable_file": outcome.extra,
        "found": outcome.found,
        "given": None if a is None else a.given,
        "answer_sentence": None
        if a is None or a.sentence is None
        else dict(zip(("source", "char_start", "char_end"), a.sentence, strict=True)),
        "confidence": None if a is None else round(a.confidence, 6),
        "answer_right": None if a is None else a.right,
        "best_sentence_right": None if a is None else a.best_right,
        "first_relevant_rank": outcome.first_relevant_rank,
    }


ANSWER_GROUPS = {
    "all": "every question",
    "file": "the question file alone (its own unanswerable questions, e.g. SQuAD 2.0's adversarial ones)",
    "extra": "the question file's answerable questions with the --unanswerable file's (off-corpus)",
}
"""The groups answer figures are given for; 'file' and 'extra' only when an --unanswerable file is used."""


def answer_groups(outcomes: Sequence[QuestionOutcome]) -> dict[str, AnswerMetrics]:
    """Answer metrics of every question, and with an --unanswerable file, of each kind of unanswerable."""
    scored = [o for o in outcomes if o.answer is not None]
    groups = {"all": answer_metrics(o.answer for o in scored)}
    if any(o.extra for o in scored):
        groups["file"] = answer_metrics(o.answer for o in scored if not o.extra)
        groups["extra"] = answer_metrics(o.answer for o in scored if o.extra or o.question.answerable)
    return groups


def _check_modes(modes: Sequence[str]) -> tuple[str, ...]:
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise InputError(f"Unknown mode '{','.join(bad)}'.", f"Use a comma-separated list of: {', '.join(MODES)}.")
    return tuple(modes)


# -- question sets ----------------------------------------------------------------------------


def question_run(answer: Answer, question: Question) -> tuple[dict[str, float], dict[str, int], list[RankedItem]]:
    """A question's answer as a trec_eval run.

    With answer spans (SQuAD), the answer is one relevant item: the first passage that covers a span.
    Otherwise each evidence span is one relevant item: a passage (or a near-duplicate collapsed into it)
    that contains a not-yet-found span stands for that span. Any other passage is a non-relevant item.
    Scores are minus the passage rank, so the engine's order is kept.
    """
    run: dict[str, float] = {}
    items: list[RankedItem] = []
    found: set[str] = set()
    for passage in answer.passages:
        cites = (passage.citation, *passage.also_in)
        hits, focus = _relevant_in(question, cites, found)
        found |= hits
        keys = sorted(hits) or [f"passage-{passage.chunk_id}"]
        for key in keys:
            run[key] = -float(passage.rank)
        items.append(
            RankedItem(
                passage.rank,
                passage.citation.label,
                _window(passage.citation.text, question, focus),
                passage.scores,
                bool(hits),
            )
        )
    if question.answer_spans:
        qrels = {"answer": 1}
    else:
        qrels = {f"evidence-{j}": 1 for j in range(len(question.evidence))}
    return run, qrels, items


def _relevant_in(question: Question, cites: Sequence[Citation], found: set[str]) -> tuple[set[str], int]:
    """The relevant items not yet found that these citations hold, and where in the first citation's text
    to show from (-1: nowhere in particular)."""
    first = cites[0]
    if question.answer_spans:
        if "answer" in found:
            return set(), -1
        for c in cites:
            if covers_answer(question, c.source, c.char_start, c.char_end, c.text):
                at = min(
                    (s for s, e in question.answer_spans if first.char_start <= s and e <= first.char_end), default=0
                )
                return {"answer"}, (at - first.char_start if c is first else -1)
        return set(), -1
    hits = {
        j
        for j, ev in enumerate(question.evidence)
        if f"evidence-{j}" not in found
        and any(passage_matches(c.source, c.text, Question(question.question, (ev,))) for c in cites)
    }
    at = next((i for i in (first.text.find(question.evidence[j].text) for j in sorted(hits)) if i >= 0), -1)
    return {f"evidence-{j}" for j in hits}, at


def _window(text: str, question: Question, at: int) -> str:
    """What a person needs to judge a passage, in 200 characters: from the answer it holds (at), else
    around the question's words (qa/snippet.py)."""
    return snippet(text, question.question, 200, focus=(at, at + 1) if at >= 0 else None).text


def bench_questions(
    engine: Engine,
    questions: Sequence[Question],
    modes: Sequence[str] = MODES,
    *,
    depth: int = 100,
    measures: Sequence[str] = DEFAULT_MEASURES,
    progress: Progress = _noop,
    unanswerable: Sequence[Question] = (),
) -> tuple[ModeResult, ...]:
    """Ask every question in every mode through Engine.ask, exactly as a user would.

    unanswerable: more questions, asked after `questions` and counted as ones the documents do not answer
    (off-corpus checks); the answer figures are then given per kind of unanswerable too (answer_groups)."""
    asked = [*questions, *(q.as_unanswerable() for q in unanswerable)]
    extra = [False] * len(questions) + [True] * len(unanswerable)
    results = []
    getattr(engine.embedder, "load", lambda: None)()  # the model's start-up is not query time
    for mode in _check_modes(modes):
        pairs, run, qrels, items = [], {}, {}, {}
        started = time.perf_counter()
        for i, question in enumerate(asked):
            progress(mode, i, len(asked))
            answer = engine.ask(question.question, k=depth, mode=mode)
            pairs.append((question, answer))
            if question.answerable:
                qid = f"q{i + 1}"
                run[qid], qrels[qid], items[qid] = question_run(answer, question)
        seconds = time.perf_counter() - started
        progress(mode, len(asked), len(asked))
        metrics = evaluate_run(run, qrels, measures)
        report = evaluate_answers(pairs)
        queries = {f"q{i + 1}": q for i, q in enumerate(asked)}
        rankings = {qid: _failure(qid, queries[qid].question, _expected(queries[qid]), items[qid]) for qid in qrels}
        failures = tuple(rankings[qid] for qid in qrels if first_relevant_rank(metrics.rankings[qid], qrels[qid]) != 1)
        outcomes = tuple(
            QuestionOutcome(q, answer.found, rankings.get(f"q{i + 1}"), answer_outcome(q, answer), extra[i])
            for i, (q, answer) in enumerate(pairs)
        )
        accuracy = report.abstention_accuracy if report.n_unanswerable else None
        results.append(
            ModeResult(
                mode,
                metrics.means,
                len(qrels),
                seconds,
                accuracy,
                failures,
                metrics,
                outcomes,
                answer_groups(outcomes),
            )
        )
    return tuple(results)


def _expected(question: Question) -> tuple[str, ...]:
    """What a failure lists as expected: the evidence ('source: text'), or the gold answers' places."""
    if question.evidence:
        return tuple(f"{e.source}: {e.text}" for e in question.evidence)
    return tuple(f"{question.article}: chars {s}-{e}" for s, e in question.answer_spans)


def _failure(qid: str, query: str, expected: tuple[str, ...], items: list[RankedItem]) -> Failure:
    first = next((item for item in items if item.relevant), None)
    cut = first.rank - 1 if first else len(items)
    return Failure(qid, query, expected, first.rank if first else None, tuple(items[: min(cut, SHOWN_ABOVE)]), first)


# -- entry points for the CLI ------------------------------------------------------------------


def retrieval_settings(**overrides) -> RetrievalSettings:
    """The product's retrieval settings with the given fields replaced (None leaves a field alone)."""
    return replace(RetrievalSettings(), **{k: v for k, v in overrides.items() if v is not None})


def run_question_bench(
    config,
    questions_path: Path,
    modes: Sequence[str] = MODES,
    *,
    limit: int | None = None,
    retrieval: RetrievalSettings | None = None,
    progress: Progress = _noop,
    explicit_backend: bool = False,
    unanswerable_path: Path | None = None,
    articles: frozenset[str] | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> BenchReport:
    """Bench a question file against its corpus (default seeds/), building the index if needed.

    explicit_backend: the user named config.backend, so an index built with another one is refused
    (with the command that rebuilds it) instead of being measured under the wrong name.
    unanswerable_path: a second question file whose questions count as unanswerable (off-corpus checks).
    articles: only the questions about these articles (both files); sample: then a seeded random sample
    of at most this many questions of each file; limit: then the first N of each file."""
    questions = select_questions(load_questions(questions_path), articles, sample, seed)[:limit]
    extra = []
    if unanswerable_path is not None:
        extra = select_questions(load_questions(unanswerable_path), articles, sample, seed)[:limit]
    if not questions and not extra:
        raise InputError(
            f"No question of {questions_path} is left to ask" + (" about those articles." if articles else "."),
            "Check --articles (the questions' article names) and the question file.",
        )
    started = time.perf_counter()
    engine, build = open_engine(config, progress=progress, explicit_backend=explicit_backend)
    index_seconds = time.perf_counter() - started if build is not None else 0.0
    if retrieval is not None:
        engine.settings = retrieval
    try:
        results = bench_questions(engine, questions, modes, progress=progress, unanswerable=extra)
        n_docs, n_chunks = engine.index.manifest.n_documents, engine.index.manifest.n_chunks
        settings = {
            "chunking": engine.index.manifest.chunking,
            "bm25": engine.index.manifest.bm25,
            "retrieval": asdict(engine.settings),
        }
    finally:
        engine.close()
    answerable = sum(1 for q in questions if q.answerable)
    name = Path(questions_path).name
    if unanswerable_path is not None:
        name += f" + {Path(unanswerable_path).name} as unanswerable"
    return BenchReport(
        name,
        n_docs,
        n_chunks,
        answerable,
        len(questions) - answerable + len(extra),
        index_seconds,
        results,
        settings,
    )
