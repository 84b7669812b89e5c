"""What the user reads while the model is prepared once (index/preparing.py announces it): the wording the CLI
and the chat share, and the CLI's live line on stderr."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from index.preparing import ModelPreparation, listen

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress


def preparing_text(step: ModelPreparation, now: float | None = None) -> str:
    """ "Preparing the model (once, about 30 s): 4 s" while it runs; past the usual time it says so, so
    a busy machine's longer export does not read as a wrong promise."""
    elapsed = step.elapsed(now)
    if elapsed > step.expected_seconds:
        return f"Preparing the model (once; longer than the usual {step.expected_seconds:.0f} s): {elapsed:.0f} s"
    return f"{preparing_label(step)}: {elapsed:.0f} s"


def preparing_label(step: ModelPreparation) -> str:
    """Without the seconds, for a progress bar whose own column counts them."""
    return f"Preparing the model (once, about {step.expected_seconds:.0f} s)"


def prepared_text(step: ModelPreparation, now: float | None = None) -> str:
    """The line left behind once the export is done (or failed)."""
    if step.stage == "failed":
        return f"Preparing the model failed after {step.elapsed(now):.0f} s."
    return f"Prepared the model in {step.elapsed(now):.0f} s (once; later runs reuse it)."


class _Ticking:
    """A renderable whose text is recomputed at each refresh of a live display, so the seconds tick."""

    def __init__(self, step: ModelPreparation) -> None:
        self.step = step

    def __rich__(self):
        from rich.text import Text

        return Text(preparing_text(self.step))


@contextlib.contextmanager
def model_notice(console: Console, bar: Progress | None = None) -> Iterator[None]:
    """While inside, a model export shows a ticking line on console (a row of bar when one is running,
    else a spinner of its own) and leaves one line saying how long it took. Nothing when console is not
    a terminal, so piped and --json output stay as they were."""
    if not console.is_terminal:
        yield
        return
    lock = threading.Lock()
    shown: dict[str, object] = {}

    def on_step(step: ModelPreparation) -> None:
        with lock:
            if step.stage == "preparing":
                if bar is not None:
                    # The bar's own elapsed column ticks; no total: a pulsing bar and no count.
                    shown["task"] = bar.add_task(preparing_label(step), total=None)
                else:
                    status = console.status(_Ticking(step))
                    status.start()
                    shown["status"] = status
                return
            task = shown.pop("task", None)
            if task is not None and bar is not None:
                bar.remove_task(task)
            status = shown.pop("status", None)
            if status is not None:
                status.stop()
            console.print(prepared_text(step), style="dim", highlight=False, markup=False)

    stop = listen(on_step)
    try:
        yield
    finally:
        stop()
        with lock:
            status = shown.pop("status", None)
            if status is not None:
                status.stop()
