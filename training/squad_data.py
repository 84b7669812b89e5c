"""SQuAD questions and articles from ../shared/datasets/squad2, split into sentences, and the candidate
sentences the answer model is trained and validated on (mined with the bundled MiniLM and the analyzer)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def shared_dataset(name: str) -> Path:
    """../shared/datasets/NAME beside the checkout, or beside a folder holding it (as for a git worktree)."""
    wanted = Path("shared") / "datasets" / name
    return next((p / wanted for p in ROOT.parents if (p / wanted).is_dir()), ROOT.parent / wanted)


DEFAULT_DATA = shared_dataset("squad2")
SPLIT = Path(__file__).with_name("squad_split.json")

# The dataset's own sentence rule: . ! ? followed by a space and a capital or a digit.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


@dataclass(frozen=True)
class Sentence:
    article: str
    paragraph: int
    """Index of the paragraph in the corpus' paragraph list."""
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    article: str
    answers: tuple[str, ...]
    paragraph_span: tuple[int, int]
    answer_spans: tuple[tuple[int, int], ...]

    @property
    def answerable(self) -> bool:
        return bool(self.answer_spans)


class Corpus:
    """The articles of one folder as paragraphs and sentences with char offsets into each file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.sentences: list[Sentence] = []
        self.paragraphs: list[tuple[str, int, int]] = []
        for path in sorted(folder.glob("*.txt")):
            text = path.read_text(encoding="utf-8")
            offset = 0
            for block_index, block in enumerate(text.split("\n\n")):
                start, end = offset, offset + len(block)
                offset = end + 2
                if block_index == 0 or not block.strip():
                    continue  # the title
                p = len(self.paragraphs)
                self.paragraphs.append((path.name, start, end))
                pos = 0
                for piece in _SENTENCE_END.split(block):
                    at = block.index(piece, pos)
                    pos = at + len(piece)
                    piece = piece.rstrip()  # the last paragraph of a file ends with its newline
                    if piece.strip():
                        self.sentences.append(Sentence(path.name, p, start + at, start + at + len(piece), piece))

    def paragraph_of(self, article: str, span: tuple[int, int]) -> int:
        for i, (name, start, end) in enumerate(self.paragraphs):
            if name == article and start <= span[0] < end:
                return i
        raise KeyError((article, span))


def load_questions(path: Path) -> list[Question]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            out.append(
                Question(
                    row["id"],
                    row["question"],
                    row["article"],
                    tuple(row.get("answers") or ()),
                    tuple(row["paragraph_span"]),
                    tuple(tuple(s) for s in row.get("answer_spans") or ()),
                )
            )
    return out


def split() -> tuple[set[str], set[str]]:
    """Validation articles of dev.jsonl and of squad11-extra."""
    data = json.loads(SPLIT.read_text())
    return set(data["dev_validation"]), set(data["squad11_extra_validation"])


def is_answer_sentence(sentence: Sentence, question: Question) -> bool:
    """The sentence is in the question's article and covers a gold answer span."""
    return sentence.article == question.article and any(
        sentence.start <= s and e <= sentence.end for s, e in question.answer_spans
    )


def mentions_answer(text: str, question: Question) -> bool:
    lowered = text.lower()
    return any(a.lower() in lowered for a in question.answers)


@dataclass(frozen=True)
class Group:
    """One question with its candidate sentences; labels 1 for an answering sentence, else 0."""

    question: str
    candidates: tuple[str, ...]
    labels: tuple[int, ...]
    kind: str
    """answerable | adversarial | off-corpus"""


def idf_table(corpus: Corpus, analyze) -> tuple[list[list[str]], dict[str, float]]:
    terms = [analyze(s.text) for s in corpus.sentences]
    df: dict[str, int] = {}
    for ts in terms:
        for t in set(ts):
            df[t] = df.get(t, 0) + 1
    n = len(terms)
    idf = {t: float(np.log(1 + (n - d + 0.5) / (d + 0.5))) for t, d in df.items()}
    return terms, idf


class Miner:
    """Ranks a corpus' sentences for a question by cosine (bundled MiniLM) and by IDF-weighted overlap."""

    def __init__(self, corpus: Corpus, vectors: np.ndarray, analyze, allowed: np.ndarray | None = None) -> None:
        self.corpus = corpus
        self.vectors = vectors
        self.analyze = analyze
        self.terms, self.idf = idf_table(corpus, analyze)
        self.term_sets = [set(t) for t in self.terms]
        self.allowed = allowed if allowed is not None else np.ones(len(corpus.sentences), dtype=bool)

    def lexical(self, question: str) -> np.ndarray:
        q = set(self.analyze(question))
        total = sum(self.idf.get(t, 0.0) for t in q) or 1.0
        return np.array([sum(self.idf.get(t, 0.0) for t in q & ts) / total for ts in self.term_sets])

    def group(self, question: Question, qvec: np.ndarray, size: int, kind: str, rng: np.random.Generator) -> Group:
        cos = self.vectors @ qvec
        lex = self.lexical(question.text)
        score = np.where(self.allowed, cos + 0.5 * lex, -np.inf)
        sentences = self.corpus.sentences
        own = None
        if kind != "off-corpus":
            own = self.corpus.paragraph_of(question.article, question.paragraph_span)
        positives = [i for i, s in enumerate(sentences) if s.paragraph == own and is_answer_sentence(s, question)]
        if kind == "answerable" and not positives:
            return None
        chosen: list[int] = []
        if kind == "answerable":
            chosen.append(int(rng.choice(positives)))
        same = [i for i in np.argsort(-score) if sentences[i].paragraph == own and i not in positives]
        other = [
            i
            for i in np.argsort(-score)[: 8 * size]
            if sentences[i].paragraph != own and not mentions_answer(sentences[i].text, question)
        ]
        lexical = [
            i
            for i in np.argsort(-np.where(self.allowed, lex, -np.inf))[: 4 * size]
            if sentences[i].paragraph != own and not mentions_answer(sentences[i].text, question)
        ]
        # Half of what is left from the question's own paragraph (the hardest: same topic), the rest from
        # other paragraphs ranked high by cosine + lexical, one by lexical overlap alone.
        n_same = min(len(same), (size - len(chosen)) // 2 + (1 if kind == "adversarial" else 0))
        chosen += same[:n_same]
        for i in lexical[:1] + other:
            if len(chosen) >= size:
                break
            if i not in chosen:
                chosen.append(i)
        order = rng.permutation(len(chosen))
        chosen = [chosen[i] for i in order]
        labels = tuple(int(i in positives) for i in chosen)
        return Group(question.text, tuple(sentences[i].text for i in chosen), labels, kind)
