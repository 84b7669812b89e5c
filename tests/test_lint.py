"""The code style CI holds the repository to: `ruff check` and `ruff format --check` (settings in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def ruff() -> str:
    """The ruff installed beside this Python (the test extra pins it), else the one on PATH."""
    beside = Path(sys.executable).with_name("ruff")
    found = str(beside) if beside.exists() else shutil.which("ruff")
    assert found, "ruff is missing: pip install -e '.[test]' -c constraints.txt"
    return found


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ruff(), *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_ruff_check_passes():
    result = run("check", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_check_passes():
    result = run("format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr
