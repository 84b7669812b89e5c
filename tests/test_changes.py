"""Change notifications (index/changes.py) and updates that look only at the files they name
(build_index(changed_paths=...)): the same index as comparing every file, or a walk when in doubt."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, write_corpus

from index import store
from index.builder import build_index, changes_since
from index.changes import ChangeFeed, hidden_or_inside
from index.stores import open_store
from index.walk import changed_files, corpus_root


def indexed(index_dir: Path) -> tuple[set, set, list]:
    """(source, sha256) of every document, the recorded stats, and every chunk's text, in order."""
    with open_store(index_dir).read_catalog() as (catalog, _):
        recorded, recorded_stats = catalog.recorded()
        docs = {(source, sha256) for source, (_, sha256, _) in recorded.items()}
        stats = {(source, *st) for source, st in recorded_stats.items()}
        chunks = sorted(p.text for p in catalog.all_passages())
        return docs, stats, chunks


def counts(report) -> tuple:
    return report.new, report.changed, report.unchanged, report.removed, report.n_documents, report.n_chunks


def test_an_update_told_what_changed_builds_the_same_index_as_one_that_compares_every_file(
    tmp_path, fake_embedder, monkeypatch
):
    """Random edits, new files, deletions, same-byte saves, hidden and unsupported files: after each
    round, the index updated from the changed paths alone equals the one that compared every file
    (documents, recorded stats, passages, and the report's counts)."""
    # Every stat is trusted at once (no 2 s "racy" window): else the full update would record the
    # stats of files written in the previous round that the hinted one, rightly, does not look at.
    monkeypatch.setattr("index.walk.RACY_NS", 0)
    rng = random.Random(7)
    corpus = write_corpus(
        tmp_path / "docs", {f"d{i}.txt": f"Document {i} is about topic{i}. It mentions word{i}." for i in range(6)}
    )
    (corpus / "sub").mkdir()
    (corpus / "sub" / "n.md").write_text("# Notes\n\nA note about owls.\n", encoding="utf-8")
    hinted, full = tmp_path / "hinted", tmp_path / "full"
    build_index([corpus], hinted, fake_embedder)
    build_index([corpus], full, fake_embedder)
    words = ["zebras", "lions", "owls", "harbour", "diesel", "summit", "Reykjavik"]
    for round_no in range(25):
        touched: set[str] = set()
        for _ in range(rng.randint(1, 3)):
            files = sorted(
                p
                for p in corpus.rglob("*")
                if p.is_file() and not p.name.startswith(".") and p.suffix in (".txt", ".md")
            )
            op = rng.choice(["edit", "edit", "new", "delete", "same", "hidden", "unsupported", "vim"])
            if op == "edit" and files:
                path = rng.choice(files)
                path.write_text(
                    path.read_text(encoding="utf-8") + f" Round {round_no} adds {rng.choice(words)}.", encoding="utf-8"
                )
            elif op == "new":
                path = corpus / rng.choice(["", "sub"]) / f"new{round_no}{rng.choice(['.txt', '.md'])}"
                path.write_text(f"A new file about {rng.choice(words)} in round {round_no}.", encoding="utf-8")
            elif op == "delete" and len(files) > 2:
                path = rng.choice(files)
                path.unlink()
            elif op == "same" and files:
                path = rng.choice(files)
                path.write_bytes(path.read_bytes())  # saved again, same bytes: a new mtime only
            elif op == "vim" and files:  # backup by rename, probe file, new file, backup removed
                path = rng.choice(files)
                text = path.read_text(encoding="utf-8")
                backup, probe = path.with_name(path.name + "~"), path.with_name("4913")
                path.rename(backup)
                probe.write_text("", encoding="utf-8")
                probe.unlink()
                path.write_text(text + f" Saved from vim in round {round_no}.", encoding="utf-8")
                backup.unlink()
                touched.update({str(backup), str(probe)})
            elif op == "hidden":
                path = corpus / f".swap{round_no}.txt"
                path.write_text("an editor's temporary file", encoding="utf-8")
            else:
                path = corpus / f"notes{round_no}.odt"
                path.write_text("not a supported type", encoding="utf-8")
            touched.add(str(path))
        time.sleep(0.01)  # past the file system clock's tick: the scans start after the writes' times
        a = build_index([corpus], hinted, fake_embedder, changed_paths=touched)
        b = build_index([corpus], full, fake_embedder)
        assert counts(a) == counts(b), (round_no, touched)
        assert indexed(hinted) == indexed(full), (round_no, touched)
        assert not changes_since(open_store(hinted), [corpus]), "the hinted index is up to date"


