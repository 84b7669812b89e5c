"""Imports point one way (tui -> qa -> index) and heavy libraries load only when used, so --help is fast."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import pytest
from conftest import REPO

# Never imported by qa/ or index/ at all.
FORBIDDEN = ("textual", "tui")
# Imported inside the functions that need them (model load, index build, search).
DEFERRED = (
    "torch",
    "sentence_transformers",
    "transformers",
    "tokenizers",
    "faiss",
    "bm25s",
    "Stemmer",
    "onnxruntime",
    "optimum",
    "bs4",
    "pypdf",
)


def loaded_after(code: str) -> set[str]:
    """Top-level package names in sys.modules after running code in a fresh interpreter."""
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    [
        "import index.builder, index.store, index.embedder, index.lexical, index.documents, index.chunker",
        "import qa.cli, qa.engine, qa.service, qa.render, qa.results, qa.evaluate, qa.questions, index.builder",
    ],
)
def test_core_packages_import_no_ui_and_no_heavy_libraries(code):
    loaded = loaded_after(code)
    assert not loaded & set(FORBIDDEN), f"qa/index import the UI: {sorted(loaded & set(FORBIDDEN))}"
    assert not loaded & set(DEFERRED), f"heavy imports at module level: {sorted(loaded & set(DEFERRED))}"


def test_help_does_not_load_heavy_libraries():
    code = "import sys\nfrom qa.cli import cli\ntry:\n    cli.main(['ask', '--help'], standalone_mode=False)\nexcept SystemExit:\n    pass"
    loaded = loaded_after(code)
    assert not loaded & set(DEFERRED + FORBIDDEN)


def test_no_source_file_in_qa_or_index_imports_the_ui():
    offenders = []
    for folder in ("qa", "index"):
        for path in (REPO / folder).rglob("*.py"):
            for line in path.read_text(encoding="utf-8").splitlines():
                words = line.strip().split()
                if words[:1] in (["import"], ["from"]) and len(words) > 1 and words[1].split(".")[0] in FORBIDDEN:
                    # The one allowed exception: `qa chat` starts the TUI lazily, inside the command.
                    if not (path.name == "cli.py" and line.startswith((" ", "\t"))):
                        offenders.append(f"{folder}/{path.name}: {line.strip()}")
    assert offenders == []


STORE_IMPLEMENTATIONS = {
    "index/store.py",
    "index/vectors.py",
    "index/lexical.py",
    "index/lexical_build.py",
    "index/lexical_delta.py",
    "index/lexical_column.py",
    "index/stores/embedded.py",
    "index/stores/embedded_update.py",
    "index/stores/sqlite_catalog.py",
}
"""The embedded store: the only modules that may touch FAISS, SQL and BM25 arrays."""
STORE_INTERNALS = (
    "faiss",
    "sqlite3",
    "bm25s",
    "index.store",
    "index.vectors",
    "index.lexical_build",
    "index.lexical_delta",
    "index.lexical_column",
    "index.stores.embedded",
    "index.stores.embedded_update",
    "index.stores.sqlite_catalog",
)
STORE_NAMES = re.compile(r"\b(LexicalIndex|ColumnLexical|DenseIndex|LoadedIndex|load_index)\b|\.conn\b|\.execute\(")
NOT_THE_INDEX = {
    "index/stores/__init__.py": "the factory, which chooses an implementation",
    "tui/history.py": "the chat's own history database",
    "benchmarks/bench_bm25_delta.py": "measures the embedded store's BM25 delta itself",
    "benchmarks/bench_query_latency.py": "writes synthetic embedded-store files, then queries them through the seam",
    "benchmarks/bench_peers.py": "runs other libraries (LlamaIndex over FAISS) beside qa",
}


def test_only_the_store_implementations_touch_faiss_sql_or_bm25_arrays():
    """The seam (index/stores/base.py): everything else asks the catalog, vector and lexical stores."""
    offenders = []
    for folder in ("index", "qa", "tui", "benchmarks"):
        for path in sorted((REPO / folder).rglob("*.py")):
            name = path.relative_to(REPO).as_posix()
            if name in STORE_IMPLEMENTATIONS or name in NOT_THE_INDEX:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                modules = []
                if isinstance(node, ast.Import):
                    modules = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                for module in modules:
                    if any(module == m or module.startswith(m + ".") for m in STORE_INTERNALS):
                        offenders.append(f"{name}:{node.lineno} imports {module}")
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if STORE_NAMES.search(line.split("#")[0]):
                    offenders.append(f"{name}:{number}: {line.strip()}")
    assert offenders == []
