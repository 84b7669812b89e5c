"""Shared helpers for the speed benchmarks: medians, peak RSS, SciFact as files, JSON results and PNG plots."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
IMAGES = REPO / "docs" / "img"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run as `python benchmarks/x.py` from a checkout

from training.squad_data import shared_dataset  # noqa: E402

SCIFACT = shared_dataset("scifact")


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): an observed value, never an interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, int(-(-q * len(ordered) // 100)))
    return float(ordered[min(rank, len(ordered)) - 1])


def time_call(fn: Callable[[], object]) -> tuple[float, object]:
    t = time.perf_counter()
    value = fn()
    return time.perf_counter() - t, value


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident set size of this process (or of its waited-for children), in MB (10^6 bytes).

    For this process, Linux's VmHWM: getrusage's ru_maxrss survives execve, so a child started by a
    parent that once held 1.8 GB reports 1.8 GB as its own peak (tests/test_bench_common.py shows it).
    """
    if not children:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6  # kB
        except OSError:
            pass
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss * 1024 / 1e6  # Linux reports KiB


def rss_mb() -> float:
    """Current resident set size in MB."""
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def machine() -> dict:
    """What the numbers were measured on, including how busy the shared machine was."""
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        **cpu(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    try:
        info["git"] = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def cpu() -> dict:
    """The processor's model and its widest vector extension (the int8 encoder's kernels depend on it)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {"cpu": platform.processor()}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    widest = next((f for f in ("avx512_vnni", "avx512f", "avx2", "avx") if f in flags), "sse")
    return {"cpu": fields.get("model name", platform.processor()), "simd": widest}


def write_result(name: str, payload: Mapping) -> Path:
    """benchmarks/results/<name>.json with the command line and machine info beside the numbers."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    body = {"command": " ".join(["python", *sys.argv]), "machine": machine(), **payload}
    path.write_text(json.dumps(body, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(REPO)}", file=sys.stderr)
    return path


def plot_bars(
    name: str,
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    ylabel: str,
    target: float | None = None,
    target_label: str = "target",
    log: bool = False,
) -> Path:
    """A grouped bar chart in docs/img/<name>.png; a dashed line marks the target if given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    IMAGES.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7.5, 3.8), dpi=110)
    width = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series.items()):
        xs = [x + (i - (len(series) - 1) / 2) * width for x in range(len(labels))]
        bars = ax.bar(xs, values, width, label=label)
        ax.bar_label(bars, labels=[f"{v:.3g}" for v in values], fontsize=7, padding=2)
    if target is not None:
        ax.axhline(target, linestyle="--", color="black", linewidth=1, label=target_label)
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.margins(y=0.15)
    fig.tight_layout()
    path = IMAGES / f"{name}.png"
    fig.savefig(path)
    plt.close(fig)
    print(f"wrote {path.relative_to(REPO)}", file=sys.stderr)
    return path


def write_beir_files(
    dataset_dir: Path, folder: Path, limit: int | None = None, keep: Sequence[str] | None = None
) -> list[str]:
    """Write BEIR corpus rows as <folder>/<doc id>.txt (title + " " + text): the raw files indexing starts from.

    limit: the first N rows; keep: exactly these ids.
    """
    from qa.beir import load_beir

    dataset = load_beir(Path(dataset_dir))
    folder.mkdir(parents=True, exist_ok=True)
    ids = [doc_id for doc_id in (keep if keep is not None else dataset.corpus) if dataset.corpus.get(doc_id)][:limit]
    for doc_id in ids:
        path = folder / f"{doc_id}.txt"
        text = dataset.corpus[doc_id]
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return ids


def engine_doc_run(
    engine, queries: Mapping[str, str], mode: str = "hybrid", depth: int = 100
) -> dict[str, dict[str, float]]:
    """query id -> {doc id: score}: each document scores its best chunk (files are named <doc id>.txt)."""
    run: dict[str, dict[str, float]] = {}
    for qid, text in queries.items():
        qvec = engine.embedder.embed([text])[0]
        scores: dict[str, float] = {}
        ranked = engine.candidates(text, qvec, mode)[: depth * 4]
        source_of = engine.index.catalog.sources_of([c.chunk_id for c in ranked])
        for cand in ranked:
            doc = Path(source_of[cand.chunk_id]).stem
            if doc not in scores or cand.fused > scores[doc]:
                scores[doc] = cand.fused
        run[qid] = scores
    return run


def ndcg10(run: Mapping[str, Mapping[str, float]], qrels: Mapping[str, Mapping[str, int]]) -> float:
    """Mean nDCG@10 over the qrels queries, with the project's trec_eval-compatible metrics."""
    from qa.metrics import evaluate_run

    return float(evaluate_run(run, qrels, ("ndcg@10",)).mean("ndcg@10"))


def embedder_for(backend: str):
    """The model for a backend name, or for "fake" the hashing test double in tests/fakes.py (fast, not a model)."""
    if backend == "fake":
        sys.path.insert(0, str(REPO / "tests"))
        from fakes import HashingEmbedder

        return HashingEmbedder()
    from index.embedder import make_embedder

    return make_embedder(backend)
