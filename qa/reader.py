"""The answer model: a cross-encoder reading (question, sentence) together, run from int8 ONNX with
onnxruntime and tokenizers alone (no torch). Its logit says how much more likely the sentence answers
the question than "no answer" (0 = even). Trained by training/train_answer_model.py; see its MODEL_CARD.md."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from index.errors import ModelError

MODEL_DIR = Path(__file__).with_name("answer_model")


class AnswerModel:
    """Loads on first use (or load() in a background thread); thread-safe."""

    def __init__(self, folder: Path = MODEL_DIR) -> None:
        self.folder = folder
        self._session = None
        self._tokenizer = None
        self._lock = threading.Lock()
        self.load_seconds: float | None = None

    @property
    def available(self) -> bool:
        return (self.folder / "answer_model.json").is_file()

    def load(self) -> None:
        if self._session is not None:
            return
        with self._lock:
            if self._session is None:
                started = time.perf_counter()
                self._load()
                self.load_seconds = time.perf_counter() - started

    def load_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self._load_quietly, name="answer-model-load", daemon=True)
        thread.start()
        return thread

    def _load_quietly(self) -> None:
        try:
            self.load()
        except ModelError:
            pass  # the first question reports it

    def _load(self) -> None:
        try:
            import onnxruntime  # deferred: ~0.2 s, not on the chat's start-up path
            from tokenizers import Tokenizer

            from index.onnx_encoder import session_options

            config = json.loads((self.folder / "answer_model.json").read_text())
            tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
            session = onnxruntime.InferenceSession(
                str(self.folder / config["onnx"]), sess_options=session_options(), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # tokenizers and onnxruntime raise their own exception types
            raise ModelError(
                f"The answer model in {self.folder} could not be loaded ({exc}).",
                "Reinstall the project (pip install -e . -c constraints.txt) or rebuild it: "
                "python training/train_answer_model.py",
            ) from exc
        tokenizer.enable_truncation(int(config["max_length"]), strategy="longest_first")
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self._inputs = [i.name for i in session.get_inputs()]
        self._session = session
        self.logits("warm up", ["Warm up."])  # pays ONNX Runtime's lazy set-up here, not in the first answer

    def logits(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        """One logit per sentence: > 0 when the model finds the sentence answers the question.

        One pair per run: int8 dynamic quantization scales activations per batch, so a batch would make a
        sentence's logit depend on its neighbours (and padding); single pairs are also the fastest here."""
        self.load()
        out = np.zeros(len(sentences), dtype=np.float32)
        for i, sentence in enumerate(sentences):
            encoding = self._tokenizer.encode(question, sentence)
            columns = {
                "input_ids": np.asarray([encoding.ids], dtype=np.int64),
                "attention_mask": np.asarray([encoding.attention_mask], dtype=np.int64),
                "token_type_ids": np.asarray([encoding.type_ids], dtype=np.int64),
            }
            result = self._session.run(None, {name: columns[name] for name in self._inputs})[0]
            out[i] = float(np.asarray(result).reshape(-1)[0])
        return out
