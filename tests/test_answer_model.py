"""The answer model (qa/reader.py), its calibration (qa/answer.py) and the answer stage on the real pipeline."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import write_corpus

from qa.answer import CALIBRATION_FILE, FEATURES, Calibration
from qa.reader import MODEL_DIR, AnswerModel


@pytest.fixture(scope="module")
def model():
    answer_model = AnswerModel()
    answer_model.load()
    return answer_model


def test_the_model_is_shipped_small_with_its_card():
    config = json.loads((MODEL_DIR / "answer_model.json").read_text())
    assert (MODEL_DIR / config["onnx"]).stat().st_size <= 25_000_000
    assert (MODEL_DIR / "tokenizer.json").is_file()
    card = (MODEL_DIR / "MODEL_CARD.md").read_text()
    assert "CC BY-SA 4.0" in card and "Apache-2.0" in card and "train_answer_model.py" in card


def test_the_answering_sentence_gets_the_highest_logit(model):
    sentences = [
        "The museum is closed on Mondays.",
        "The bridge was completed in 1932 after six years of work.",
        "Tickets can be bought online.",
    ]
    logits = model.logits("When was the bridge completed?", sentences)
    assert logits.shape == (3,)
    assert int(logits.argmax()) == 1 and logits[1] > 0, logits
    # a sentence's logit does not depend on the others
    again = model.logits("When was the bridge completed?", sentences[::-1])
    assert again[::-1] == pytest.approx(logits, abs=1e-4)


def test_an_unrelated_sentence_scores_below_no_answer(model):
    logits = model.logits("Who painted the ceiling of the chapel?", ["Tickets can be bought online."])
    assert logits[0] < 0, logits


def test_the_reader_runs_without_torch():
    code = (
        "import sys; from qa.reader import AnswerModel; m = AnswerModel(); "
        "print(m.logits('Who wrote it?', ['Ann wrote it.'])[0]); assert 'torch' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_a_missing_model_folder_is_a_one_line_error(tmp_path):
    from index.errors import ModelError

    (tmp_path / "answer_model.json").write_text('{"onnx": "missing.onnx", "max_length": 128}')
    with pytest.raises(ModelError, match="could not be loaded"):
        AnswerModel(tmp_path).logits("q", ["s"])


def test_the_bundled_calibration_is_read_and_rises_with_the_logit():
    data = json.loads(CALIBRATION_FILE.read_text())
    calibration = Calibration.bundled()
    assert calibration.bias == data["bias"] and list(calibration.weights) == data["weights"]
    assert 0 < calibration.threshold < 1 and data["features"] == list(FEATURES)
    low = calibration.confidence((-4.0, 0.5, 0.5, 0.5))
    high = calibration.confidence((4.0, 0.5, 0.5, 0.5))
    assert 0 <= low < calibration.threshold <= high <= 1


def test_a_missing_or_damaged_calibration_falls_back_to_the_logit(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    for path in (tmp_path / "none.json", tmp_path / "bad.json"):
        calibration = Calibration.bundled(path)
        assert calibration == Calibration()
        assert calibration.confidence((0.0, 1.0, 1.0, 1.0)) == pytest.approx(0.5)


NOTE = """# Service notes

The cache is invalidated whenever the configuration file changes. Entries are kept in memory only.

The default timeout is 500 ms. A retry waits 30s before the next attempt. Logs are written to the
system journal.

## Trial

In 1500 patients the new dosage lowered blood pressure by a small margin. The study ran in three hospitals.
"""


@pytest.mark.slow
def test_a_technical_note_is_answered_and_an_unrelated_question_refused(tmp_path, real_embedder):
    """Questions the rule layer refused on a small technical note (0.10-0.18). The model answers these three; a
    fourth, "How many patients took part?" ("In 1500 patients ..."), it still misses: it chooses "The study ran
    in three hospitals." (docs/design.md, known misses)."""
    from index.builder import build_index
    from qa.engine import Engine

    corpus = write_corpus(tmp_path / "docs", {"notes.md": NOTE})
    build_index([corpus], tmp_path / "idx", real_embedder)
    engine = Engine.open(tmp_path / "idx", real_embedder)
    try:
        for question, expected in (
            ("When is the cache invalidated?", "whenever the configuration file changes"),
            ("How long is the default timeout?", "500 ms"),
            ("How long does a retry wait?", "30s"),
        ):
            answer = engine.ask(question)
            assert answer.found, (question, answer.best_guess)
            assert expected in answer.answer.citation.text, (question, answer.answer.citation.text)
        refused = engine.ask("Who won the football world cup in 1998?")
        assert not refused.found, refused.best_guess
    finally:
        engine.close()
