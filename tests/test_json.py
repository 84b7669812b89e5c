"""The `qa ask --json` contract from issue 2: its keys, their types, and quotes that are exact file slices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_qa, write_corpus

from index.builder import build_index
from index.readers.html import html_to_text
from qa.answer import Calibration
from qa.engine import Engine, RetrievalSettings

ANSWER_KEYS = {"text", "source", "line_start", "line_end", "char_start", "char_end", "confidence"}
PASSAGE_KEYS = {
    "rank",
    "source",
    "line_start",
    "line_end",
    "char_start",
    "char_end",
    "text",
    "score",
    "scores",
    "also_in",
}
CITATION_KEYS = {"source", "line_start", "line_end", "char_start", "char_end", "text"}

SYNDICATED = (
    "Obama and Hollande agreed to “intensify” strikes against the group in Iraq and Syria, the two leaders said."
)
FILES = {
    "wire.txt": "Washington (AP)\r\n\r\n" + SYNDICATED + "\r\nThe meeting lasted two hours.\r\n",
    "paper/daily.md": "# Daily\n\nFrom the wires:\n" + SYNDICATED + "\nMr Hollande’s visit\u00a0ends on Wednesday.\n",
    "web/page.html": (
        "<html><body><h1>Visit</h1><p>Hollande travels to Moscow on Thursday to meet Putin.</p></body></html>"
    ),
    "other.txt": "The museum reopened after repairs to its glass roof.\n",
}


def file_text(root: Path, source: str) -> str:
    """What a script reading the file gets: the decoded bytes (HTML: its visible text)."""
    raw = (root / source).read_bytes().decode("utf-8")
    return html_to_text(raw) if source.endswith(".html") else raw


def check_citation(root: Path, c: dict) -> None:
    assert CITATION_KEYS <= set(c)
    assert isinstance(c["source"], str) and not c["source"].startswith("/") and "\\" not in c["source"]
    for key in ("line_start", "line_end", "char_start", "char_end"):
        assert type(c[key]) is int
    text = file_text(root, c["source"])
    assert c["text"] == text[c["char_start"] : c["char_end"]]
    assert c["line_start"] == text.count("\n", 0, c["char_start"]) + 1
    assert c["line_end"] == text.count("\n", 0, c["char_end"] - 1) + 1
    assert 1 <= c["line_start"] <= c["line_end"]


def check_payload(root: Path, payload: dict, question: str, k: int) -> None:
    """Everything issue 2 item 8 promises about one `qa ask --json` reply."""
    assert {"question", "found", "answer", "passages"} <= set(payload)
    assert payload["question"] == question
    assert type(payload["found"]) is bool
    if payload["found"]:
        answer = payload["answer"]
        assert ANSWER_KEYS <= set(answer)
        check_citation(root, answer)
        assert type(answer["confidence"]) is float and 0.0 <= answer["confidence"] <= 1.0
    else:
        assert payload["answer"] is None
    passages = payload["passages"]
    assert isinstance(passages, list) and 1 <= len(passages) <= k
    assert [p["rank"] for p in passages] == list(range(1, len(passages) + 1))
    for p in passages:
        assert PASSAGE_KEYS <= set(p)
        check_citation(root, p)
        assert {"bm25", "dense", "fused"} <= set(p["scores"]) <= {"bm25", "dense", "fused", "late", "answer"}
        assert all(type(v) is float for v in p["scores"].values())
        # the score: fused, plus the late-interaction bonus (<= rerank_weight) for re-ranked passages
        assert type(p["score"]) is float
        if "late" in p["scores"]:
            assert p["scores"]["fused"] <= p["score"] <= p["scores"]["fused"] + RetrievalSettings().rerank_weight + 1e-6
        else:
            assert p["score"] == p["scores"]["fused"]
        assert isinstance(p["also_in"], list)
        for other in p["also_in"]:
            check_citation(root, other)
            assert other["source"] != p["source"]
    # the order: by score, except that the passages the answer model read are ordered among themselves by
    # score + rerank x their best sentence's logit
    weight = Calibration.bundled().rerank
    unread = [p["score"] for p in passages if "answer" not in p["scores"]]
    read = [p["score"] + weight * p["scores"]["answer"] for p in passages if "answer" in p["scores"]]
    assert unread == sorted(unread, reverse=True) and read == sorted(read, reverse=True)


@pytest.fixture
def fake_index(tmp_path, fake_embedder):
    corpus = write_corpus(tmp_path / "docs", FILES)
    build_index([corpus], tmp_path / "idx", fake_embedder)
    return corpus, tmp_path / "idx"


@pytest.mark.parametrize("threshold", [0.0, 1.0])
def test_engine_json_matches_the_schema(fake_index, fake_embedder, threshold):
    corpus, index_dir = fake_index
    engine = Engine.open(index_dir, fake_embedder, calibration=Calibration(threshold=threshold))
    try:
        question = 'Did Obama and Hollande agree to "intensify" strikes?'
        payload = json.loads(json.dumps(engine.ask(question, k=4).to_json()))
    finally:
        engine.close()
    check_payload(corpus, payload, question, 4)
    assert payload["found"] is (threshold == 0.0)
    if payload["found"]:
        assert "“intensify”" in payload["answer"]["text"]


def test_syndicated_copy_appears_in_also_in(fake_index, fake_embedder):
    corpus, index_dir = fake_index
    engine = Engine.open(index_dir, fake_embedder)
    try:
        payload = engine.ask("intensify strikes against the group in Iraq and Syria", k=3).to_json()
    finally:
        engine.close()
    check_payload(corpus, payload, "intensify strikes against the group in Iraq and Syria", 3)
    top = payload["passages"][0]
    assert {top["source"], *(o["source"] for o in top["also_in"])} == {"wire.txt", "paper/daily.md"}


@pytest.mark.parametrize("mode", ["hybrid", "bm25"])
def test_cli_json_output(fake_index, mode):
    """The real command line over an index built with the fake embedder (the CLI reopens it with the same one)."""
    corpus, index_dir = fake_index
    question = "Where does Hollande travel on Thursday?"
    result = run_qa("ask", question, "--json", "-k", "3", "--mode", mode, "--index-dir", str(index_dir), fake=True)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    check_payload(corpus, payload, question, 3)
    assert payload["passages"][0]["source"] == "web/page.html"
    assert "Traceback" not in result.stderr


def test_cli_json_keeps_unicode_and_filters_sources(fake_index):
    corpus, index_dir = fake_index
    question = "When does Mr Hollande's visit end?"
    result = run_qa("ask", question, "--json", "--source", "paper/daily.md", "--index-dir", str(index_dir), fake=True)
    assert result.returncode == 0, result.stderr
    assert "’" in result.stdout and "\\u2019" not in result.stdout, "JSON is UTF-8, not ASCII escapes"
    payload = json.loads(result.stdout)
    check_payload(corpus, payload, question, 5)
    assert {p["source"] for p in payload["passages"]} == {"paper/daily.md"}
