"""`qa ask --source` says the filter it was asked with (issue 19 item 7): JSON "filter", a plain line."""

from __future__ import annotations

import json

import pytest
from conftest import run_qa, write_corpus
from test_json import FILES, check_payload

from index.builder import build_index

QUESTION = "When does Mr Hollande's visit end?"


@pytest.fixture
def fake_index(tmp_path, fake_embedder):
    corpus = write_corpus(tmp_path / "docs", FILES)
    build_index([corpus], tmp_path / "idx", fake_embedder)
    return corpus, tmp_path / "idx"


def ask(index_dir, *args: str, fake: bool = True):
    result = run_qa("ask", QUESTION, "--index-dir", str(index_dir), *args, fake=fake)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_json_names_the_filter_and_null_without_one(fake_index):
    corpus, index_dir = fake_index
    filtered = json.loads(ask(index_dir, "--json", "-s", "wire.txt", "-s", "paper/daily.md"))
    check_payload(corpus, filtered, QUESTION, 5)
    assert filtered["filter"] == ["paper/daily.md", "wire.txt"]
    assert {p["source"] for p in filtered["passages"]} <= {"paper/daily.md", "wire.txt"}
    assert json.loads(ask(index_dir, "--json"))["filter"] is None


def test_plain_output_says_the_filter_first(fake_index):
    _, index_dir = fake_index
    assert ask(index_dir, "--source", "paper/daily.md").splitlines()[0] == "Searched only: paper/daily.md"
    assert "Searched only" not in ask(index_dir)


def test_batch_lines_carry_the_filter(fake_index):
    import subprocess
    import sys

    from conftest import REPO
    from fakes import FAKE_AWARE_QA

    _, index_dir = fake_index
    command = [
        sys.executable,
        "-c",
        FAKE_AWARE_QA,
        "ask",
        "--json",
        "-",
        "-s",
        "wire.txt",
        "--index-dir",
        str(index_dir),
    ]
    result = subprocess.run(command, input="ships\nvisit\n", capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["filter"] for line in result.stdout.splitlines()] == [["wire.txt"], ["wire.txt"]]


@pytest.mark.slow
def test_the_filter_is_shown_on_the_real_pipeline(seed_index_dir):
    """The issue's case: the Merkel question asked of the first seed article only."""
    source = "000_3f65fe5b4edd20f1.txt"
    question = "When will Hollande meet Angela Merkel?"
    base = ("ask", question, "--source", source, "--index-dir", str(seed_index_dir))
    payload = json.loads(run_qa(*base, "--json").stdout)
    assert payload["filter"] == [source] and {p["source"] for p in payload["passages"]} == {source}
    plain = run_qa(*base)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines()[0] == f"Searched only: {source}"
