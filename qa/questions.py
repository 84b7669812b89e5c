"""Question sets in our JSONL format: {"question", "evidence": [{"source", "text"}]} (empty = unanswerable).

SQuAD-style lines (../shared/datasets/squad2) add "id", "article" and "answer_spans" (char offsets of each
gold answer in the article's file); a passage or answer sentence is then right when it covers a span.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from index.errors import InputError
from index.normalize import squash


@dataclass(frozen=True)
class Evidence:
    """A span that answers the question, in one source."""

    source: str
    text: str


@dataclass(frozen=True)
class Question:
    """One evaluation question; no evidence means the documents cannot answer it."""

    question: str
    evidence: tuple[Evidence, ...]
    article: str | None = None
    """The source the question was written about (SQuAD's "article"); None when the file does not say."""
    answer_spans: tuple[tuple[int, int], ...] = ()
    """(start, end) char offsets of each gold answer in the article's text; () when the file gives none."""
    id: str | None = None

    @property
    def answerable(self) -> bool:
        return bool(self.evidence) or bool(self.answer_spans)

    @property
    def articles(self) -> frozenset[str]:
        """The sources the question is about: its article, else its evidence's sources."""
        return frozenset([self.article]) if self.article else frozenset(ev.source for ev in self.evidence)

    def as_unanswerable(self) -> Question:
        """The same question counted as one the documents do not answer (an off-corpus check)."""
        return replace(self, evidence=(), answer_spans=())


def load_questions(path: Path) -> list[Question]:
    out = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"Cannot read question file {path}: {exc.strerror or exc}.", "Check the path.") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            evidence = tuple(Evidence(e["source"], e["text"]) for e in raw.get("evidence") or [])
            spans = tuple((int(a), int(b)) for a, b in raw.get("answer_spans") or [])
            article = raw.get("article")
            if spans and not isinstance(article, str):
                raise ValueError("answer_spans need an article")
            qid = raw.get("id")
            out.append(Question(raw["question"], evidence, article, spans, None if qid is None else str(qid)))
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"{path}:{number} is not a question line ({exc}).",
                'Each line must be {"question": "...", "evidence": [{"source": "...", "text": "..."}]}.',
            ) from exc
    return out


def passage_matches(source: str, text: str, question: Question) -> bool:
    """A passage is a hit when it comes from an evidence source and contains its span (whitespace-normalised)."""
    body = squash(text)
    return any(source == ev.source and squash(ev.text) in body for ev in question.evidence)


def covers_answer(question: Question, source: str, char_start: int, char_end: int, text: str) -> bool:
    """A passage or sentence is right when it comes from the question's article and its char range covers one
    of the answer spans; for a question without spans, when it holds an evidence text in that source."""
    if question.answer_spans:
        return source == question.article and any(
            char_start <= start and end <= char_end for start, end in question.answer_spans
        )
    return passage_matches(source, text, question)


def article_names(spec: str) -> frozenset[str]:
    """Articles named by a comma list ("Normans.txt,Rhine.txt"), a JSON file of lists (every list in it,
    as training/squad_split.json), or FILE.json:KEY[,KEY] (those lists only)."""
    path, _, keys = spec.partition(".json:")
    path = path + ".json" if keys else spec
    if not path.endswith(".json"):
        names = frozenset(n.strip() for n in spec.split(",") if n.strip())
        if not names:
            raise InputError(
                f"--articles {spec!r} names no article.", "Give article names, e.g. Normans.txt,Rhine.txt."
            )
        return names
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"Cannot read the article list {path} ({exc}).", "Give a JSON file of lists, or a comma list of names."
        ) from exc
    lists = {k: v for k, v in raw.items() if isinstance(v, list)} if isinstance(raw, dict) else {}
    wanted = [k.strip() for k in keys.split(",") if k.strip()] or list(lists)
    unknown = [k for k in wanted if k not in lists]
    if unknown or not wanted:
        raise InputError(
            f"{path} has no list named {', '.join(unknown) or 'at all'}.",
            f"Use one of: {', '.join(lists) or '(none)'}, as {path}:KEY.",
        )
    return frozenset(str(name) for key in wanted for name in lists[key])


def select_questions(
    questions: Sequence[Question],
    articles: frozenset[str] | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> list[Question]:
    """The questions about the given articles (all when None), then a seeded random sample of at most
    `sample` of them, kept in file order."""
    kept = [q for q in questions if articles is None or q.articles & articles]
    if sample is not None and sample < len(kept):
        chosen = sorted(random.Random(seed).sample(range(len(kept)), sample))
        kept = [kept[i] for i in chosen]
    return kept