def test_changes_that_only_a_walk_can_judge_fall_back_to_one(tmp_path, fake_embedder):
    corpus = write_corpus(
        tmp_path / "docs",
        {
            "a.txt": "Alpha is about apples.",
            "old.md/b.txt": "Beta is about bananas.",
            "sub/c.txt": "Gamma is about grapes.",
        },
    )
    root = corpus_root([corpus])
    index_dir = tmp_path / "idx"
    build_index([corpus], index_dir, fake_embedder)
    top = str(corpus.absolute())
    (corpus / "x.odt").write_text("not a supported type", encoding="utf-8")

    hint = changed_files([corpus], root, [f"{top}/a.txt", f"{top}/.a.txt.swp", f"{top}/gone.txt", f"{top}/x.odt"])
    assert (
        hint is not None
        and hint.files == [f"{top}/a.txt"]
        and set(hint.sources) == {"a.txt", "gone.txt"}
        and hint.missing == ("gone.txt",)
    )
    assert changed_files([corpus], root, [f"{top}/sub"]) is None, "a folder: its files are for a walk"
    assert changed_files([corpus], root, [f"{top}/nothing-here"]).missing == ("nothing-here",), (
        "gone: the builder asks the index what it held"
    )
    assert changed_files([corpus], root, [str(tmp_path / "elsewhere.txt")]) is None, "outside the corpus"
    assert changed_files([corpus / "a.txt"], corpus_root([corpus / "a.txt"]), [f"{top}/a.txt"]) is None, (
        "a file named, not a folder"
    )
    os.symlink(corpus / "a.txt", corpus / "link.txt")
    assert changed_files([corpus], root, [f"{top}/link.txt"]) is None, "a symbolic link: the walk decides"
    (corpus / "link.txt").unlink()
    os.symlink(corpus / "sub", corpus / "linked")
    assert changed_files([corpus], root, [f"{top}/linked/c.txt"]) is None, (
        "inside a linked folder, which the walk does not follow"
    )
    (corpus / "linked").unlink()
    build_index([corpus], corpus / "sub" / "idx", fake_embedder)
    assert changed_files([corpus], root, [f"{top}/sub/idx/bm25/vocab.txt"]) is None, (
        "inside an index folder: the walk leaves those out"
    )
    shutil.rmtree(corpus / "sub" / "idx")

    # A folder named like a document, deleted: the change names a path that was no document.
    (corpus / "old.md" / "b.txt").unlink()
    (corpus / "old.md").rmdir()
    report = build_index([corpus], index_dir, fake_embedder, changed_paths={f"{top}/old.md"})
    assert (report.removed, report.n_documents) == (1, 2)
    # A folder moved: named as the new folder and the old one.
    (corpus / "sub").rename(corpus / "moved")
    report = build_index([corpus], index_dir, fake_embedder, changed_paths={f"{top}/sub", f"{top}/moved"})
    assert (report.new, report.removed, report.n_documents) == (1, 1, 2)
    assert {s for s, _ in indexed(index_dir)[0]} == {"a.txt", "moved/c.txt"}
    # A folder deleted, named alone: the index has documents under it.
    shutil.rmtree(corpus / "moved")
    report = build_index([corpus], index_dir, fake_embedder, changed_paths={f"{top}/moved"})
    assert (report.removed, report.n_documents) == (1, 1)


