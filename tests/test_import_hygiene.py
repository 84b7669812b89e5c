"""Imports point one way (tui -> qa -> index) and heavy libraries load only when used, so --help is fast."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Callable, Sequence

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
        "import index.builder, index.store, index.embedder, index.lexical, index.readers, index.walk, index.chunker",
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
    "index/stores/postgres.py",
    "index/stores/pg_catalog.py",
    "index/stores/pg_lexical.py",
    "index/stores/pg_copy.py",
}
"""The embedded and PostgreSQL stores: the only modules that may touch FAISS, SQL and BM25 arrays."""
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
    "psycopg",
    "pgvector",
    "index.stores.postgres",
    "index.stores.pg_catalog",
    "index.stores.pg_lexical",
    "index.stores.pg_copy",
)
STORE_NAMES = re.compile(r"\b(LexicalIndex|ColumnLexical|DenseIndex|LoadedIndex|load_index)\b|\.conn\b|\.execute\(")
NOT_THE_INDEX = {
    "index/stores/__init__.py": "the factory, which chooses an implementation",
    "tui/history.py": "the chat's own history database",
    "benchmarks/bench_bm25_delta.py": "measures the embedded store's BM25 delta itself",
    "benchmarks/bench_query_latency.py": "writes synthetic embedded-store files, then queries them through the seam",
    "benchmarks/bench_peers.py": "runs other libraries (LlamaIndex over FAISS) beside qa",
    "benchmarks/bench_postgres.py": "reads the PostgreSQL store's table sizes and its HNSW setting for the benchmark",
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


def module_name(path, root=REPO) -> str:
    """Dotted name of a source file under root (a package's __init__.py is the package)."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


ImportNode = ast.Import | ast.ImportFrom


def runtime_imports(tree: ast.Module) -> list[ImportNode]:
    """Import statements that run: at module level or inside functions, not under `if TYPE_CHECKING:`."""
    found, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        else:
            todo.extend(ast.iter_child_nodes(node))
    return found


def module_level_imports(tree: ast.Module) -> list[ImportNode]:
    """Import statements outside functions and classes, including those under `if TYPE_CHECKING:` and `try:`."""
    found = []

    def visit(body) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            for field in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, field, None)
                if isinstance(inner, list):
                    visit(inner)

    visit(tree.body)
    return found


def import_graph(
    packages: Sequence[str],
    root=REPO,
    statements: Callable[[ast.Module], list[ImportNode]] = runtime_imports,
    package_edges: bool = False,
) -> dict[str, set[str]]:
    """module -> the modules of packages it imports through `statements`, relative imports resolved.
    `from pkg import submodule` names the submodule, and with package_edges pkg too (its __init__ runs first);
    `from module import name` names the module. A submodule's implicit load of its parent package is not an
    edge: Python runs the package's __init__ first."""
    files = {module_name(path, root): path for package in packages for path in sorted((root / package).rglob("*.py"))}

    def known(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in statements(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges |= {known(alias.name) for alias in node.names}
                continue
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            if package_edges:
                edges.add(known(base))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                edges.add(full if full in files else known(base))
        graph[name] = edges - {None, name}
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of two or more nodes (a cycle), sorted. Tarjan's algorithm, iterative:
    no recursion limit on deep graphs. Edges to nodes outside the graph are ignored."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []
    for start in sorted(graph):
        if start in order:
            continue
        work = [(start, iter(sorted(graph[start])))]
        order[start] = low[start] = len(order)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            step = next((e for e in edges if e in graph), None)
            if step is not None:
                if step not in order:
                    order[step] = low[step] = len(order)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph[step]))))
                elif step in on_stack:
                    low[node] = min(low[node], order[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == order[node]:
                group = []
                while not group or group[-1] != node:
                    group.append(stack.pop())
                    on_stack.discard(group[-1])
                if len(group) > 1:
                    groups.append(sorted(group))
    return sorted(groups)


def import_cycles(packages: Sequence[str], root=REPO) -> list[list[str]]:
    """The import cycles among the modules of packages, imports inside functions included."""
    return strongly_connected(import_graph(packages, root))


def module_level_cycles(root) -> list[list[str]]:
    """Groups of modules of qa/, index/ and tui/ under root that import each other in a ring at module level."""
    return strongly_connected(import_graph(("qa", "index", "tui"), root, module_level_imports, package_edges=True))


def test_no_import_cycles_in_index():
    """Imports inside functions count: one that only dodges a cycle at import time still ties the modules."""
    assert import_cycles(["index"]) == []


def test_the_cycle_check_finds_a_cycle_closed_inside_a_function(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    files = {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg import b\n",
        "pkg/b.py": "def late():\n    from pkg.sub import c\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/c.py": "from ..a import x\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.d\n",
        "pkg/d.py": "import pkg.sub.c\n",
        "pkg/e.py": "from pkg import a\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert import_cycles(["pkg"], tmp_path) == [["pkg.a", "pkg.b", "pkg.sub.c"]]


def test_no_import_cycles_among_qa_index_and_tui():
    assert module_level_cycles(REPO) == []


def test_the_cycle_check_sees_a_cycle_through_type_checking_and_relative_imports(tmp_path):
    (tmp_path / "tui").mkdir()
    (tmp_path / "tui" / "__init__.py").write_text("")
    (tmp_path / "tui" / "a.py").write_text("from tui.b import thing\n")
    (tmp_path / "tui" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import x\n"
    )
    (tmp_path / "tui" / "c.py").write_text("def f():\n    from tui.a import thing\n")  # inside a function: allowed
    assert module_level_cycles(tmp_path) == [["tui.a", "tui.b"]]
