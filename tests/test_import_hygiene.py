"""Imports point one way (tui -> qa -> index) and heavy libraries load only when used, so --help is fast."""

from __future__ import annotations

import json
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
