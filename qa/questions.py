"""Question sets in our JSONL format: {"question", "evidence": [{"source", "text"}]} (empty = unanswerable)."""

from __future__ import annotations

import json
from dataclasses import dataclass
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

    @property
    def answerable(self) -> bool:
        return bool(self.evidence)


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
            evidence = tuple(Evidence(e["source"], e["text"]) for e in raw.get("evidence", []))
            out.append(Question(raw["question"], evidence))
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
