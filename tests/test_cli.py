"""The `qa` command line: help, index/ask/sources round trip, and errors as one line with an exit code."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import run_main, run_qa, write_corpus
from fakes import HashingEmbedder

from index import store
from index.builder import build_index
from index.locations import default_index_dir


@pytest.fixture
def fake_backend(monkeypatch):
    """The CLI builds its embedder through qa.service/qa.engine; give it the fake one."""
    import qa.engine
    import qa.service

    monkeypatch.setattr(qa.service, "make_embedder", lambda backend="torch": HashingEmbedder())
    monkeypatch.setattr(qa.engine, "make_embedder", lambda backend="torch": HashingEmbedder())


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(
        tmp_path / "docs",
        {
            "a.txt": "Ships waited nine days in the frozen harbour of Tromso.",
            "sub/b.md": "The orchestra rehearsed the symphony twice before the premiere.",
        },
    )


@pytest.fixture
def fake_index(tmp_path, corpus):
    build_index([corpus], tmp_path / "idx", HashingEmbedder())
    return tmp_path / "idx"


def assert_one_line_error(code: int, err: str, expected_code: int, *fragments: str) -> None:
    assert code == expected_code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


# -- help -------------------------------------------------------------------------


def test_python_dash_m_qa_help_works():
    result = run_qa("--help")
    assert result.returncode == 0, result.stderr
    for command in ("index", "ask", "sources", "chat", "serve"):
        assert command in result.stdout
    assert result.stderr == ""


def test_every_command_has_help(monkeypatch, capsys):
    for command in ("index", "ask", "sources", "chat", "serve"):
        code, out, err = run_main(monkeypatch, capsys, command, "--help")
        assert code == 0 and "Usage:" in out and err == ""


def test_version(monkeypatch, capsys):
    code, out, _ = run_main(monkeypatch, capsys, "--version")
    assert code == 0 and "0.1.0" in out


# -- round trip with the fake embedder ------------------------------------------------


def test_index_ask_sources_round_trip_in_the_default_location(monkeypatch, capsys, fake_backend, corpus, qa_home):
    code, out, err = run_main(monkeypatch, capsys, "index", str(corpus))
    assert code == 0, err
    assert "2 new, 0 changed, 0 unchanged, 0 removed, 0 skipped" in err
    index_dir = default_index_dir([corpus])
    assert qa_home in index_dir.parents, "QA_HOME moves the default index location"
    assert store.read_manifest(index_dir).n_documents == 2

    code, out, err = run_main(monkeypatch, capsys, "sources", "--corpus", str(corpus))
    assert code == 0, err
    assert out.splitlines() == ["a.txt\t1 chunk", "sub/b.md\t1 chunk"]

    code, out, err = run_main(
        monkeypatch, capsys, "ask", "How long did ships wait in Tromso harbour?", "--corpus", str(corpus), "-k", "2"
    )
    assert code == 0, err
    assert "[1] a.txt:1" in out and "chars 0-55" in out
    assert ("Answer" in out) or ("Not in the documents" in out)


def test_reindex_prints_counts_and_skips_with_exit_code_3(monkeypatch, capsys, fake_backend, corpus, tmp_path):
    index_dir = tmp_path / "cli-idx"
    assert run_main(monkeypatch, capsys, "index", str(corpus), "--index-dir", str(index_dir))[0] == 0
    (corpus / "a.txt").write_text("Ships waited ten days.", encoding="utf-8")
    write_corpus(corpus, {"c.txt": "A new file.", "notes.odt": b"PK\x03\x04"})
    code, out, err = run_main(monkeypatch, capsys, "index", str(corpus), "--index-dir", str(index_dir), "-q")
    assert code == 3, "indexed, but a file was left out"
    assert "1 new, 1 changed, 1 unchanged, 0 removed, 1 skipped" in err
    assert "notes.odt: unsupported type '.odt' (indexes .txt, .md, .rst, .org, .adoc, .html, .pdf, .docx)" in err


def test_many_files_of_other_types_make_one_line(monkeypatch, capsys, fake_backend, tmp_path):
    """A notes folder's pictures used to print a line each on every run; more than 3 files left out for their
    type make one line of counts. Files that could not be read are still listed one per line."""
    corpus = write_corpus(
        tmp_path / "notes",
        {
            "a.txt": "Ships waited in the harbour.",
            "bad.txt": b"\x00\x01binary",
            "script.js": "x = 1",
            **{f"pics/p{i}.png": b"\x89PNG" for i in range(5)},
        },
    )
    code, _, err = run_main(monkeypatch, capsys, "index", str(corpus), "--index-dir", str(tmp_path / "idx"), "-q")
    assert code == 3 and "1 new, 0 changed, 0 unchanged, 0 removed, 7 skipped" in err
    lines = [line for line in err.splitlines() if line.startswith("skipped ")]
    assert len(lines) == 2 and "bad.txt: looks binary" in lines[0]
    assert lines[1].startswith("skipped 6 files of types it does not read (.png 5, .js 1; indexes .txt,")
    assert [
        line
        for line in run_main(monkeypatch, capsys, "index", str(corpus), "--index-dir", str(tmp_path / "idx"), "-q")[
            2
        ].splitlines()
        if line.startswith("skipped ")
    ] == lines, "the next run says the same"


def test_document_text_cannot_inject_terminal_escapes(monkeypatch, capsys, fake_backend, tmp_path):
    corpus = write_corpus(tmp_path / "evil", {"evil.txt": "Harbour \x1b[2J\x1b]0;pwned\x07 ships waited in Tromso."})
    code, out, err = run_main(monkeypatch, capsys, "ask", "ships Tromso harbour", "--corpus", str(corpus))
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out and "ships waited in Tromso" in out


# -- errors: one line, non-zero, no traceback ------------------------------------------


def test_missing_index(monkeypatch, capsys, tmp_path):
    code, _, err = run_main(monkeypatch, capsys, "sources", "--index-dir", str(tmp_path / "none"))
    assert_one_line_error(code, err, 1, "No index at", "qa index PATH")


def test_missing_corpus_path(monkeypatch, capsys, tmp_path):
    code, _, err = run_main(monkeypatch, capsys, "index", str(tmp_path / "nope"))
    assert_one_line_error(code, err, 2, "No such file or folder")
    code, _, err = run_main(monkeypatch, capsys, "ask", "q", "--corpus", str(tmp_path / "nope"))
    assert_one_line_error(code, err, 2, "No such file or folder")


def test_empty_corpus(monkeypatch, capsys, tmp_path):
    write_corpus(tmp_path / "empty", {"image.png": b"\x89PNG"})
    code, _, err = run_main(monkeypatch, capsys, "index", str(tmp_path / "empty"), "--index-dir", str(tmp_path / "i"))
    assert_one_line_error(code, err, 2, "No indexable documents", ".txt, .md, .rst, .org, .adoc, .html, .pdf or .docx")


def test_empty_question_and_unknown_source(monkeypatch, capsys, fake_backend, fake_index):
    code, _, err = run_main(monkeypatch, capsys, "ask", "   ", "--index-dir", str(fake_index))
    assert_one_line_error(code, err, 2, "The question is empty.")
    code, _, err = run_main(monkeypatch, capsys, "ask", "ships", "--source", "nope.txt", "--index-dir", str(fake_index))
    assert_one_line_error(code, err, 2, "Not in the index: nope.txt", "qa sources")


def test_an_empty_question_is_refused_before_any_model_loads(monkeypatch, capsys, fake_backend, fake_index):
    """`qa ask ""` used to start loading the model in a thread, then refuse the question: the process then
    exited under the loading thread (abort, exit 134). Nothing may start loading before the question is checked."""
    import qa.service

    loads = []
    monkeypatch.setattr(qa.service, "preload_model", lambda embedder: loads.append(embedder))
    for question in ("", "   "):
        code, _, err = run_main(monkeypatch, capsys, "ask", question, "--index-dir", str(fake_index))
        assert_one_line_error(code, err, 2, "The question is empty.")
    assert loads == []


@pytest.mark.slow
def test_qa_ask_with_an_empty_question_exits_2_cleanly_with_the_real_model(tmp_path):
    """The real model and index: exit 2 with the one-line message every time (it aborted in 4 runs of 6)."""
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": "Ships waited nine days in the frozen harbour of Tromso."})
    index_dir = tmp_path / "idx"
    build = [sys.executable, "-m", "qa", "index", str(corpus), "--index-dir", str(index_dir), "-q"]
    assert subprocess.run(build, capture_output=True, timeout=900).returncode == 0  # the first export is slow
    for question in ("", "   ", "", "   "):
        result = run_qa("ask", question, "--index-dir", str(index_dir))
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [
            'Error: The question is empty. Ask something, e.g. qa ask "Who did Hollande meet?"'
        ]


@pytest.mark.parametrize("json_flag", [(), ("--json",)])
def test_a_closed_pipe_ends_qa_ask_quietly(fake_index, json_flag):
    """`qa ask ... | head -2`: the reader is gone before the answer is printed; exit 0, nothing on stderr."""
    from fakes import FAKE_AWARE_QA

    command = [sys.executable, "-c", FAKE_AWARE_QA, "ask", "ships", *json_flag, "--index-dir", str(fake_index)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()  # like head after its lines: every write from now on meets a closed pipe
    _, err = child.communicate(timeout=120)
    assert (child.returncode, err.decode()) == (0, "")


def test_qa_index_counts_one_document_in_the_singular(monkeypatch, capsys, fake_backend, tmp_path):
    corpus = write_corpus(tmp_path / "one", {"a.txt": "Ships waited nine days in the frozen harbour of Tromso."})
    code, _, err = run_main(monkeypatch, capsys, "index", str(corpus), "--index-dir", str(tmp_path / "idx"))
    assert code == 0, err
    assert "(1 document, 1 chunk, " in err


def test_tampered_index(monkeypatch, capsys, fake_index):
    (store.current_generation(fake_index) / "planted.npy").write_bytes(b"x")
    code, _, err = run_main(monkeypatch, capsys, "sources", "--index-dir", str(fake_index))
    assert_one_line_error(code, err, 1, "planted.npy", "qa index --rebuild")


def test_index_built_with_another_backend(monkeypatch, capsys, fake_index):
    code, _, err = run_main(monkeypatch, capsys, "ask", "ships", "--backend", "torch", "--index-dir", str(fake_index))
    assert_one_line_error(code, err, 1, "backend fake, you asked for torch", "qa index --rebuild", "--backend torch")


def test_locked_index(monkeypatch, capsys, fake_index, corpus):
    with store.write_lock(fake_index):
        code, _, err = run_main(monkeypatch, capsys, "index", str(corpus), "--index-dir", str(fake_index))
    assert_one_line_error(code, err, 75, "is updating", "--wait")


def test_usage_errors_are_not_tracebacks(monkeypatch, capsys):
    for args in (("ask", "q", "-k", "0"), ("ask", "q", "--mode", "magic"), ("no-such-command",), ("ask",)):
        code, out, err = run_main(monkeypatch, capsys, *args)
        assert code == 2, (args, err)
        assert "Traceback" not in err and err.strip()


def test_errors_from_a_real_process_are_one_line(tmp_path):
    result = run_qa("sources", "--index-dir", str(tmp_path / "none"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"Error: No index at {tmp_path / 'none'}. Build it: qa index PATH"]
    assert result.stdout == ""


def test_unwritable_index_dir(monkeypatch, capsys, corpus, tmp_path):
    (tmp_path / "plain-file").write_text("not a folder")
    code, _, err = run_main(
        monkeypatch, capsys, "index", str(corpus), "--index-dir", str(tmp_path / "plain-file" / "idx")
    )
    assert_one_line_error(code, err, 1, "plain-file", "Check the path")


@pytest.mark.parametrize("error", ["model", "os"])
def test_an_error_that_follows_ctrl_c_is_reported_as_the_interruption(monkeypatch, capsys, error):
    """A C extension interrupted while it loads raises ImportError ("initialization failed"), which the
    embedder reports as missing ONNX extras: after Ctrl-C the user must see the interruption (exit 130)."""
    import os
    import signal

    import qa.cli
    from index.errors import ModelError

    def interrupted_load(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGINT)  # through main()'s handler, as a real Ctrl-C
            signal.pthread_sigmask(signal.SIG_SETMASK, [])  # deliver it now
        except KeyboardInterrupt:
            if error == "model":
                raise ModelError(
                    "The onnx and onnx-int8 backends need the ONNX extras.", "Install them."
                ) from ImportError("initialization failed")
            raise OSError(5, "Input/output error") from None

    handler = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(qa.cli.cli, "main", interrupted_load)
    with pytest.raises(SystemExit) as exit_info:
        qa.cli.main()
    assert exit_info.value.code == 130
    assert capsys.readouterr().err.strip() == "Interrupted; the previous index is unchanged."
    assert signal.getsignal(signal.SIGINT) is handler  # restored


def test_errors_without_ctrl_c_keep_their_own_message(monkeypatch, capsys):
    import qa.cli
    from index.errors import ModelError

    def failing_load(*args, **kwargs):
        raise ModelError("The onnx and onnx-int8 backends need the ONNX extras.", "Install them.")

    monkeypatch.setattr(qa.cli.cli, "main", failing_load)
    with pytest.raises(SystemExit) as exit_info:
        qa.cli.main()
    assert exit_info.value.code != 130
    assert "ONNX extras" in capsys.readouterr().err


def test_update_times_under_a_second_keep_two_decimals():
    """A watched update takes a tenth of a second: "0.0s" told nothing."""
    from qa.cli import _seconds

    assert (_seconds(0.123), _seconds(0.004), _seconds(3.44)) == ("0.12s", "0.00s", "3.4s")


# -- a PostgreSQL store ---------------------------------------------------------------


def test_index_ask_and_sources_with_a_postgresql_store(monkeypatch, capsys, fake_backend, corpus, pg_url):
    import json

    code, _, err = run_main(monkeypatch, capsys, "index", str(corpus), "--store", pg_url, "--quiet")
    assert code == 0, err
    code, out, err = run_main(monkeypatch, capsys, "ask", "--json", "--store", pg_url, "frozen harbour ships")
    assert code == 0, err
    assert json.loads(out)["passages"][0]["source"] == "a.txt"
    monkeypatch.setenv("QA_STORE", pg_url)  # the same store named by the environment
    code, out, err = run_main(monkeypatch, capsys, "sources")
    assert code == 0, err
    assert "a.txt" in out and "sub/b.md" in out
    code, _, err = run_main(monkeypatch, capsys, "ask", "--store", "postgresql://nobody@127.0.0.1:1/none", "x")
    assert_one_line_error(code, err, 69, "Cannot connect to the PostgreSQL store")
