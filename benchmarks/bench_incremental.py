"""Incremental indexing: after editing one file, `qa index` vs embedding that file alone.

    python benchmarks/bench_incremental.py --dataset ../shared/datasets/scifact --repeat 3

Builds the SciFact files once (not timed), then repeatedly appends a sentence to one file
and re-runs the incremental build in the same process with the model already loaded. The
reference is the time the same embedder takes to embed just that file's texts (the rows
the update wrote for it). Target: incremental build <= 2x that. The CLI's wall time for the
same update (`qa index`, model load included) is reported beside it.

Each edit is followed by a second one to the same file, indexed as `qa index --watch` and the chat
do after a change notification: build_index(changed_paths={that file}), which looks at that file
alone instead of comparing every file with the index ("hinted" below), and removes the
generation it replaced afterwards, in a thread (the store's clean_up; not timed).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, SCIFACT, embedder_for, median, plot_bars, time_call, write_beir_files, write_result


def file_texts(index_dir: Path, source: str) -> list[str]:
    """What the index embedded for one document: its sentence units."""
    from index.stores import open_store

    with open_store(index_dir).read_catalog() as (catalog, _):
        doc_id = catalog.document_ids([source])[source]
        return [unit.text for unit in catalog.all_units() if unit.doc_id == doc_id]


def save_to_update(folder: Path, ids: list[str], index_dir: Path, embedder, repeat: int) -> list[dict]:
    """As `qa index --watch` runs: the real change feed (index/changes.py) reports a saved file, which
    is compared and indexed from its path alone. Seconds from the write to the notification, and to
    the updated index being live."""
    from index.builder import build_index, changes_since
    from index.changes import ChangeFeed
    from index.stores import open_store

    feed = ChangeFeed([folder])
    runs = []
    try:
        if not feed.wait_ready():
            print(f"no change notifications here ({feed.broken}): save-to-update not measured", flush=True)
            return []
        for r in range(repeat):
            path = folder / f"{ids[(r * 991 + 5) % len(ids)]}.txt"
            text = path.read_text(encoding="utf-8") + f" This sentence was saved while watched, edit {r}."
            saved = time.perf_counter()
            path.write_text(text, encoding="utf-8")
            assert feed.wait(10.0), "no notification within 10 s"
            notified = time.perf_counter()
            paths = feed.take()
            assert changes_since(open_store(index_dir), [folder], changed_paths=paths)
            report = build_index([folder], index_dir, embedder, changed_paths=paths, remove_replaced=False)
            done = time.perf_counter()
            assert report.changed == 1, report.summary()
            open_store(index_dir).clean_up()
            runs.append({"file": path.name, "notify_s": notified - saved, "save_to_updated_s": done - saved})
            print(
                f"  watched edit {r + 1}: notified after {notified - saved:.3f}s, "
                f"index updated {done - saved:.3f}s after the save",
                flush=True,
            )
            time.sleep(0.3)
            feed.take()  # later events of the same save, already indexed
    finally:
        feed.close()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--docs", type=int, default=None, help="Only the first N corpus rows")
    parser.add_argument(
        "--backend",
        default=None,
        help="Default: the product's default backend; "
        "'fake': the hashing test embedder (no model: stage times only, no CLI run)",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "qa-bench-incremental")
    parser.add_argument("--name", default="incremental")
    args = parser.parse_args()

    from index.builder import build_index
    from index.embedder import DEFAULT_BACKEND, SentenceTransformerEmbedder
    from index.stores import open_store

    backend = args.backend or DEFAULT_BACKEND
    folder = args.work / ("scifact" if args.docs is None else f"scifact-{args.docs}")
    ids = write_beir_files(args.dataset, folder, args.docs)
    index_dir = args.work / f"index-{backend}-{len(ids)}"
    if backend == "fake":
        embedder = embedder_for("fake")
    else:
        embedder = SentenceTransformerEmbedder(backend)
        embedder.load()
    initial_s, report = time_call(lambda: build_index([folder], index_dir, embedder))
    print(f"initial (or catch-up) build: {initial_s:.1f}s, {report.summary()}", flush=True)
    runs = []
    for r in range(args.repeat):
        source = f"{ids[(r * 997) % len(ids)]}.txt"
        path = folder / source
        path.write_text(
            path.read_text(encoding="utf-8") + f" This sentence was added by edit {r} of the incremental benchmark.",
            encoding="utf-8",
        )
        update_s, report = time_call(lambda: build_index([folder], index_dir, embedder))
        assert report.changed == 1 and report.new == 0, report.summary()
        path.write_text(
            path.read_text(encoding="utf-8") + f" A second sentence was added by edit {r}.", encoding="utf-8"
        )
        # As the watches run it: the replaced generation is removed after the update, in a thread.
        hinted_s, hinted = time_call(
            lambda path=path: build_index(
                [folder], index_dir, embedder, changed_paths={str(path.absolute())}, remove_replaced=False
            )
        )
        open_store(index_dir).clean_up()
        assert hinted.changed == 1 and hinted.new == 0 and hinted.unchanged == len(ids) - 1, hinted.summary()
        texts = file_texts(index_dir, source)
        embed_s = median(time_call(lambda texts=texts: embedder.embed(texts))[0] for _ in range(3))
        runs.append(
            {
                "file": source,
                "texts": len(texts),
                "update_s": update_s,
                "embed_file_s": embed_s,
                "ratio": update_s / embed_s,
                "stages": {k: round(v, 3) for k, v in report.timings.items()},
                "hinted_update_s": hinted_s,
                "hinted_ratio": hinted_s / embed_s,
                "hinted_stages": {k: round(v, 3) for k, v in hinted.timings.items()},
            }
        )
        print(
            f"  edit {r + 1}: update {update_s:.2f}s, hinted {hinted_s:.2f}s, embed file alone {embed_s:.3f}s, "
            f"ratio {update_s / embed_s:.2f}, hinted {hinted_s / embed_s:.2f} "
            f"{runs[-1]['stages']} hinted {runs[-1]['hinted_stages']}",
            flush=True,
        )
    watched = save_to_update(folder, ids, index_dir, embedder, args.repeat)
    # The same update as a user runs it: a new process, model load included.
    cli_s = float("nan")
    if backend != "fake":
        path = folder / f"{ids[1]}.txt"
        path.write_text(path.read_text(encoding="utf-8") + " One more edit for the CLI run.", encoding="utf-8")
        cli_s, _ = time_call(
            lambda: subprocess.run(
                [
                    str(Path(sys.executable).with_name("qa")),
                    "index",
                    "-q",
                    "--backend",
                    backend,
                    "--index-dir",
                    str(index_dir),
                    str(folder),
                ],
                check=True,
                env={**os.environ, "HF_HUB_OFFLINE": "1"},
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    result = {
        "backend": backend,
        "documents": len(ids),
        "initial_build_s": round(initial_s, 1),
        "update_s_median": round(median(r["update_s"] for r in runs), 3),
        "embed_file_s_median": round(median(r["embed_file_s"] for r in runs), 3),
        "ratio_median": round(median(r["ratio"] for r in runs), 2),
        "target_ratio": 2.0,
        "met": median(r["ratio"] for r in runs) <= 2.0,
        "hinted_update_s_median": round(median(r["hinted_update_s"] for r in runs), 3),
        "hinted_ratio_median": round(median(r["hinted_ratio"] for r in runs), 2),
        "cli_qa_index_wall_s": None if cli_s != cli_s else round(cli_s, 1),
        "watched_notify_s_median": round(median(w["notify_s"] for w in watched), 3) if watched else None,
        "watched_save_to_updated_s_median": round(median(w["save_to_updated_s"] for w in watched), 3)
        if watched
        else None,
        "watched": watched,
        "runs": runs,
    }
    print(
        f"median ratio {result['ratio_median']} (target <= 2), told the changed file "
        f"{result['hinted_ratio_median']}; qa index CLI wall {cli_s:.1f}s",
        flush=True,
    )
    write_result(args.name, result)
    draw(args.name, result)


def draw(name: str, result: dict) -> None:
    """The stages of both kinds of update, and the embedding of the file alone (medians)."""
    runs = result["runs"]
    stage_names = sorted({k for r in runs for k in r["stages"]} - {"save_bm25_wait"})
    labels = [n.replace("_", "\n") for n in stage_names] + ["whole\nupdate", "embed the\nfile alone"]
    plot_bars(
        name,
        f"{result['backend']}: one edited file in {result['documents']:,} docs, median seconds",
        labels,
        {
            "qa index (compares every file)": [median(r["stages"].get(k, 0.0) for r in runs) for k in stage_names]
            + [result["update_s_median"], result["embed_file_s_median"]],
            "told the changed file (--watch, chat)": [
                median(r["hinted_stages"].get(k, 0.0) for r in runs) for k in stage_names
            ]
            + [result["hinted_update_s_median"], result["embed_file_s_median"]],
        },
        "seconds",
    )


if __name__ == "__main__":
    main()
