"""Plain `qa ask` (issue 19 item 10): the answer, then each citation with a snippet around the question's words,
no line ending in a space; --full prints the passages whole."""

from __future__ import annotations

import json

import pytest
from conftest import run_qa, write_corpus

from index.builder import build_index

FILLER = " ".join(f"Clause {n} of the lease covers the upkeep of room {n} in every season." for n in range(1, 12))
LEASE = (
    FILLER + "   \n"  # a line of the file that ends in spaces
    "The tenant pays the rent of the lighthouse on the first Monday of each month. \n\n" + FILLER + "\n"
)
FILES = {"lease.txt": LEASE, "other.txt": "The museum reopened after repairs to its glass roof.\n"}
QUESTION = "When is the rent of the lighthouse paid?"


@pytest.fixture
def lease_index(tmp_path, fake_embedder):
    corpus = write_corpus(tmp_path / "docs", FILES)
    build_index([corpus], tmp_path / "idx", fake_embedder)
    return tmp_path / "idx"


def ask_plain(index_dir, *args: str, fake: bool = True) -> list[str]:
    result = run_qa("ask", QUESTION, "-k", "2", "--index-dir", str(index_dir), *args, fake=fake)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout.splitlines()


def test_plain_ask_prints_snippets_without_trailing_spaces_and_full_prints_passages_whole(lease_index):
    short, full = ask_plain(lease_index), ask_plain(lease_index, "--full")
    for lines in (short, full):
        assert [line for line in lines if line != line.rstrip()] == []
        assert any(line.startswith("[1] lease.txt") for line in lines)
    # the snippet: one line around the question's words, cut from a passage longer than it
    snippets = [line for line in short if "lighthouse" in line and line.startswith("    ")]
    assert snippets and all(len(line) <= 4 + 162 for line in snippets)
    assert any("…" in line for line in snippets)
    labels = [i for i, line in enumerate(short) if line.startswith(("[1] ", "[2] "))]
    assert len(labels) == 2
    for i in labels:  # each citation: its label, one snippet line, a blank line
        assert short[i + 1].startswith("    ") and len(short[i + 1]) <= 4 + 162 and short[i + 2] == ""
    # --full: each cited passage's own lines, whole (without the file's trailing spaces), as --json quotes them
    payload = json.loads(
        run_qa("ask", QUESTION, "-k", "2", "--json", "--index-dir", str(lease_index), fake=True).stdout
    )
    for passage in payload["passages"]:
        for line in passage["text"].splitlines():
            assert (f"    {line.rstrip()}" if line.strip() else "") in full
            assert len(line) < 100 or f"    {line.rstrip()}" not in short, "without --full, long lines are cut"
    assert len("\n".join(full)) > len("\n".join(short))


@pytest.mark.slow
def test_plain_ask_on_the_real_pipeline_is_short_and_unpadded(seed_index_dir):
    """The real model over seeds/: five citations as snippets take a few lines; --full prints far more."""
    short = run_qa("ask", "Who did Hollande meet in Washington?", "--index-dir", str(seed_index_dir))
    full = run_qa("ask", "Who did Hollande meet in Washington?", "--full", "--index-dir", str(seed_index_dir))
    assert short.returncode == 0 and full.returncode == 0, short.stderr + full.stderr
    for out in (short.stdout, full.stdout):
        assert [line for line in out.splitlines() if line != line.rstrip()] == []
    assert short.stdout.startswith("Answer") and "[5] " in short.stdout
    assert (
        len(short.stdout.splitlines()) <= 1 + 2 + 5 * 4
    )  # answer, blank; per citation: label, also in, snippet, blank
    assert len(full.stdout) > len(short.stdout)
