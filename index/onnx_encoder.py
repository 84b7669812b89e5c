"""The exported ONNX all-MiniLM-L6-v2 (fp32 or int8) run with onnxruntime and tokenizers alone, so answering
never imports torch."""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from index.errors import ModelError

# The graph inputs this runner knows how to fill; a graph asking for anything else is refused.
_KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _read_json(path: Path) -> dict | list:
    return json.loads(path.read_text(encoding="utf-8"))


def _pooling_config(folder: Path) -> dict:
    modules = sorted(_read_json(folder / "modules.json"), key=lambda m: m["idx"])
    return _read_json(folder / modules[1]["path"] / "config.json")


class OnnxEncoder:
    """What SentenceTransformer.encode does for this model: tokenize, run the graph, mean-pool, L2-normalise."""

    def __init__(
        self, session, tokenizer, max_seq_length: int, dim: int, make_session=None, workers: int | None = None
    ) -> None:
        self._session = session
        self._make_session = make_session
        """Makes a session with one intra-op thread, for encoding many texts in parallel (None: never)."""
        self.workers = workers if workers is not None else _available_cores()
        self._bulk = None
        self._bulk_lock = threading.Lock()
        self.parallel_from = 128
        """Fewer texts than this run on the main session: making the single-threaded one takes a noticeable part
        of a second, which a question's few dozen words for the answer verifier would pay in the middle
        of an answer."""
        self._tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        """Tokens per text the encoder sees, [CLS] and [SEP] included; longer texts are truncated."""
        self.dim = dim
        self._input_names = [i.name for i in session.get_inputs()]
        names = [o.name for o in session.get_outputs()]
        self._output = "last_hidden_state" if "last_hidden_state" in names else names[0]
        self._frame = _special_frame(tokenizer)
        """([CLS] ids, [SEP] ids, pad id) around a text's wordpieces, or None when the tokenizer's
        template is not that (then texts are always tokenised here)."""

    @staticmethod
    def supports(folder: Path) -> bool:
        """True if the model in folder is Transformer -> mean Pooling (-> Normalize), the pipeline OnnxEncoder
        reproduces."""
        try:
            modules = sorted(_read_json(folder / "modules.json"), key=lambda m: m["idx"])
            kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
            if (
                kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"])
                or modules[0]["path"] != ""
            ):
                return False
            pooling = _pooling_config(folder)
            bert = _read_json(folder / "sentence_bert_config.json")
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return False
        other_modes = [
            k for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens" and v
        ]
        return (
            pooling.get("pooling_mode_mean_tokens") is True
            and not other_modes
            and pooling.get("include_prompt", True) is True
            and not bert.get("do_lower_case", False)
            and (folder / "tokenizer.json").is_file()
        )

    @classmethod
    def load(cls, folder: Path, onnx_file: Path) -> OnnxEncoder:
        """The encoder for a sentence-transformers model folder (see supports()) and its ONNX graph."""
        import onnxruntime  # deferred: slow to import, and only a model load needs it

        config = _read_json(folder / "sentence_bert_config.json")
        max_seq_length = int(config["max_seq_length"])
        try:
            max_seq_length = min(max_seq_length, int(_read_json(folder / "config.json")["max_position_embeddings"]))
        except (OSError, ValueError, KeyError):
            pass
        dim = int(_pooling_config(folder)["word_embedding_dimension"])

        def make_session(threads: int = 0):
            return onnxruntime.InferenceSession(
                str(onnx_file), sess_options=session_options(threads), providers=["CPUExecutionProvider"]
            )

        session = make_session()
        unknown = [i.name for i in session.get_inputs() if i.name not in _KNOWN_INPUTS]
        if unknown:
            raise ModelError(
                f"{onnx_file} asks for inputs this runner does not provide: {', '.join(unknown)}.",
                f"Delete {folder} to export it again, or use --backend torch.",
            )
        return cls(
            session,
            encoding_tokenizer(folder, max_seq_length),
            max_seq_length,
            dim,
            make_session=lambda: make_session(1),
        )

    def encode(
        self, texts: Sequence[str], batch_size: int = 32, wordpieces: Mapping[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """(len(texts), dim) float32 unit vectors, in input order. wordpieces: texts already tokenised
        (ids without [CLS]/[SEP], e.g. by the chunker); a batch whose texts all have them skips the
        tokenizer. The graph gets the same arrays either way."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        batches = _length_batches(texts, batch_size)
        if len(batches) < 2 or len(texts) < self.parallel_from or self.workers < 2 or self._make_session is None:
            for rows in batches:
                out[rows] = self._encode_batch([texts[i] for i in rows], wordpieces=wordpieces)
            return out
        # Many small batches at once, one single-threaded run per core, beat one run at a time using every
        # core (benchmarks/bench_encode_batches.py measures it): small matrices leave a shared pool mostly
        # waiting, and small batches stay in cache. Same batches, so the same vectors; a single text (a
        # query) still runs alone on every core.

        bulk = self._bulk_session()

        def run(rows: np.ndarray) -> None:
            out[rows] = self._encode_batch([texts[i] for i in rows], bulk, wordpieces)

        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(run, batches))
        return out

    def _bulk_session(self):
        with self._bulk_lock:
            if self._bulk is None:
                self._bulk = self._make_session()
            return self._bulk

    def token_vectors(self, texts: Sequence[str], batch_size: int = 32) -> list[np.ndarray]:
        """Per text, the model's output state of each wordpiece it sees ([CLS], [SEP] and padding left
        out), L2-normalised: an (n_i, dim) float32 array. For late interaction (qa/rerank.py)."""
        out: list[np.ndarray] = [np.zeros((0, self.dim), dtype=np.float32)] * len(texts)
        for rows in _length_batches(texts, batch_size):
            hidden, encodings = self._run([texts[i] for i in rows], self._session)
            for row, states, encoding in zip(rows, hidden, encodings):
                out[row] = _token_states(states, encoding)
        return out

    def encode_query(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """encode([text])[0] and token_vectors([text])[0] from one run of the graph."""
        hidden, encodings = self._run([text], self._session)
        return _mean_pooled(hidden, np.asarray([encodings[0].attention_mask]))[0], _token_states(
            hidden[0], encodings[0]
        )

    def _run(self, texts: list[str], session):
        """The graph's per-token output for a batch, and the batch's encodings."""
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.asarray([e.type_ids for e in encodings], dtype=np.int64)
        return self._graph(ids, mask, types, session), encodings

    def _graph(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray, session) -> np.ndarray:
        columns = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return session.run([self._output], {name: columns[name] for name in self._input_names})[0]

    def _encode_batch(
        self, texts: list[str], session=None, wordpieces: Mapping[str, np.ndarray] | None = None
    ) -> np.ndarray:
        session = session or self._session
        known = self._pretokenized(texts, wordpieces) if wordpieces else None
        if known is not None:
            ids, mask = known
            return _mean_pooled(self._graph(ids, mask, np.zeros_like(ids), session), mask)
        hidden, encodings = self._run(texts, session)
        return _mean_pooled(hidden, np.asarray([e.attention_mask for e in encodings]))

    def _pretokenized(
        self, texts: list[str], wordpieces: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The (input_ids, attention_mask) the tokenizer would give this batch, built from known
        wordpieces; None when a text is unknown or would be truncated."""
        rows = [wordpieces.get(text) for text in texts]
        if self._frame is None or any(r is None or len(r) + 2 > self.max_seq_length for r in rows):
            return None
        cls, sep, pad = self._frame
        width = max(len(r) for r in rows) + 2
        ids = np.full((len(rows), width), pad, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, 0], ids[i, 1 : len(r) + 1], ids[i, len(r) + 1] = cls, r, sep
            mask[i, : len(r) + 2] = 1
        return ids, mask


def _length_batches(texts: Sequence[str], batch_size: int) -> list[np.ndarray]:
    """Row indexes in batches, longest text first, exactly as sentence-transformers orders them: int8
    activations are quantised per batch (padding included), so the same batches give the same vectors."""
    order = np.argsort([-len(text) for text in texts])
    return [order[start : start + batch_size] for start in range(0, len(texts), batch_size)]


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (an all-zero row stays zero)."""
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def _mean_pooled(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Mean over each row's real tokens ([CLS] and [SEP] included, padding not), L2-normalised."""
    mask = np.asarray(attention_mask, dtype=np.float32)[:, :, None]
    return unit_rows((hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9))


def _special_frame(tokenizer) -> tuple[int, int, int] | None:
    """([CLS] id, [SEP] id, pad id) if the tokenizer frames every text as [CLS] text [SEP] with type
    ids 0 and pads with type 0, else None. Checked on two texts rather than assumed."""
    try:
        empty, word = tokenizer.encode(""), tokenizer.encode("word")
        pad = int((tokenizer.padding or {}).get("pad_id", 0))
        pad_type = int((tokenizer.padding or {}).get("pad_type_id", 0))
        bare = tokenizer.encode("word", add_special_tokens=False).ids
    except Exception:  # any tokenizer this code does not know: tokenise every text
        return None
    if len(empty.ids) != 2 or empty.special_tokens_mask != [1, 1] or pad_type != 0:
        return None
    cls, sep = empty.ids
    if word.ids != [cls, *bare, sep] or any(word.type_ids) or any(empty.type_ids):
        return None
    return cls, sep, pad


def _token_states(states: np.ndarray, encoding) -> np.ndarray:
    """One row's states of its wordpieces ([CLS], [SEP] and padding left out), each L2-normalised."""
    keep = np.asarray(encoding.attention_mask, dtype=bool) & ~np.asarray(encoding.special_tokens_mask, dtype=bool)
    return unit_rows(states[keep])


def session_options(threads: int = 0):
    """ONNX Runtime session options: `threads` intra-op threads (0: one per core), no spinning."""
    import onnxruntime  # deferred: slow to import, and only a model load needs it

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    # Same reason as OMP_WAIT_POLICY in index.backends: ONNX Runtime's own pool spins by default.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def encoding_tokenizer(folder: Path, max_seq_length: int):
    """The fast tokenizer as sentence-transformers calls it: special tokens, truncation, padding to the batch's
    longest."""
    from tokenizers import Tokenizer  # deferred: slow to import, and only a model load needs it

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    # tokenizer.json carries its own settings (for this model: truncate and pad to 128); replace them.
    tokenizer.enable_truncation(max_seq_length)
    pad_token = "[PAD]"
    try:
        configured = _read_json(folder / "tokenizer_config.json").get("pad_token") or pad_token
        pad_token = configured["content"] if isinstance(configured, dict) else str(configured)
    except (OSError, ValueError, KeyError):
        pass
    pad_id = tokenizer.token_to_id(pad_token)
    tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token=pad_token)
    return tokenizer


def wordpiece_tokenizer(folder: Path):
    """The fast tokenizer for chunking: no truncation, no padding (special tokens are left out per call)."""
    from tokenizers import Tokenizer  # deferred: slow to import, and only a model load needs it

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


@functools.cache
def splits_words_at_whitespace(folder: Path) -> bool:
    """Whether the model's tokenizer.json is BERT's: a normaliser that maps whitespace to spaces and a
    pre-tokenizer that splits there, so wordpieces never cross whitespace."""
    try:
        config = _read_json(folder / "tokenizer.json")
        return (
            config["normalizer"]["type"] == "BertNormalizer" and config["pre_tokenizer"]["type"] == "BertPreTokenizer"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False
