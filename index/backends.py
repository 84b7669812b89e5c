"""Model and backend names plus the process settings torch/faiss need, without importing numpy.

The CLI and the chat read these before their first frame, where importing index.embedder (and numpy)
would slow start-up, so they live here and index.embedder re-exports them.
"""

from __future__ import annotations

import os

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
BACKENDS = ("torch", "onnx", "onnx-int8")
DEFAULT_BACKEND = "onnx"
"""fp32 ONNX run without torch: the same vectors as torch (cosine >= 0.9999999) and the same
retrieval, and it loads far faster since torch is never imported (benchmarks/bench_startup.py)."""

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no library chatter on the user's terminal
# OpenMP (torch, faiss) busy-waits between parallel regions by default; on a busy machine the
# spinning threads starve each other and a query takes many times longer.
# Must be set before torch or faiss is first imported, which happens later, inside functions.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