def test_an_editors_save_is_indexed_without_a_walk(tmp_path, fake_embedder, monkeypatch):
    """vim saves by renaming the file to "notes.txt~", probing the folder with a file named "4913" and
    writing notes.txt anew: the gone paths were no documents and held none, so no walk is needed."""
    corpus = write_corpus(
        tmp_path / "docs", {"notes.txt": "The harbour closes at dusk.", "other.txt": "Unrelated text about owls."}
    )
    index_dir = tmp_path / "idx"
    build_index([corpus], index_dir, fake_embedder)
    notes = corpus / "notes.txt"
    notes.rename(corpus / "notes.txt~")
    (corpus / "4913").write_text("", encoding="utf-8")
    (corpus / "4913").unlink()
    notes.write_text("The harbour closes at dusk in winter.", encoding="utf-8")
    (corpus / "notes.txt~").unlink()

    def no_walk(paths):
        raise AssertionError("walked every folder")

    monkeypatch.setattr("index.walk._candidate_files", no_walk)
    top = str(corpus.absolute())
    report = build_index(
        [corpus], index_dir, fake_embedder, changed_paths={f"{top}/notes.txt~", f"{top}/4913", f"{top}/notes.txt"}
    )
    assert (report.new, report.changed, report.unchanged, report.removed) == (0, 1, 1, 0)


def test_change_feed_reports_saved_files_and_ignores_hidden_ones_and_the_index(tmp_path, monkeypatch):
    """The real notifications (watchfiles: inotify here): a save is reported at once; editors'
    hidden files and an index folder inside the corpus are not; too many paths at once become None."""
    corpus = write_corpus(tmp_path / "docs", {"a.txt": "Alpha."})
    inside = corpus / "idx"
    inside.mkdir()
    notified = threading.Event()
    feed = ChangeFeed([corpus], hidden_or_inside([corpus], [inside]), on_change=notified.set)
    try:
        assert feed.wait_ready(), feed.broken
        (corpus / ".a.txt.swp").write_text("swap", encoding="utf-8")
        (inside / "meta.sqlite").write_text("index", encoding="utf-8")
        (corpus / "a.txt").write_text("Alpha, edited.", encoding="utf-8")
        assert feed.wait(10.0) and notified.is_set()
        time.sleep(0.3)  # anything else of the same burst
        assert feed.take() == {str(corpus.absolute() / "a.txt")}
        assert not feed.pending()
        monkeypatch.setattr("index.changes.MOST_PATHS", 3)
        for i in range(5):
            (corpus / f"n{i}.txt").write_text("new", encoding="utf-8")
        deadline = time.monotonic() + 10
        while not feed.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert feed.take() is None, "too many to list: compare every file"
    finally:
        feed.close()
    assert not feed._thread.is_alive()


class FakeFeed:
    """A ChangeFeed that reports what the test says, when it says."""

    broken = None

    def __init__(self, batches: list) -> None:
        self.batches = batches

    def wait(self, timeout: float) -> bool:
        if not self.batches:
            raise KeyboardInterrupt
        return self.batches[0] is not False

    def take(self):
        batch = self.batches.pop(0)
        return batch() if callable(batch) else batch

    def pending(self) -> bool:
        return bool(self.batches)

    restarts = 0

    def restart(self) -> None:
        self.restarts += 1

    def wait_ready(self) -> bool:
        return True


def test_watch_corpus_indexes_what_the_feed_reports(tmp_path, fake_embedder, monkeypatch):
    """`qa index --watch` with notifications: each reported change is indexed from its paths alone
    (a save with the same bytes is not an update); a report of too many paths compares every file."""
    from qa.config import RunConfig
    from qa.service import index_corpus, watch_corpus

    corpus = write_corpus(tmp_path / "docs", {f"d{i}.txt": f"Document {i} is about topic{i}." for i in range(3)})
    config = RunConfig(corpus=(corpus,), index_dir=tmp_path / "idx")
    index_corpus(config, fake_embedder)
    seen: list = []
    real_build = build_index

    def spy(*args, **kwargs):
        seen.append(kwargs.get("changed_paths"))
        return real_build(*args, **kwargs)

    monkeypatch.setattr("index.builder.build_index", spy)
    d1, d2 = corpus / "d1.txt", corpus / "d2.txt"

    def edit():
        d1.write_text("Document 1 now talks about zebras.", encoding="utf-8")
        return frozenset({str(d1)})

    def same():
        d2.write_bytes(d2.read_bytes())
        return frozenset({str(d2)})

    def many():
        d2.unlink()
        return None

    reports: list = []
    with pytest.raises(KeyboardInterrupt):
        watch_corpus(config, fake_embedder, reports.append, interval=0.01, feed=FakeFeed([edit, same, many]))
    assert [(r.new, r.changed, r.removed) for r in reports] == [(0, 1, 0), (0, 0, 1)]
    assert seen == [frozenset({str(d1)}), None]


