"""The torch-free onnx-int8 runner gives sentence-transformers' vectors and the transformers tokenizer's chunks."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, SEEDS

from index.chunker import ChunkSettings, chunk_text, split_sentences
from index.embedder import SentenceTransformerEmbedder, model_path, sentence_transformer_onnx, weights_hash
from index.onnx_encoder import OnnxEncoder

NBSP = "\u00a0"
ODD_TEXTS = [
    "",
    " ",
    NBSP,
    f"Hollande{NBSP}is likely to leave Washington",
    "Ça coûte 10 € — naïve café, 東京, Привет, 🙂",
    " ".join(f"word{i % 50}" for i in range(1000)),  # far past 256 tokens: truncated
    "x" * 5000,
    "\t\n",
    "[CLS] [SEP] [PAD] [UNK]",
]


def seed_texts() -> list[str]:
    documents = [path.read_text(encoding="utf-8") for path in sorted(SEEDS.glob("*.txt"))]
    return documents + [doc[s:e] for doc in documents for s, e in split_sentences(doc)]


class TransformersOffsets:
    """The chunker's tokenizer as it was: the transformers fast tokenizer, no special tokens."""

    def __init__(self, embedder: SentenceTransformerEmbedder) -> None:
        self._tokenizer = embedder.tokenizer

    def offsets(self, texts):
        encoded = self._tokenizer(
            list(texts), add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False
        )
        return [[tuple(pair) for pair in offs] for offs in encoded["offset_mapping"]]


def test_offsets_and_chunks_match_the_transformers_tokenizer():
    embedder = SentenceTransformerEmbedder("onnx-int8")
    reference = TransformersOffsets(embedder)
    texts = seed_texts() + ODD_TEXTS
    assert embedder.offsets(texts) == reference.offsets(texts)
    for settings in (ChunkSettings(), ChunkSettings(max_tokens=24, overlap_tokens=8)):
        for text in seed_texts()[:2] + ODD_TEXTS:
            assert chunk_text(text, embedder, settings, 254) == chunk_text(text, reference, settings, 254)


def test_bundled_model_is_a_pipeline_the_runner_reproduces(tmp_path):
    assert OnnxEncoder.supports(model_path())
    folder = tmp_path / "model"
    shutil.copytree(model_path(), folder, ignore=shutil.ignore_patterns("*.safetensors"))
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(config))
    assert not OnnxEncoder.supports(folder), "CLS pooling must go through sentence-transformers"


def test_onnx_int8_fingerprint_is_unchanged():
    """Indexes built by the sentence-transformers ONNX path keep opening."""
    embedder = SentenceTransformerEmbedder("onnx-int8")
    assert embedder.fingerprint().startswith(f"{weights_hash(model_path())[:16]}:onnx-int8:")


