"""Helpers to drive the chat headlessly (tests, demos): a small corpus, a fast app, screen text."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

LONG_FILLER = "Filler line {n} says nothing about keepers or towers."

DEMO_FILES = {
    "paris.txt": (
        "Paris is the capital of France.\n"
        "It has the Eiffel Tower, built in 1889 for the World's Fair.\n"
        "\n"
        "The Seine flows through Paris from east to west.\n"
    ),
    "evil.txt": (
        "Attack text: [bold red]x[/] and [link=http://e]y[/link] plus \x1b[31mred\x1b[0m ink.\n"
        "The injection document mentions markup and escape codes.\n"
    ),
    "notes/lighthouse.txt": "\n".join(
        [LONG_FILLER.format(n=n) for n in range(1, 100)]
        + ["The lighthouse keeper was named Aurelio Bassani and he lived on Skerry Island."]
        + [LONG_FILLER.format(n=n) for n in range(101, 140)]
    )
    + "\n",
}


def write_demo_corpus(root: Path) -> Path:
    """Three small documents: facts, a markup/ANSI injection, and a long file with a fact at line 100."""
    for name, content in DEMO_FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return root


def fake_app(corpus: Path, embedder=None, **kwargs):
    """The chat over corpus with the hashing fake embedder: loads in milliseconds."""
    from index.embedder import HashingEmbedder
    from qa.config import RunConfig
    from tui.app import make_app

    config = RunConfig(corpus=(corpus,), index_dir=kwargs.pop("index_dir", None))
    return make_app(config, embedder=embedder or HashingEmbedder(), **kwargs)


def prebuild(corpus: Path, embedder=None) -> Path:
    """Index corpus where the app will look for it, so the app opens it without a first-run build."""
    from index.builder import build_index
    from index.embedder import HashingEmbedder
    from qa.config import RunConfig

    config = RunConfig(corpus=(corpus,))
    build_index(config.paths, config.resolved_index_dir, embedder or HashingEmbedder())
    return config.resolved_index_dir


async def settle(pilot) -> None:
    """Let workers finish and their messages (and the mounts they cause) be processed."""
    from textual.worker import WorkerFailed

    for _ in range(3):
        for worker in list(pilot.app.workers):
            try:
                await worker.wait()
            except WorkerFailed:
                pass  # the app reports it; tests assert on what the user sees
        await pilot.pause()


async def ask(pilot, question: str) -> None:
    from tui.widgets.question_input import QuestionInput

    box = pilot.app.query_one(QuestionInput)
    box.focus()
    box.value = question
    await pilot.press("enter")
    await settle(pilot)


def screen_text(app) -> str:
    """What the terminal shows, as plain text (no colours)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, color_system=None, record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def notices(app) -> list[tuple[str, str]]:
    """(severity, message) of the notifications raised so far (recorded even when toasts are hidden)."""
    return [(n.severity, n.message) for n in app._notifications]