def test_watch_corpus_waits_for_a_folder_that_is_gone_and_compares_every_file_when_it_is_back(tmp_path, fake_embedder):
    """A corpus folder moved away (a checkout, a sync tool) used to end `qa index --watch` with "No such file or
    folder". Now the index stays as it was, on_gone names the folder, and once it is back every file is compared
    (an edit made while it was away is indexed) and the feed watches it afresh. A folder deleted and made again
    between two looks is named by its own notification: the same then."""
    from qa.config import RunConfig
    from qa.service import index_corpus, watch_corpus

    corpus = write_corpus(tmp_path / "docs", {f"d{i}.txt": f"Document {i} is about topic{i}." for i in range(3)})
    away = tmp_path / "away"
    config = RunConfig(corpus=(corpus,), index_dir=tmp_path / "idx")
    index_corpus(config, fake_embedder)
    before = indexed(tmp_path / "idx")

    def move_away():
        corpus.rename(away)
        return frozenset({str(corpus.absolute())})

    def made_again():
        shutil.rmtree(corpus)
        write_corpus(corpus, {"d0.txt": "Document 0 is about topic0.", "d9.txt": "A new document about zebras."})
        return frozenset({str(corpus.absolute())})

    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            assert indexed(tmp_path / "idx") == before, "the index is left as it was while the folder is gone"
            (away / "d1.txt").write_text("Document 1 now talks about ferries.", encoding="utf-8")
            away.rename(corpus)

    gone: list = []
    reports: list = []
    feed = FakeFeed([move_away, made_again])
    with pytest.raises(KeyboardInterrupt):
        watch_corpus(config, fake_embedder, reports.append, interval=30.0, feed=feed, sleep=sleep, on_gone=gone.append)
    assert gone == [[corpus], []]
    assert sleeps == [1.0, 1.0], "while it is gone the watch looks every second, not every interval"
    assert [(r.new, r.changed, r.unchanged, r.removed) for r in reports] == [(0, 1, 2, 0), (1, 0, 1, 2)]
    assert feed.restarts == 2


def test_a_restarted_feed_sees_a_folder_made_again(tmp_path):
    """The real notifications: a watched folder deleted and made again is not seen by its old watch; restart()
    watches it afresh."""
    corpus = write_corpus(tmp_path / "docs", {"a.txt": "Alpha."})
    feed = ChangeFeed([corpus])
    try:
        assert feed.wait_ready(), feed.broken
        shutil.rmtree(corpus)
        assert feed.wait(10.0)
        time.sleep(0.3)
        assert str(corpus.absolute()) in feed.take(), "the folder itself is reported"
        write_corpus(corpus, {"b.txt": "Beta."})
        (corpus / "b.txt").write_text("Beta, edited.", encoding="utf-8")
        assert not feed.wait(1.0), "the old watch is gone with the old folder"
        feed.restart()
        assert feed.wait_ready(), feed.broken
        (corpus / "b.txt").write_text("Beta, edited again.", encoding="utf-8")
        assert feed.wait(10.0)
        time.sleep(0.3)
        assert feed.take() == {str(corpus.absolute() / "b.txt")}
    finally:
        feed.close()
    assert not feed._thread.is_alive()