@pytest.mark.slow
def test_runner_matches_sentence_transformers_onnx(onnx_int8_home, monkeypatch):
    monkeypatch.setenv("QA_HOME", str(onnx_int8_home))
    embedder = SentenceTransformerEmbedder("onnx-int8")
    folder, file_name = embedder.onnx_int8_file()
    reference = sentence_transformer_onnx(folder, file_name)
    embedder.load()
    assert isinstance(embedder._model, OnnxEncoder)
    assert (embedder.dim, embedder.max_tokens) == (384, 254)
    texts = seed_texts() + ODD_TEXTS
    for batch_size in (32, 4):
        embedder.batch_size = batch_size
        ours = embedder.embed(texts)
        theirs = reference.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        assert ours.dtype == np.float32 and ours.shape == theirs.shape
        cosine = (ours * theirs).sum(axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1))
        print(f"batch {batch_size}: min cosine {cosine.min():.7f}, max abs diff {np.abs(ours - theirs).max():.1e}")
        assert cosine.min() >= 0.9999
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_embedding_with_the_export_never_imports_torch(onnx_int8_home):
    code = (
        "import json, sys\n"
        "from index.embedder import SentenceTransformerEmbedder\n"
        "embedder = SentenceTransformerEmbedder('onnx-int8')\n"
        "vectors = embedder.embed(['Who did Hollande meet in Washington?'])\n"
        "embedder.offsets(['Chunking needs offsets too.'])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules}"
        " & {'torch', 'transformers', 'sentence_transformers', 'optimum'})\n"
        "print(json.dumps([heavy, vectors.shape[1], type(embedder._model).__name__]))"
    )
    env = {**os.environ, "QA_HOME": str(onnx_int8_home)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    heavy, dim, runner = json.loads(result.stdout.strip().splitlines()[-1])
    assert (heavy, dim, runner) == ([], 384, "OnnxEncoder")


def test_fp32_onnx_backend_has_its_own_fingerprint():
    """Indexes built by torch, fp32 ONNX and int8 ONNX are never mixed."""
    prefix = weights_hash(model_path())[:16]
    fingerprints = {
        backend: SentenceTransformerEmbedder(backend).fingerprint() for backend in ("torch", "onnx", "onnx-int8")
    }
    assert fingerprints["onnx"] == f"{prefix}:onnx"
    assert len(set(fingerprints.values())) == 3


def test_every_backend_option_offers_onnx():
    import click

    from index.backends import BACKENDS
    from qa.cli import cli

    assert "onnx" in BACKENDS
    ctx = click.Context(cli)
    every = [cli.get_command(ctx, name) for name in cli.list_commands(ctx)]  # with those tui registers
    commands = [cmd for cmd in every if any(p.name == "backend" for p in cmd.params)]
    assert {cmd.name for cmd in commands} >= {"index", "ask", "chat", "serve", "bench"}
    for cmd in commands:
        option = next(p for p in cmd.params if p.name == "backend")
        assert isinstance(option.type, click.Choice) and set(option.type.choices) == set(BACKENDS)


@pytest.mark.slow
def test_fp32_onnx_runner_matches_torch(onnx_home, real_embedder, monkeypatch):
    monkeypatch.setenv("QA_HOME", str(onnx_home))
    embedder = SentenceTransformerEmbedder("onnx")
    folder, file_name = embedder.onnx_file()
    assert file_name == "onnx/model.onnx" and (folder / file_name).is_file()
    embedder.load()
    assert isinstance(embedder._model, OnnxEncoder)
    assert (embedder.dim, embedder.max_tokens) == (real_embedder.dim, real_embedder.max_tokens) == (384, 254)
    texts = seed_texts() + ODD_TEXTS
    ours = embedder.embed(texts)
    theirs = real_embedder.embed(texts)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    cosine = (ours * theirs).sum(axis=1)
    print(f"fp32 onnx vs torch: min cosine {cosine.min():.7f}, max abs diff {np.abs(ours - theirs).max():.1e}")
    assert cosine.min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_an_int8_only_export_gains_the_fp32_graph_and_keeps_its_int8_file(onnx_home, tmp_path, monkeypatch):
    """An export made before the fp32 backend existed holds only the int8 file: the fp32 one is added beside it."""
    monkeypatch.setenv("QA_HOME", str(onnx_home))
    shared, int8_name = SentenceTransformerEmbedder("onnx-int8").onnx_file("onnx-int8")
    monkeypatch.setenv("QA_HOME", str(tmp_path))
    monkeypatch.delenv("QA_MODEL_CACHE", raising=False)  # a cache of its own, not the session's shared one
    from index.locations import onnx_cache_dir

    old = onnx_cache_dir() / shared.name
    shutil.copytree(shared, old, ignore=shutil.ignore_patterns("model.onnx"))
    int8 = old / int8_name
    before = (int8.stat().st_ino, int8.stat().st_mtime_ns, int8.read_bytes())
    folder, file_name = SentenceTransformerEmbedder("onnx").onnx_file()
    assert folder == old and (folder / file_name).is_file()
    assert (int8.stat().st_ino, int8.stat().st_mtime_ns, int8.read_bytes()) == before
    assert sorted(p.name for p in onnx_cache_dir().iterdir()) == [old.name], "no temporary folder left behind"


@pytest.mark.slow
def test_first_run_export_is_quiet(tmp_path):
    """The one-time export on a fresh machine prints only our own lines: no library warnings or logs."""
    inherited = {
        k: v for k, v in os.environ.items() if k not in ("TRANSFORMERS_VERBOSITY", "PYTHONWARNINGS")
    }  # qa must set its own
    env = {**inherited, "QA_HOME": str(tmp_path / "home"), "QA_MODEL_CACHE": str(tmp_path / "models")}
    run = subprocess.run(
        [sys.executable, "-m", "qa", "ask", "Who did Hollande meet in Washington?", "--json"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=REPO,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout)["found"]
    noise = [line for line in run.stderr.splitlines() if re.search(r"warn|deprecat|export|onnx|torch", line, re.I)]
    assert not noise, noise
    assert any((tmp_path / "models").glob("*/onnx/model.onnx"))


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_parallel_batches_give_the_serial_vectors(onnx_home, backend, monkeypatch):
    """Many texts run as small batches on every core at once; the vectors are those of one batch at a time."""
    monkeypatch.setenv("QA_HOME", str(onnx_home))
    embedder = SentenceTransformerEmbedder(backend)
    embedder.load()
    encoder = embedder._model
    assert isinstance(encoder, OnnxEncoder)
    texts = seed_texts() + ODD_TEXTS
    encoder.workers = 1
    serial = embedder.embed(texts)
    assert encoder._bulk is None
    encoder.workers = 3
    encoder.parallel_from = 2
    parallel = embedder.embed(texts)
    assert encoder._bulk is not None  # the parallel path ran
    np.testing.assert_allclose(parallel, serial, atol=1e-5)
    if backend == "onnx":  # (int8 quantises activations per batch, so a text alone differs from it in a batch)
        one = embedder.embed(texts[:1])  # a single text (a query) runs alone, on the main session
        np.testing.assert_allclose(one[0], serial[0], atol=1e-5)


@pytest.mark.slow
def test_token_vectors_match_sentence_transformers(onnx_home, real_embedder, monkeypatch):
    """Late interaction reads one state per wordpiece: the ONNX runner's equal torch's (special tokens left out)."""
    monkeypatch.setenv("QA_HOME", str(onnx_home))
    embedder = SentenceTransformerEmbedder("onnx")
    texts = seed_texts()[2:40] + ODD_TEXTS
    ours = embedder.token_vectors(texts)
    theirs = real_embedder.token_vectors(texts)
    pieces = [min(len(o), embedder.max_tokens) for o in embedder.offsets(texts)]
    assert [v.shape for v in ours] == [v.shape for v in theirs] == [(n, 384) for n in pieces]
    for a, b in zip(ours, theirs):
        if len(a):
            np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
            assert (a * b).sum(axis=1).min() >= 0.999


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_embed_query_is_embed_and_token_vectors_from_one_run(onnx_home, backend, monkeypatch):
    monkeypatch.setenv("QA_HOME", str(onnx_home))
    embedder = SentenceTransformerEmbedder(backend)
    for text in ["Where does Hollande go after his US trip?", f"Hollande{NBSP}is likely", "x"]:
        vector, tokens = embedder.embed_query(text)
        np.testing.assert_array_equal(vector, embedder.embed([text])[0])
        np.testing.assert_array_equal(tokens, embedder.token_vectors([text])[0])


def test_a_few_dozen_texts_never_pay_for_the_parallel_session(onnx_home, monkeypatch):
    """The answer verifier embeds a question's words mid-answer: that must not create the ~0.3 s bulk session."""
    monkeypatch.setenv("QA_HOME", str(onnx_home))
    embedder = SentenceTransformerEmbedder("onnx")
    embedder.load()
    encoder = embedder._model
    encoder.workers = 2
    words = [f"word{i}" for i in range(40)]
    embedder.embed(words)
    assert encoder._bulk is None
    embedder.embed(words * 4)  # 160 texts: an index build's share
    assert encoder._bulk is not None


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_texts_the_chunker_tokenised_are_not_tokenised_again(onnx_home, backend, monkeypatch):
    """A build embeds the chunker's sentences: embed() reuses the wordpieces offsets() found, and the
    graph gets the very arrays the tokenizer would give (same vectors, bit for bit), serial or parallel."""
    monkeypatch.setenv("QA_HOME", str(onnx_home))
    fresh, reusing = SentenceTransformerEmbedder(backend), SentenceTransformerEmbedder(backend)
    texts = seed_texts()[2:] + ODD_TEXTS  # the sentences, and texts too long to reuse (they are truncated)
    expected = fresh.embed(texts)
    reusing.load()
    encoder = reusing._model
    calls = []
    tokenize = encoder._tokenizer.encode_batch
    monkeypatch.setattr(
        encoder,
        "_tokenizer",
        type("Spy", (), {"encode_batch": lambda self, batch: calls.append(len(batch)) or tokenize(batch)})(),
    )
    reusing.offsets(texts)
    assert set(texts[: -len(ODD_TEXTS)]) <= set(reusing._tokenized)
    for parallel_from in (10_000, 2):
        encoder.parallel_from = parallel_from
        reusing.offsets(texts)
        calls.clear()
        np.testing.assert_array_equal(reusing.embed(texts), expected)
        assert 0 < sum(calls) < len(texts) / 4, "only the batches holding a text too long to reuse were tokenised"
        assert not reusing._tokenized, "embed() takes out the wordpieces it used"
    calls.clear()
    np.testing.assert_array_equal(reusing.embed(texts), expected)  # nothing remembered: all tokenised
    assert sum(calls) == len(texts)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["avx2", "avx512", "avx512_vnni"])
def test_int8_export_for_each_cpu_kind_is_found_and_gives_the_fp32_vectors(onnx_home, tmp_path, monkeypatch, target):
    """The int8 export for AVX2 (unsigned weights) and for AVX-512 (signed) is loaded under the name it was
    written with, whichever CPU runs the test; its vectors stay close to the fp32 graph's."""
    import index.embedder as embedder_module

    monkeypatch.setenv("QA_HOME", str(onnx_home))
    fp32 = SentenceTransformerEmbedder("onnx")
    fp32_folder, _ = fp32.onnx_file()
    monkeypatch.setenv("QA_HOME", str(tmp_path))
    monkeypatch.setenv("QA_MODEL_CACHE", str(tmp_path / "models"))
    from index.locations import onnx_cache_dir

    shutil.copytree(fp32_folder, onnx_cache_dir() / fp32_folder.name, ignore=shutil.ignore_patterns("*int8*"))
    monkeypatch.setattr(embedder_module, "_quantization_target", lambda: target)
    int8 = SentenceTransformerEmbedder("onnx-int8")
    folder, file_name = int8.onnx_file()
    assert (folder / file_name).is_file() and target in file_name
    texts = seed_texts()[:40]
    cosine = (int8.embed(texts) * fp32.embed(texts)).sum(axis=1)
    assert cosine.min() >= 0.95, cosine.min()
