"""Announces the model's one-time preparation (the ONNX export) to whoever shows progress: the CLI's
stderr, the chat's status line. index/ only announces; it never prints. Kept free of heavy imports so the
chat can listen before its first frame."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

EXPECTED_SECONDS = {"onnx": 30.0, "onnx-int8": 40.0}
"""About how long the one-time export takes on an idle 2-core machine, per backend (docs/first_run.md)."""


@dataclass(frozen=True)
class ModelPreparation:
    """One step of preparing the model: "preparing" when the export starts, then "ready" or "failed"."""

    stage: str
    backend: str
    started: float
    """time.monotonic() when the export started."""
    expected_seconds: float

    def elapsed(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.started


Listener = Callable[[ModelPreparation], None]

_listeners: list[Listener] = []
_lock = threading.Lock()


def listen(listener: Listener) -> Callable[[], None]:
    """Call listener (from whatever thread exports) on each step; returns the function that stops it."""
    with _lock:
        _listeners.append(listener)

    def stop() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return stop


def announce(step: ModelPreparation) -> None:
    """Tell every listener; a failing listener never fails the export."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(step)
        except Exception:  # noqa: BLE001 - showing progress is best effort
            pass
