"""Chat history in SQLite (in the user data dir): past questions and whole conversations."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from qa.results import Answer, AnswerSpan, Citation, Passage, Scores

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY, started REAL NOT NULL, corpus TEXT NOT NULL, title TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    asked REAL NOT NULL, question TEXT NOT NULL, answer TEXT
);
CREATE INDEX IF NOT EXISTS turns_by_conversation ON turns(conversation_id, id);
"""


@dataclass(frozen=True)
class ConversationSummary:
    """One past conversation as listed in the reopen dialog."""

    id: int
    """Row id, passed back to load it."""
    started: float
    """Unix time of its first question."""
    title: str
    """Its first question."""
    turns: int
    """How many questions it holds."""
    corpus: str
    """The corpus it was asked over."""


def _citation(d: dict) -> Citation:
    return Citation(**d)


def answer_to_json(answer: Answer) -> str:
    return json.dumps(asdict(answer), ensure_ascii=False)


def answer_from_json(raw: str) -> Answer:
    """Rebuild an Answer saved by answer_to_json (tuples came back as lists)."""
    d = json.loads(raw)

    def span(s: dict | None) -> AnswerSpan | None:
        if s is None:
            return None
        return AnswerSpan(
            _citation(s["citation"]), s["confidence"], s["passage_rank"], tuple(tuple(h) for h in s["highlights"])
        )

    passages = tuple(
        Passage(
            p["rank"],
            p["chunk_id"],
            _citation(p["citation"]),
            Scores(**p["scores"]),
            tuple(_citation(c) for c in p["also_in"]),
        )
        for p in d["passages"]
    )
    return Answer(
        d["question"],
        d["found"],
        span(d["answer"]),
        passages,
        d["mode"],
        span(d["best_guess"]),
        d["threshold"],
        d["timings_ms"],
        tuple(d.get("sources", ())),  # absent from turns saved before answers carried their filter
    )


class HistoryStore:
    """Reads and writes the history database; falls back to memory if the file is unusable."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.problem: str | None = None
        try:
            if path is None:
                raise sqlite3.OperationalError("no history file")
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(str(path), check_same_thread=False)
            self.conn.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            if path is not None:
                self.problem = (
                    f"History is off for this session: {path} is unusable ({exc}). "
                    "Move that file away to start a new history."
                )
            self.conn = sqlite3.connect(":memory:", check_same_thread=False)
            self.conn.executescript(SCHEMA)
        self.conn.execute("PRAGMA foreign_keys = ON")

    def start_conversation(self, corpus: str, title: str) -> int:
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO conversations(started, corpus, title) VALUES (?, ?, ?)", (time.time(), corpus, title[:200])
            )
        return int(cur.lastrowid)

    def add_turn(self, conversation_id: int, question: str, answer: Answer | None) -> int:
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO turns(conversation_id, asked, question, answer) VALUES (?, ?, ?, ?)",
                (conversation_id, time.time(), question, answer_to_json(answer) if answer else None),
            )
        return int(cur.lastrowid)

    def set_answer(self, turn_id: int, answer: Answer) -> None:
        with self.conn:
            self.conn.execute("UPDATE turns SET answer = ? WHERE id = ?", (answer_to_json(answer), turn_id))

    def questions(self, limit: int = 500) -> list[str]:
        """Distinct past questions, oldest first, for up/down recall."""
        rows = self.conn.execute(
            "SELECT question FROM turns GROUP BY question ORDER BY max(id) DESC LIMIT ?", (limit,)
        ).fetchall()
        return [r[0] for r in reversed(rows)]

    def conversations(self, limit: int = 200) -> list[ConversationSummary]:
        rows = self.conn.execute(
            "SELECT c.id, c.started, c.title, count(t.id), c.corpus FROM conversations c "
            "JOIN turns t ON t.conversation_id = c.id GROUP BY c.id ORDER BY c.started DESC, c.id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [ConversationSummary(*r) for r in rows]

    def turns(self, conversation_id: int) -> list[tuple[str, Answer | None]]:
        """(question, answer) pairs; answers that no longer parse come back as None."""
        out: list[tuple[str, Answer | None]] = []
        for question, raw in self.conn.execute(
            "SELECT question, answer FROM turns WHERE conversation_id = ? ORDER BY id", (conversation_id,)
        ):
            try:
                out.append((question, answer_from_json(raw) if raw else None))
            except (ValueError, KeyError, TypeError):
                out.append((question, None))
        return out

    def close(self) -> None:
        self.conn.close()
