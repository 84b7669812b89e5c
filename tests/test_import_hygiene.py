"""Imports point one way (tui -> qa -> index) and heavy libraries load only when used, so --help is fast."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest
from conftest import REPO

# Never imported by qa/ or index/ at all.
FORBIDDEN = ("textual", "tui", "textual_serve")
# Loaded by `qa serve` only.
SERVER = ("textual_serve", "aiohttp")
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


def core_modules() -> list[str]:
    return [
        ".".join(path.relative_to(REPO).with_suffix("").parts)
        for folder in ("qa", "index")
        for path in sorted((REPO / folder).rglob("*.py"))
        if path.name != "__main__.py"  # runs the CLI
    ]


def test_no_module_of_qa_or_index_loads_the_ui():
    loaded = loaded_after("\n".join(f"import {name}" for name in core_modules()))
    assert not loaded & set(FORBIDDEN), f"qa/index import the UI: {sorted(loaded & set(FORBIDDEN))}"


def loaded_by_qa(*args: str) -> set[str]:
    """Packages loaded by running qa's entry point with args."""
    run = f"import sys\nfrom qa.cli import main\nsys.argv = ['qa', *{args!r}]\n"
    return loaded_after(run + "try:\n    main()\nexcept SystemExit:\n    pass")


@pytest.mark.parametrize("command", ["index", "ask", "sources", "bench"])
def test_qas_own_commands_load_no_ui_and_no_heavy_library(command):
    loaded = loaded_by_qa(command, "--help")
    assert not loaded & set(DEFERRED + FORBIDDEN + SERVER), sorted(loaded & set(DEFERRED + FORBIDDEN + SERVER))


def test_the_full_help_lists_the_tui_commands_without_loading_textual():
    loaded = loaded_by_qa("--help")
    assert "tui" in loaded  # chat and serve are listed: tui/cli.py registers them
    assert not loaded & {"textual", *DEFERRED, *SERVER}, sorted(loaded & {"textual", *DEFERRED, *SERVER})


def imported_names(path) -> list[str]:
    """Every module a file imports: import statements at any depth, and import_module/__import__ of a literal."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.append(node.args[0].value)
    return names


def test_no_source_file_in_qa_or_index_imports_the_ui():
    offenders = [
        f"{path.relative_to(REPO)}: {name}"
        for folder in ("qa", "index")
        for path in (REPO / folder).rglob("*.py")
        for name in imported_names(path)
        if name.split(".")[0] in FORBIDDEN
    ]
    assert offenders == []


def test_the_check_sees_an_import_of_the_ui_inside_a_function(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def chat():\n    from tui.app import run_chat\n    importlib.import_module('textual.app')\n")
    assert imported_names(sample) == ["tui.app", "textual.app"]
