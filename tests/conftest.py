"""Shared fixtures: all state in a temp QA_HOME, a fast fake embedder, and one real-model seed index per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"
DATA = Path(__file__).resolve().parent / "data"

os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(autouse=True)
def qa_home(tmp_path_factory, monkeypatch):
    """Every test writes its state (indexes, caches, history) under a temporary QA_HOME."""
    home = tmp_path_factory.mktemp("qa_home")
    monkeypatch.setenv("QA_HOME", str(home))
    return home


@pytest.fixture(scope="session", autouse=True)
def shared_model_cache(tmp_path_factory):
    """One ONNX export per test session (made on first use, ~15 s, needs torch), whatever QA_HOME a
    test sets: QA_MODEL_CACHE moves the exports out of QA_HOME, and child `qa` processes inherit it."""
    folder = tmp_path_factory.mktemp("model_cache")
    previous = os.environ.get("QA_MODEL_CACHE")
    os.environ["QA_MODEL_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("QA_MODEL_CACHE", None)
    else:
        os.environ["QA_MODEL_CACHE"] = previous


@pytest.fixture(autouse=True)
def fake_backend_resolves(monkeypatch):
    """An index built with the hashing fake (its manifest says backend "fake") reopens with it (tests/fakes.py)."""
    from fakes import resolve_fake_backend

    resolve_fake_backend(monkeypatch.setattr)


@pytest.fixture(scope="session")
def pg_server():
    """One PostgreSQL 18 + pgvector server for the test session (tests/pg_server.py), stopped at the end."""
    from pg_server import start

    server = start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server, request) -> str:
    """A fresh, empty database on the session's server."""
    import itertools

    counter = pg_server.__dict__.setdefault("_databases", itertools.count())
    return pg_server.create_database(f"qa_test_{next(counter)}")


@pytest.fixture
def fake_embedder():
    from fakes import HashingEmbedder

    return HashingEmbedder()


@pytest.fixture(scope="session")
def real_embedder():
    """The bundled all-MiniLM-L6-v2, loaded once per test session (about 10 s)."""
    from index.embedder import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder("torch")
    embedder.load()
    return embedder


@pytest.fixture(scope="session")
def onnx_int8_home(tmp_path_factory):
    """A QA_HOME holding the ONNX export of the bundled model, exported once per session (about 1 min, needs torch):
    the int8 file for this CPU and the fp32 onnx/model.onnx it is quantized from, so it serves both ONNX backends."""
    from index.embedder import SentenceTransformerEmbedder

    home = tmp_path_factory.mktemp("onnx_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QA_HOME", str(home))
        embedder = SentenceTransformerEmbedder("onnx-int8")
        folder, _ = embedder.onnx_file("onnx-int8")
        assert (folder / "onnx" / "model.onnx").is_file(), (
            "the int8 export writes the fp32 graph too: one export serves both"
        )
    return home


@pytest.fixture(scope="session")
def onnx_home(onnx_int8_home):
    """The same one export, for tests of the fp32 "onnx" backend."""
    return onnx_int8_home


@pytest.fixture(scope="session")
def seed_index_dir(tmp_path_factory, real_embedder):
    """A real-model index over seeds/, built once per session. Treat as read-only."""
    from index.builder import build_index

    index_dir = tmp_path_factory.mktemp("seed_index") / "index"
    build_index([SEEDS], index_dir, real_embedder)
    return index_dir


@pytest.fixture(scope="session")
def seed_engine(seed_index_dir, real_embedder):
    from qa.engine import Engine

    engine = Engine.open(seed_index_dir, real_embedder)
    yield engine
    engine.close()


def write_corpus(root: Path, files: dict[str, str | bytes]) -> Path:
    """Create a small corpus folder from {relative name: content}."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


WEB_PAGE = """<html><head><title>t</title></head><body><header><a href=/>ACME News</a><nav><a>Home</a><a>World</a></nav></header>
<h1>Harbour to close in winter</h1>
<main><p>By Ingrid Solberg</p><p>The harbour will close from December to March, the council said on Monday.
Boats already moored may stay, but no visiting boats will be allowed in.</p></main>
<aside><h2>Most read</h2><ul><li>Storm hits coast</li></ul></aside>
<footer>&copy; 2025 ACME. All rights reserved. Sign up for our newsletter.</footer></body></html>"""
"""A saved news page: a site header and menu, the headline, the article in <main>, a sidebar and a footer."""


def make_docx(blocks: list) -> bytes:
    """A Word document made with python-docx: a string is a paragraph ("# " starts a heading, "- " a list
    item), a list of lists is a table of those rows."""
    import io

    from docx import Document

    document = Document()
    for block in blocks:
        if isinstance(block, str) and block.startswith("# "):
            document.add_heading(block[2:], level=1)
        elif isinstance(block, str) and block.startswith("- "):
            document.add_paragraph(block[2:], style="List Bullet")
        elif isinstance(block, str):
            document.add_paragraph(block)
        else:
            table = document.add_table(rows=len(block), cols=len(block[0]))
            for r, row in enumerate(block):
                for c, cell in enumerate(row):
                    table.cell(r, c).text = cell
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_pdf(pages: list[list[str]]) -> bytes:
    """A minimal PDF written by hand (no PDF library): one Helvetica text line per string, one page per list."""
    objects = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    page_ids = []
    contents = []
    for lines in pages:
        ops = ["BT /F1 12 Tf 72 720 Td 14 TL"]
        for line in lines:
            esc = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({esc}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        contents.append(add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"))
    pages_obj = len(objects) + len(pages) + 1
    for c in contents:
        page_ids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
                % (pages_obj, font, c)
            )
        )
    kids = b" ".join(b"%d 0 R" % i for i in page_ids)
    assert add(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_ids))) == pages_obj
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_obj)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, catalog, xref)
    return bytes(out)


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run the real entry point (qa.cli.main, with its error handling) in this process."""
    from qa.cli import main

    monkeypatch.setattr(sys, "argv", ["qa", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def run_qa(*args: str, fake: bool = False) -> subprocess.CompletedProcess:
    """`python -m qa ARGS` in a child process, from the repository root; fake: able to reopen an index built
    with the hashing fake embedder (tests/fakes.py)."""
    from fakes import FAKE_AWARE_QA

    command = ["-c", FAKE_AWARE_QA] if fake else ["-m", "qa"]
    return subprocess.run(
        [sys.executable, *command, *args], capture_output=True, text=True, encoding="utf-8", cwd=REPO, timeout=120
    )
