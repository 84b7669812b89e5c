"""Hardening: a messy folder (binary, bad encodings, huge files, loops, odd names, deep trees) indexes cleanly."""

from __future__ import annotations

import codecs
import ctypes
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO
from fakes import IMPORTABLE

# The real `qa` CLI with the fast hashing embedder in place of the model (the only difference).
FAKE_QA = (
    IMPORTABLE + "import qa.service, fakes\n"
    "qa.service.make_embedder = lambda backend='torch': fakes.HashingEmbedder()\n"
    "import qa.cli\n"
    "qa.cli.main()\n"
)
DEEP_LEVELS = 1200  # deeper than Python 3.11's recursion limit: os.walk used to overflow here
FIVE_MB = 5_000_000


def _drop_dac_capabilities() -> None:
    """In the child before exec: remove root's power to read any file, so chmod 000 means unreadable."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP; takes effect at exec
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _unprivileged() -> dict:
    """subprocess.run arguments that make permissions bite even when the tests run as root."""
    return {"preexec_fn": _drop_dac_capabilities} if os.geteuid() == 0 else {}


def _long_line(size: int) -> bytes:
    words = b"alpha beta gamma delta epsilon zeta eta theta iota kappa lambda "
    return (words * (size // len(words) + 1))[:size]


def _make_messy_corpus(root: Path) -> dict:
    """Write the bad-input corpus; returns what each file should become (question or skip reason)."""
    root.mkdir(parents=True)
    good = {
        # name: (content bytes, a question only this file answers, a word the cited passage must contain)
        "latin1.txt": (
            "Señor Núñez owns the bakery in Zaragoza since 1998.\n".encode("latin-1"),
            "Who owns the bakery in Zaragoza?",
            "Núñez",
        ),
        "bad_utf8.txt": (
            b"The caf\xc3 \xff mill grinds barley for the brewery in Pilsen.\n",
            "What does the mill grind for the brewery?",
            "barley",
        ),
        "utf16.txt": (
            codecs.BOM_UTF16_LE + "The violin was made by Stradivari in Cremona.\n".encode("utf-16-le"),
            "Where did Stradivari make the violin?",
            "Cremona",
        ),
        "utf8_bom.md": (
            codecs.BOM_UTF8 + b"The glacier Perito Moreno lies in Patagonia.\n",
            "Where does the glacier Perito Moreno lie?",
            "Patagonia",
        ),
        "name with spaces.txt": (
            b"The lighthouse keeper is named Agnes Moreau.\n",
            "What is the lighthouse keeper named?",
            "Agnes",
        ),
        "\u00fcn\u00efc\u00f8d\u00e9 \u540d\u524d.md": (
            b"The tea ceremony uses matcha from Uji.\n",
            "Where does the matcha for the tea ceremony come from?",
            "Uji",
        ),
        "new\nline.txt": (
            b"The submarine hull is painted yellow.\n",
            "What colour is the submarine hull painted?",
            "yellow",
        ),
        "page.html": (
            b"<html><head><title>T</title><script>alert('owned'); var leaked = 'scriptword';</script>"
            b"<style>.x{color:red}</style></head><body><p>The museum opens at nine <b>sharp<p>Broken <div><span>"
            b"tags everywhere</i></table> and the curator is Ines Duarte.<script>document.write('scriptword')</script>",
            "Who is the curator of the museum?",
            "Duarte",
        ),
        "longline.txt": (_long_line(FIVE_MB), None, None),
    }
    for name, (content, _, _) in good.items():
        (root / name).write_bytes(content)
    deep = str(root / "deep")
    os.mkdir(deep)
    for _ in range(DEEP_LEVELS):
        deep += "/d"
        os.mkdir(deep)  # one level at a time: pathlib's mkdir(parents=True) itself recurses
    Path(deep, "bottom.txt").write_text("The deepest file mentions the Mariana Trench.\n", encoding="utf-8")
    good[os.path.relpath(deep, root) + "/bottom.txt"] = (None, "Which trench does the deepest file mention?", "Mariana")

    bad = {}  # path relative to root -> expected reason (regex)
    (root / "binary.txt").write_bytes(bytes(range(256)) * 64)
    bad["binary.txt"] = r"looks binary"
    (root / "broken\nname.txt").write_bytes(b"\x00\x01\x02" * 100)
    bad["broken\nname.txt"] = r"looks binary"
    (root / "empty.txt").write_bytes(b"")
    bad["empty.txt"] = r"empty \(no text to index\)"
    (root / "blank.md").write_text("  \n\t\n   \r\n", encoding="utf-8")
    bad["blank.md"] = r"empty \(no text to index\)"
    block = b"lorem ipsum dolor sit amet, consectetur adipiscing elit.\n" * 20_000
    with open(root / "huge.txt", "wb") as fh:
        while fh.tell() < 100_000_000:
            fh.write(block)
    bad["huge.txt"] = r"is 10\d MB, over the 20 MB limit \(raise it with --max-file-mb\)"
    os.symlink("loop_b.txt", root / "loop_a.txt")
    os.symlink("loop_a.txt", root / "loop_b.txt")
    bad["loop_a.txt"] = bad["loop_b.txt"] = r"broken or looping symbolic link"
    os.symlink(".", root / "selfdir")
    bad["selfdir"] = r"symbolic link to a folder, not followed"
    (root / "locked.txt").write_text("The locked file mentions the vault combination.\n", encoding="utf-8")
    os.chmod(root / "locked.txt", 0)
    bad["locked.txt"] = r"permission denied"
    (root / "sealed").mkdir()
    (root / "sealed" / "inside.txt").write_text("The sealed folder holds the treasure map.\n", encoding="utf-8")
    os.chmod(root / "sealed", 0)
    bad["sealed"] = r"folder not readable: permission denied"
    return {"good": good, "bad": bad}


@pytest.fixture(scope="module")
def messy_run(tmp_path_factory):
    """Run the real `qa index` (fake embedder) over the messy corpus once; tests inspect the result."""
    base = tmp_path_factory.mktemp("messy")
    root = base / "corpus"
    expected = _make_messy_corpus(root)
    index_dir = base / "index"
    env = {**os.environ, "QA_HOME": str(base / "home")}
    probe = subprocess.run(
        [sys.executable, "-c", f"open({str(root / 'locked.txt')!r}).read()"], capture_output=True, **_unprivileged()
    )
    permissions_bite = probe.returncode != 0
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", FAKE_QA, "index", str(root), "--index-dir", str(index_dir)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=600,
        **_unprivileged(),
    )
    seconds = time.perf_counter() - started
    yield {
        "root": root,
        "index_dir": index_dir,
        "result": result,
        "expected": expected,
        "permissions_bite": permissions_bite,
        "seconds": seconds,
    }
    os.chmod(root / "sealed", 0o700)
    os.chmod(root / "locked.txt", 0o600)
    _remove_tree(root / "deep")  # pytest's own clean-up (shutil.rmtree) recurses and would overflow


def _remove_tree(top: Path) -> None:
    """Delete a folder tree of any depth without recursion."""
    folders, stack = [], [str(top)]
    while stack:
        folder = stack.pop()
        folders.append(folder)
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    os.unlink(entry.path)
    for folder in reversed(folders):
        os.rmdir(folder)


def _display(name: str) -> str:
    return name.replace("\n", "\\n")


@pytest.mark.slow
def test_every_bad_file_gets_one_line_and_the_run_a_summary_and_exit_code(messy_run):
    """Each bad file: exactly one 'skipped <path>: <reason>' line; then a summary; exit code 3 (indexed, some
    skipped)."""
    result, root = messy_run["result"], messy_run["root"]
    bad = dict(messy_run["expected"]["bad"])
    if not messy_run["permissions_bite"]:
        # Running as root without the means to drop capabilities: these two are readable, so indexed.
        bad.pop("locked.txt")
        bad.pop("sealed")
    assert "Traceback" not in result.stderr
    assert result.returncode == 3, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    skip_lines = [line for line in lines if line.startswith("skipped ")]
    assert len(skip_lines) == len(bad), "\n".join(skip_lines)
    for name, reason in bad.items():
        shown = f"skipped {_display(str(root / name))}: "
        matching = [line for line in skip_lines if line.startswith(shown)]
        assert len(matching) == 1, (name, skip_lines)
        assert re.match(re.escape(shown) + reason, matching[0]), matching[0]
    summary = lines[-1]
    assert re.match(
        rf"\d+ new, 0 changed, 0 unchanged, 0 removed, {len(bad)} skipped  \(\d+ documents, \d+ chunks", summary
    ), summary


@pytest.mark.slow
def test_unreadable_file_and_folder_are_reported(messy_run):
    """chmod 000 file and folder: reported as permission denied, never indexed."""
    if not messy_run["permissions_bite"]:
        pytest.skip("running as root and unable to drop CAP_DAC_OVERRIDE: chmod 000 files are readable here")
    from index.stores import open_store

    with open_store(messy_run["index_dir"]).read_catalog() as (catalog, _):
        sources = set(catalog.sources())
    assert "locked.txt" not in sources and "sealed/inside.txt" not in sources
    assert "skipped " + str(messy_run["root"] / "locked.txt") + ": permission denied" in messy_run["result"].stderr


@pytest.mark.slow
def test_good_files_are_indexed_decoded_and_answerable(messy_run, fake_embedder):
    """Every readable file is in the index with the right decoding, and a question about it cites it first."""
    from qa.engine import Engine

    engine = Engine.open(messy_run["index_dir"], fake_embedder)
    try:
        encodings = {d.source: d.encoding for d in engine.index.catalog.documents()}
        good = messy_run["expected"]["good"]
        assert set(good) <= set(encodings)
        assert encodings["latin1.txt"] == "cp1252" and encodings["bad_utf8.txt"] == "cp1252"
        assert encodings["utf16.txt"] == "utf-16" and encodings["utf8_bom.md"] == "utf-8-sig"
        assert encodings["page.html"] == "html" and encodings["longline.txt"] == "utf-8"
        for source, (_, question, word) in good.items():
            if question is None:
                continue
            answer = engine.ask(question, k=3)
            top = answer.passages[0].citation
            assert (top.source, top.stale) == (source, False), (question, top)
            assert word in top.text
        page = engine.document_text("page.html")
        assert "Ines Duarte" in page
        assert "scriptword" not in page and "alert" not in page and "color:red" not in page
        chunks = [p.text for p in engine.index.catalog.all_passages() if "scriptword" in p.text]
        assert chunks == []
    finally:
        engine.close()


@pytest.mark.slow
def test_five_megabyte_line_is_cut_within_the_token_limit(messy_run, fake_embedder):
    """The 5 MB line without punctuation becomes many chunks, each within the limit and exactly located."""
    from index.chunker import ChunkSettings
    from index.stores import open_store

    with open_store(messy_run["index_dir"]).read_catalog() as (catalog, _):
        rows = sorted(
            (p.ordinal, p.char_start, p.char_end, p.line_start, p.line_end, p.n_tokens, p.text)
            for p in catalog.all_passages()
            if p.source == "longline.txt"
        )
    rows = [row[1:] for row in rows]
    text = (messy_run["root"] / "longline.txt").read_text(encoding="utf-8")
    limit = ChunkSettings().max_tokens
    assert len(rows) > FIVE_MB // 1000
    covered_to = 0
    for start, end, line_start, line_end, n_tokens, chunk in rows:
        assert text[start:end] == chunk and (line_start, line_end) == (1, 1)
        assert n_tokens <= limit and len(fake_embedder.offsets([chunk])[0]) <= limit
        assert text[covered_to:start].strip() == ""  # nothing but spaces between consecutive chunks
        covered_to = max(covered_to, end)
    assert text[covered_to:].strip() == ""


@pytest.mark.slow
def test_five_megabyte_line_real_tokenizer_speed_and_limit():
    """The model's own tokenizer on a 5 MB line: chunked within its limit, in bounded time."""
    from index.chunker import ChunkSettings, chunk_text
    from index.embedder import SentenceTransformerEmbedder

    tokenizer = SentenceTransformerEmbedder("torch")  # only the tokenizer is used: no model load
    tokenizer.offsets(["warm up"])
    text = _long_line(FIVE_MB).decode()
    started = time.perf_counter()
    chunks = chunk_text(text, tokenizer, ChunkSettings(), tokenizer.max_tokens)
    seconds = time.perf_counter() - started
    print(f"real tokenizer: 5 MB line -> {len(chunks)} chunks in {seconds:.1f} s")
    assert max(c.n_tokens for c in chunks) <= ChunkSettings().max_tokens
    sample = chunks[:: max(1, len(chunks) // 200)]
    assert all(len(offs) <= ChunkSettings().max_tokens for offs in tokenizer.offsets([c.text for c in sample]))
    assert all(text[c.char_start : c.char_end] == c.text for c in sample)
    assert seconds < 180  # linear in size: about 8 s on an idle 2-core machine


def test_nothing_indexable_is_a_clear_error_with_exit_code_2(tmp_path):
    """A folder with only bad files: one line per file, then a one-line error and exit code 2."""
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "empty.txt").write_bytes(b"")
    (root / "binary.txt").write_bytes(b"\x00\xff" * 100)
    result = subprocess.run(
        [sys.executable, "-c", FAKE_QA, "index", str(root), "--index-dir", str(tmp_path / "index")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: No indexable documents under") and "2 skipped" in last


def test_decoding_choices(tmp_path):
    """BOM first (UTF-8/16/32), then UTF-8, then cp1252 unless the bytes look binary."""
    from index.errors import UndecodableError
    from index.readers.text import decode_bytes

    text = "Grüße, naïve café — 名前"
    assert decode_bytes(codecs.BOM_UTF32_LE + text.encode("utf-32-le")) == (text, "utf-32")
    assert decode_bytes(codecs.BOM_UTF16_BE + text.encode("utf-16-be")) == (text, "utf-16")
    assert decode_bytes(codecs.BOM_UTF8 + text.encode()) == (text, "utf-8-sig")
    assert decode_bytes(text.encode()) == (text, "utf-8")
    assert decode_bytes("Grüße, naïve café".encode("cp1252")) == ("Grüße, naïve café", "cp1252")
    for binary in (b"\x00" * 10 + b"abc", (bytes(range(1, 32)) + b"\xff") * 50, codecs.BOM_UTF16_LE + b"\x00\xd8"):
        with pytest.raises(UndecodableError):
            decode_bytes(binary)


def test_files_with_no_visible_words_are_a_clear_error_not_a_crash(tmp_path):
    """Readable files whose text the tokenizer drops entirely (zero-width spaces, say) leave nothing to index."""
    from fakes import HashingEmbedder

    from index.builder import build_index
    from index.errors import EmptyCorpusError

    class WordsOnly(HashingEmbedder):
        """Like BERT with zero-width and format characters: they produce no tokens at all."""

        def offsets(self, texts):
            return [[m.span() for m in re.finditer(r"\w+", t)] for t in texts]

    root = tmp_path / "corpus"
    root.mkdir()
    (root / "invisible.txt").write_text("\u200b\u200b \u2060 …", encoding="utf-8")
    index_dir = tmp_path / "index"
    with pytest.raises(EmptyCorpusError, match="contain no visible words"):
        build_index([root], index_dir, WordsOnly())
    assert [n for n in os.listdir(index_dir) if n.startswith(("gen-", "CURRENT"))] == []  # nothing half-written left
