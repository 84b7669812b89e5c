"""Citations are checked against the file when it is reachable, and against the hash of the stored text
(recorded when it was indexed) when it is not: on both stores, through the real builder and engine, with
the stored text or hash tampered with to show the check can fail."""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
from pathlib import Path

import pytest
from conftest import run_qa, write_corpus
from rich.console import Console

from index.builder import build_index
from index.store import SQLITE, current_generation
from qa.engine import Engine
from qa.render import render_answer

FILES = {
    "harbour.txt": "The harbour master is Rita Borg. Ferries leave the harbour at dawn.",
    "orchard.md": "# Orchards\n\nApple trees bloom in April. The orchard sells cider in autumn.",
    "comets.txt": "Comets have icy nuclei. A comet's tail points away from the sun.",
}
QUESTION = "Who is the harbour master?"


@pytest.fixture(params=["embedded", "postgres"])
def location(request, tmp_path) -> str:
    if request.param == "embedded":
        return str(tmp_path / "index")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_corpus(tmp_path / "docs", dict(FILES))


@contextlib.contextmanager
def _stored(location: str):
    """A writable SQL connection to the store's own tables, to tamper with them (tests only)."""
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            yield conn, "qa.passages", "text_sha256", "id", "%s"
    else:
        conn = sqlite3.connect(current_generation(Path(location)) / SQLITE)
        try:
            yield conn, "chunks", None, "id", "?"
            conn.commit()
        finally:
            conn.close()


def _tamper(location: str, what: str) -> None:
    """Change the harbour passage's stored text, its stored hash, or drop the hashes (an index from before)."""
    with _stored(location) as (conn, passages, hash_column, _, mark):
        sqlite_hashes = "chunk_hashes"
        where = f"text LIKE {mark}"
        if what == "text":
            conn.execute(f"UPDATE {passages} SET text = replace(text, 'Rita', 'Eve') WHERE {where}", ("%Rita Borg%",))
        elif what == "hash" and hash_column:
            conn.execute(f"UPDATE {passages} SET {hash_column} = repeat('0', 64) WHERE {where}", ("%Rita Borg%",))
        elif what == "hash":
            conn.execute(
                f"UPDATE {sqlite_hashes} SET sha256 = '{'0' * 64}' "
                f"WHERE chunk_id IN (SELECT id FROM chunks WHERE {where})",
                ("%Rita Borg%",),
            )
        elif what == "none" and hash_column:
            conn.execute(f"UPDATE {passages} SET {hash_column} = NULL")
        else:
            conn.execute(f"DROP TABLE {sqlite_hashes}")


def _harbour(location: str, embedder) -> tuple:
    engine = Engine.open(location, embedder)
    try:
        answer = engine.ask(QUESTION, k=3, mode="bm25")
    finally:
        engine.close()
    cited = [p for p in answer.passages if p.citation.source == "harbour.txt"]
    assert cited, "the harbour passage is found"
    out = io.StringIO()
    render_answer(answer, Console(file=out, width=300, color_system=None))
    payload = next(p for p in answer.to_json()["passages"] if p["source"] == "harbour.txt")
    return cited[0].citation, payload, out.getvalue()


def test_a_reachable_file_is_the_check(location, corpus, fake_embedder):
    build_index([corpus], location, fake_embedder)
    cite, payload, shown = _harbour(location, fake_embedder)
    assert (cite.check, cite.stale, payload["check"], payload["stale"]) == ("file", False, "file", False)
    assert "NOT VERIFIED" not in shown and "hash" not in shown
    # a changed file is still found stale by the file, even though the stored text matches its hash
    (corpus / "harbour.txt").write_text("The harbour master is Sam Vella.", encoding="utf-8")
    cite, payload, shown = _harbour(location, fake_embedder)
    assert (cite.check, cite.stale) == ("file", True) and "STALE: file changed since indexing" in shown


def test_without_the_file_the_stored_text_is_checked_against_its_hash(location, corpus, fake_embedder):
    build_index([corpus], location, fake_embedder)
    (corpus / "harbour.txt").unlink()
    cite, payload, shown = _harbour(location, fake_embedder)
    assert (cite.check, cite.stale, cite.page) == ("hash", False, None)
    assert (payload["check"], payload["stale"]) == ("hash", False) and "Rita Borg" in payload["text"]
    assert "verified by the stored text's hash (file not reachable)" in shown


@pytest.mark.parametrize("what", ["text", "hash"])
def test_a_tampered_stored_text_or_hash_is_not_verified(location, corpus, fake_embedder, what):
    build_index([corpus], location, fake_embedder)
    (corpus / "harbour.txt").unlink()
    _tamper(location, what)
    cite, payload, shown = _harbour(location, fake_embedder)
    assert (cite.check, cite.stale) == ("hash", True)
    assert (payload["check"], payload["stale"]) == ("hash", True)
    assert "NOT VERIFIED: file not reachable, and the stored text does not match its hash" in shown
    if what == "text":
        assert "Eve Borg" in cite.text  # the tampered text is what is stored, and it is flagged, not trusted


def test_an_index_without_hashes_cannot_verify_a_missing_file(location, corpus, fake_embedder):
    build_index([corpus], location, fake_embedder)
    (corpus / "harbour.txt").unlink()
    _tamper(location, "none")
    cite, payload, shown = _harbour(location, fake_embedder)
    assert (cite.check, cite.stale) == ("none", True) and payload["check"] == "none"
    assert "no stored hash to check against" in shown


def test_hashes_follow_an_incremental_update(location, corpus, fake_embedder):
    build_index([corpus], location, fake_embedder)
    (corpus / "harbour.txt").write_text("The harbour master is Sam Vella. Boats leave at noon.", encoding="utf-8")
    build_index([corpus], location, fake_embedder)
    (corpus / "harbour.txt").unlink()
    cite, payload, _ = _harbour(location, fake_embedder)
    assert (cite.check, cite.stale) == ("hash", False) and "Sam Vella" in cite.text
    assert json.dumps(payload)  # the JSON shape stays serialisable


@pytest.mark.slow
def test_qa_ask_json_on_postgresql_says_which_check_was_used(pg_url, corpus, real_embedder):
    """The real model and the command line against a real PostgreSQL: the file removed after indexing."""
    build_index([corpus], pg_url, real_embedder)
    (corpus / "harbour.txt").unlink()
    run = run_qa("ask", QUESTION, "--json", "--store", pg_url)
    assert run.returncode == 0, run.stderr
    payload = json.loads(run.stdout)
    harbour = [p for p in payload["passages"] if p["source"] == "harbour.txt"]
    assert harbour and all(p["check"] == "hash" and not p["stale"] for p in harbour)
    assert all(p["check"] == "file" for p in payload["passages"] if p["source"] != "harbour.txt")
