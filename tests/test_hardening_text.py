"""Hardening: hostile document text and odd questions are shown safely by the CLI, never crash it."""

from __future__ import annotations

import json
import re

import pytest
from conftest import run_main, write_corpus

HOSTILE = {
    "markup.txt": (
        "The [bold red]dragon[/bold red] guards the [link=https://evil.example]treasure[/link] of Erebor. "
        "[blink]Beware[/blink].\n"
    ),
    "ansi.txt": (
        "The \x1b[31mcrimson\x1b[0m lantern hangs over the \x1b[2J\x1b[Hharbour gate. "
        "Visit \x1b]8;;https://evil.example\x07the lantern museum\x1b]8;;\x07 today. "
        "\x1b]0;pwned title\x1b\\The lantern keeper is Tomas.\n"
    ),
    "controls.txt": (
        "The church bell\x07 rings\x08\x08\x08 twelve times\r at noon\x0b in Brugge\x7f. "
        "The bell ringer \x9b31mis Anouk\x9d evil\x9c.\n"
    ),
    "evil\x1b]0;pwned\x07name.txt": "The cartographer draws maps of the Faroe Islands.\n",
    "new\nline.txt": "The submarine hull is painted yellow.\n",
}
QUESTIONS = {
    "markup.txt": "What does the dragon guard?",
    "ansi.txt": "Where does the crimson lantern hang?",
    "controls.txt": "How many times does the church bell ring in Brugge?",
    "evil\x1b]0;pwned\x07name.txt": "Which islands does the cartographer draw?",
}
# Anything that makes a terminal do something: ESC, BEL, BS, CR, VT, DEL and the C1 controls.
_TERMINAL_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.fixture(scope="module")
def hostile_index(tmp_path_factory):
    from fakes import HashingEmbedder

    from index.builder import build_index

    base = tmp_path_factory.mktemp("hostile")
    corpus = write_corpus(base / "corpus", HOSTILE)
    report = build_index([corpus], base / "index", HashingEmbedder())
    assert report.n_documents == len(HOSTILE) and not report.skipped
    return base / "index"


@pytest.mark.parametrize("source", sorted(QUESTIONS))
def test_hostile_text_is_printed_inert(hostile_index, capsys, monkeypatch, source):
    """Plain output (as in a pipe): no control character reaches the terminal; markup stays literal."""
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    code, out, err = run_main(
        monkeypatch, capsys, "ask", QUESTIONS[source], "--index-dir", str(hostile_index), "-k", "5"
    )
    assert code == 0, err
    assert _TERMINAL_CONTROLS.search(out) is None, repr(out)
    assert "[1] " in out
    if source == "markup.txt":
        assert "[bold red]dragon[/bold red]" in out and "[link=https://evil.example]treasure[/link]" in out
    if source == "ansi.txt":
        assert "crimson" in out and "pwned title" not in out  # the OSC payload goes with its sequence
    if source == "controls.txt":
        assert "Anouk" in out
    if source.startswith("evil"):
        assert "evilname.txt:1" in out and "pwned" not in out  # the name, minus its OSC sequence


def test_hostile_text_in_a_colour_terminal_only_gets_our_own_styles(hostile_index, capsys, monkeypatch):
    """With colour forced on, the only escape sequences are Rich's SGR styles: no OSC, no cursor moves."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    for question in QUESTIONS.values():
        code, out, err = run_main(monkeypatch, capsys, "ask", question, "--index-dir", str(hostile_index))
        assert code == 0, err
        assert "\x1b[" in out  # colour really is on
        sequences = re.findall(r"\x1b[^a-zA-Z]*[a-zA-Z]?", out)
        assert all(re.fullmatch(r"\x1b\[[0-9;]*m", s) for s in sequences), [s for s in sequences if not s.endswith("m")]
        assert re.search(r"[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f-\x9f]", out) is None


def test_json_output_escapes_control_characters(hostile_index, capsys, monkeypatch):
    code, out, err = run_main(
        monkeypatch, capsys, "ask", QUESTIONS["ansi.txt"], "--index-dir", str(hostile_index), "--json"
    )
    assert code == 0, err
    assert re.search(r"[\x00-\x1f]", out.replace("\n", "")) is None
    top = json.loads(out)["passages"][0]
    assert top["source"] == "ansi.txt" and "\x1b[31mcrimson" in top["text"]  # exact text kept for machines


def test_sources_list_keeps_one_line_per_document(hostile_index, capsys, monkeypatch):
    code, out, err = run_main(monkeypatch, capsys, "sources", "--index-dir", str(hostile_index))
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == len(HOSTILE)
    assert "new\\nline.txt\t1 chunk" in lines
    assert _TERMINAL_CONTROLS.search(out) is None


@pytest.mark.parametrize("question", ["", "   \n\t  "])
def test_empty_question_is_a_clear_error(hostile_index, capsys, monkeypatch, question):
    code, out, err = run_main(monkeypatch, capsys, "ask", question, "--index-dir", str(hostile_index))
    assert code == 2 and out == ""
    assert err.strip() == 'Error: The question is empty. Ask something, e.g. qa ask "Who did Hollande meet?"'


def test_huge_question_gets_an_answer(hostile_index, capsys, monkeypatch):
    question = ("Where does the crimson lantern hang over the harbour gate? " * 2000)[:100_000]
    code, out, err = run_main(monkeypatch, capsys, "ask", question, "--index-dir", str(hostile_index))
    assert code == 0, err
    assert "[1] ansi.txt" in out


@pytest.mark.parametrize("question", ["?!?...", "¿¡ — … «»", "[/]", "\x1b[2J"])
def test_punctuation_only_question_is_not_found_not_a_crash(hostile_index, capsys, monkeypatch, question):
    code, out, err = run_main(monkeypatch, capsys, "ask", question, "--index-dir", str(hostile_index))
    assert code == 0, err
    assert out.startswith("Not in the documents")


@pytest.mark.slow
@pytest.mark.parametrize("question", ["", "x" * 100_000, "lantern " * 20_000, "?!... ;:"])
def test_odd_questions_with_the_real_model(seed_engine, question):
    """The real tokenizer and model: empty is refused, huge is bounded, punctuation is 'not found'."""
    from index.errors import InputError

    if not question.strip():
        with pytest.raises(InputError):
            seed_engine.ask(question)
        return
    answer = seed_engine.ask(question)
    assert len(answer.question) <= 2000 and len(answer.passages) > 0
    if not any(ch.isalnum() for ch in question):
        assert answer.found is False