def test_qa_index_watch_indexes_a_saved_file_at_once(tmp_path, onnx_home):
    """The real pipeline: `qa index --watch` (default onnx backend, real notifications) indexes a new
    file as it is saved, long before its 60 s comparison of every file, and stops on Ctrl-C."""
    corpus = write_corpus(tmp_path / "docs", {"a.txt": "The harbour closes at dusk in winter."})
    env = {**os.environ, "QA_HOME": str(onnx_home)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qa",
            "index",
            str(corpus),
            "--watch",
            "--interval",
            "120",
            "--index-dir",
            str(tmp_path / "idx"),
            "-q",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env=env,
    )
    lines: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def wait_for(text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in lines) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert any(text in line for line in lines), "".join(lines)

    try:
        wait_for("as files are saved", 120)
        (corpus / "b.md").write_text("Boats arriving after dark must call the harbour master.", encoding="utf-8")
        wait_for("1 new, 0 changed, 1 unchanged", 45)  # found by the notification: the full comparison comes after 60 s
        # Moved away and back (it used to stop with "No such file or folder"), then deleted and made again.
        corpus.rename(tmp_path / "away")
        wait_for(": gone (moved", 30)  # (the console wraps at 80 columns)
        (tmp_path / "away").rename(corpus)
        wait_for("Back: comparing every file", 30)
        shutil.rmtree(corpus)
        write_corpus(corpus, {"a.txt": "The harbour closes at dusk in winter.", "c.txt": "Ferries leave at noon."})
        wait_for("1 removed", 30)  # b.md; c.txt came with the folder, or in the next update
        (corpus / "d.txt").write_text("Pilots board ships outside the breakwater.", encoding="utf-8")
        wait_for("(3 documents", 30)  # the watches were made afresh: d.txt is seen at once (the timer is at 120 s)
        proc.send_signal(signal.SIGINT)
        wait_for("Stopped watching", 30)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    with open_store(tmp_path / "idx").read_catalog() as (catalog, _):
        assert set(catalog.sources()) == {"a.txt", "c.txt", "d.txt"}


def test_the_watches_remove_the_replaced_generation_after_the_update(tmp_path, fake_embedder):
    """remove_replaced=False leaves the replaced generation for clean_up_in_background, which takes
    the write lock (and leaves it to a writer that holds the lock: that one cleans up as it starts)."""
    corpus = write_corpus(tmp_path / "docs", {"a.txt": "Alpha is about apples.", "b.txt": "Beta is about bananas."})
    index_dir = tmp_path / "idx"
    build_index([corpus], index_dir, fake_embedder)

    def generations() -> list[str]:
        return sorted(p.name for p in index_dir.iterdir() if p.name.startswith("gen-"))

    (corpus / "a.txt").write_text("Alpha is about apricots now.", encoding="utf-8")
    build_index(
        [corpus], index_dir, fake_embedder, changed_paths={str(corpus.absolute() / "a.txt")}, remove_replaced=False
    )
    assert len(generations()) == 2
    with store.write_lock(index_dir):
        store.clean_up_in_background(index_dir).join()
        assert len(generations()) == 2, "another writer holds the lock: left to it"
    store.clean_up_in_background(index_dir).join()
    assert generations() == [store.current_generation(index_dir).name]
    engine_docs = indexed(index_dir)[0]
    assert {s for s, _ in engine_docs} == {"a.txt", "b.txt"}


def test_without_notifications_the_watch_compares_every_file_on_its_timer(tmp_path, fake_embedder, monkeypatch):
    """A feed that cannot start (the system's limit on inotify watches reached) reports why, and the
    watch falls back to comparing every file each interval, as before notifications."""
    import watchfiles

    from qa.config import RunConfig
    from qa.service import index_corpus, watch_corpus

    def no_watches(*args, **kwargs):
        raise OSError("OS file watch limit reached")

    monkeypatch.setattr(watchfiles, "watch", no_watches)
    corpus = write_corpus(tmp_path / "docs", {"a.txt": "Alpha is about apples.", "b.txt": "Beta is about bananas."})
    feed = ChangeFeed([corpus])
    assert not feed.wait_ready() and "limit" in feed.broken
    config = RunConfig(corpus=(corpus,), index_dir=tmp_path / "idx")
    index_corpus(config, fake_embedder)
    looks, reports = [], []

    def sleep(seconds: float) -> None:
        looks.append(seconds)
        if len(looks) == 1:
            (corpus / "a.txt").write_text("Alpha is about apricots now.", encoding="utf-8")
        elif len(looks) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        watch_corpus(config, fake_embedder, reports.append, interval=5.0, sleep=sleep, feed=feed)
    assert [(r.changed, r.unchanged) for r in reports] == [(1, 1)]
    assert looks[0] == 5.0
