"""BEIR datasets (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) as in-memory documents, queries and qrels."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from index.errors import InputError
from index.readers import Document

HINT = "A BEIR folder holds corpus.jsonl, queries.jsonl and qrels/test.tsv (see https://github.com/beir-cellar/beir)."


@dataclass(frozen=True)
class BeirDataset:
    """One split of a BEIR dataset: every corpus row, and the queries that have qrels in the split."""

    name: str
    """Folder name, e.g. 'scifact'."""
    folder: Path
    """Where the files were read from."""
    split: str
    """Which qrels file: 'test', 'train' or 'dev'."""
    corpus: dict[str, str]
    """document id -> indexed text, `title + " " + text` stripped, as BEIR's dense models and Anserini flat see it."""
    queries: dict[str, str]
    """query id -> query text, only for queries with qrels in this split, in file order."""
    qrels: dict[str, dict[str, int]]
    """query id -> {document id: relevance grade}."""


def document_text(title: str, text: str) -> str:
    """BEIR's rule for a document with a title: title, one space, text, outer whitespace stripped."""
    return f"{title} {text}".strip() if title else text.strip()


def _read_jsonl(path: Path) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror or exc}.", HINT) from exc
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or "_id" not in row:
                raise ValueError("no _id")
        except ValueError as exc:
            raise InputError(f"{path}:{number} is not a BEIR JSON line ({exc}).", HINT) from exc
        rows.append(row)
    return rows


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """query-id<TAB>corpus-id<TAB>score rows; a header line is skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror or exc}.", HINT) from exc
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(lines, 1):
        parts = line.rstrip("\n").split("\t")
        if not line.strip() or (number == 1 and parts[-1] == "score"):
            continue
        try:
            qid, did, grade = parts[0], parts[-2], int(float(parts[-1]))
        except (IndexError, ValueError) as exc:
            raise InputError(f"{path}:{number} is not a qrels row ({exc}).", HINT) from exc
        qrels.setdefault(qid, {})[did] = grade
    return qrels


def load_beir(folder: Path, split: str = "test") -> BeirDataset:
    """Read a BEIR folder; fails with a one-line message when a file is missing or malformed."""
    folder = Path(folder)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for path in (folder / "corpus.jsonl", folder / "queries.jsonl", qrels_path):
        if not path.is_file():
            raise InputError(f"{path} is missing.", HINT)
    corpus = {
        str(r["_id"]): document_text(str(r.get("title") or ""), str(r.get("text") or ""))
        for r in _read_jsonl(folder / "corpus.jsonl")
    }
    qrels = read_qrels(qrels_path)
    all_queries = {str(r["_id"]): str(r.get("text") or "") for r in _read_jsonl(folder / "queries.jsonl")}
    missing = [q for q in qrels if q not in all_queries]
    if missing:
        raise InputError(f"{len(missing)} queries in {qrels_path} are not in queries.jsonl (e.g. {missing[0]}).", HINT)
    queries = {qid: text for qid, text in all_queries.items() if qid in qrels}
    return BeirDataset(folder.resolve().name, folder.resolve(), split, corpus, queries, qrels)


def subset(dataset: BeirDataset, query_ids: Sequence[str]) -> BeirDataset:
    """The same corpus with only some of the queries (e.g. a sample for a quick run)."""
    wanted = [q for q in query_ids if q in dataset.queries]
    return BeirDataset(
        dataset.name,
        dataset.folder,
        dataset.split,
        dataset.corpus,
        {q: dataset.queries[q] for q in wanted},
        {q: dataset.qrels[q] for q in wanted},
    )


def as_documents(dataset: BeirDataset) -> list[Document]:
    """One in-memory Document per corpus row, named by its id, ready for index.builder.build_index."""
    out = []
    for doc_id, text in dataset.corpus.items():
        if not text:
            continue  # the builder refuses empty documents; an empty row can never be retrieved anyway
        out.append(
            Document(
                source=doc_id,
                path=dataset.folder / "corpus.jsonl",
                text=text,
                sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                encoding="utf-8",
            )
        )
    return out


GRANULARITIES = ("chunks", "document")


class WholeDocumentEmbedder:
    """Wraps an embedder so the chunker keeps each document whole: one passage per corpus row.

    This is how BEIR/MTEB evaluate dense models (the encoder silently truncates a document at
    its 256-wordpiece limit) and how Anserini's flat BM25 sees a document; it exists only to
    reproduce their published numbers. Each sentence counts as one "token" to the chunker and the
    limit is MAX_SENTENCES, so a document never splits (some abstracts hold hundreds of ". . ."
    sentences). The fingerprint differs from the wrapped embedder's, so the product never opens
    such an index by mistake.
    """

    MAX_SENTENCES = 1_000_000

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.backend = inner.backend

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def max_tokens(self) -> int:
        return self.MAX_SENTENCES

    def fingerprint(self) -> str:
        return f"{self.inner.fingerprint()}:whole-document"

    def load(self) -> None:
        getattr(self.inner, "load", lambda: None)()

    def offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return [[(0, len(text))] if text.strip() else [] for text in texts]

    def embed(self, texts: Sequence[str]):
        return self.inner.embed(texts)
