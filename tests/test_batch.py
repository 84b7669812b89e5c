"""`qa ask --json -` (issue 19 item 10): one question per stdin line in, one `qa ask --json` object per line out."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from conftest import REPO, run_main, write_corpus
from test_json import FILES, check_payload

from index.builder import build_index

QUESTIONS = ["Where does Hollande travel on Thursday?", "", "When does Mr Hollande's visit end?"]


@pytest.fixture
def fake_index(tmp_path, fake_embedder):
    corpus = write_corpus(tmp_path / "docs", FILES)
    build_index([corpus], tmp_path / "idx", fake_embedder)
    return corpus, tmp_path / "idx"


def run_batch(stdin: str, *args: str, fake: bool) -> subprocess.CompletedProcess:
    """`qa ask --json - ARGS` in a child process, fed stdin."""
    from fakes import FAKE_AWARE_QA

    command = ["-c", FAKE_AWARE_QA] if fake else ["-m", "qa"]
    return subprocess.run(
        [sys.executable, *command, "ask", "--json", "-", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=REPO,
        timeout=900,
    )


def check_lines(root, stdout: str, questions: list[str], k: int) -> list[dict]:
    """One JSON object per question, in order: the `qa ask --json` shape, or an error object for an empty line."""
    lines = stdout.splitlines()
    assert len(lines) == len(questions), stdout
    payloads = [json.loads(line) for line in lines]
    for question, payload in zip(questions, payloads, strict=True):
        if question:
            check_payload(root, payload, question, k)
        else:
            assert payload == {"question": "", "error": payload["error"]}
            assert payload["error"].startswith("The question is empty.")
    return payloads


def test_batch_answers_each_line_and_reports_an_empty_one(fake_index):
    corpus, index_dir = fake_index
    result = run_batch("\n".join(QUESTIONS) + "\n", "-k", "3", "--index-dir", str(index_dir), fake=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    payloads = check_lines(corpus, result.stdout, QUESTIONS, 3)
    assert payloads[0]["passages"][0]["source"] == "web/page.html"
    assert "’" in result.stdout, "UTF-8 JSON, as qa ask --json prints"


def test_batch_passes_mode_and_source_to_every_question(fake_index):
    corpus, index_dir = fake_index
    args = ("--mode", "bm25", "--source", "paper/daily.md", "--index-dir", str(index_dir))
    result = run_batch("\n".join(QUESTIONS), *args, fake=True)  # no newline after the last line
    assert result.returncode == 0, result.stderr
    for payload in check_lines(corpus, result.stdout, QUESTIONS, 5):
        if "error" not in payload:
            assert payload["mode"] == "bm25"
            assert {p["source"] for p in payload["passages"]} == {"paper/daily.md"}


def test_batch_loads_the_model_and_index_once(fake_index, monkeypatch, capsys):
    """Three lines, one Engine.open and one embedder made (in this process, to count the calls)."""
    import qa.engine

    corpus, index_dir = fake_index
    opened, made = [], []
    real_open, real_make = qa.engine.Engine.open.__func__, qa.engine.make_embedder

    def counting_open(cls, *args, **kwargs):
        opened.append(args)
        return real_open(cls, *args, **kwargs)

    def counting_make(*args, **kwargs):
        made.append(args)
        return real_make(*args, **kwargs)

    monkeypatch.setattr(qa.engine.Engine, "open", classmethod(counting_open))
    monkeypatch.setattr(qa.engine, "make_embedder", counting_make)
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(QUESTIONS) + "\n"))
    code, out, err = run_main(monkeypatch, capsys, "ask", "--json", "-", "-k", "2", "--index-dir", str(index_dir))
    assert code == 0, err
    check_lines(corpus, out, QUESTIONS, 2)
    assert (len(opened), len(made)) == (1, 1)


def test_batch_needs_json_and_refuses_an_unknown_source_in_one_line(fake_index):
    _, index_dir = fake_index
    result = run_batch("ships\n", "--index-dir", str(index_dir), fake=True)
    assert result.returncode == 0  # with --json (run_batch adds it)
    from fakes import FAKE_AWARE_QA

    plain = subprocess.run(
        [sys.executable, "-c", FAKE_AWARE_QA, "ask", "-", "--index-dir", str(index_dir)],
        input="ships\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert plain.returncode == 2 and "add --json" in plain.stderr and "Traceback" not in plain.stderr
    unknown = run_batch("ships\nboats\n", "--source", "nope.txt", "--index-dir", str(index_dir), fake=True)
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.strip().splitlines() == [
        "Error: Not in the index: nope.txt. Use a source name as listed by: qa sources"
    ]


@pytest.mark.slow
def test_batch_on_the_real_pipeline(seed_index_dir):
    """The real model and index over seeds/: answers per line, the empty line's error, exit 0."""
    questions = ["Who did Hollande meet in Washington?", "", 'What did Obama and Hollande agree to "intensify"?']
    result = run_batch("\n".join(questions) + "\n", "-k", "3", "--index-dir", str(seed_index_dir), fake=False)
    assert result.returncode == 0, result.stderr
    payloads = check_lines(REPO / "seeds", result.stdout, questions, 3)
    assert payloads[0]["found"]
    assert any("Obama will meet with his French counterpart" in p["text"] for p in payloads[0]["passages"])
    assert payloads[2]["found"] and "“intensify”" in payloads[2]["answer"]["text"]
