"""benchmarks/_common.py: a benchmark subprocess's peak RSS is its own, not its parent's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
CHILD = f"import sys; sys.path.insert(0, {str(BENCHMARKS)!r}); from _common import peak_rss_mb; print(peak_rss_mb())"


def _child_peak() -> float:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def test_a_child_started_after_the_parent_peaked_reports_its_own_peak():
    """ru_maxrss survives execve: read alone, the child would report the parent's 600 MB."""
    block = bytearray(600 * 1024 * 1024)
    block[::4096] = b"\1" * len(block[::4096])  # touch every page so it is resident
    del block
    assert _child_peak() < 300
