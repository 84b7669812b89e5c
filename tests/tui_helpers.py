"""Helpers to drive the chat headlessly in tests: a small corpus, a fast app, screen text."""

from __future__ import annotations

import asyncio
import functools
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


DEMO_QUESTIONS = (
    # (question, [(source, evidence span)]): with CannedEngine these come out hit@1, rank 3 (evil.txt above
    # it), rank 2 with a wrong abstention, a miss, a correct abstention, and an answer that should be one.
    ("What is the capital of France?", [("paris.txt", "capital of France")]),
    ("Which capital is far from the keeper?", [("notes/lighthouse.txt", "Aurelio Bassani")]),
    ("Which way does the river flow?", [("paris.txt", "The Seine flows through Paris")]),
    ("What do the escape codes say?", [("evil.txt", "escape codes")]),
    ("Who painted the Mona Lisa?", []),
    ("Who was the lighthouse keeper?", []),
)


def write_demo_questions(path: Path) -> Path:
    """DEMO_QUESTIONS as a question file in our JSONL format."""
    import json

    rows = ({"question": q, "evidence": [{"source": s, "text": t} for s, t in ev]} for q, ev in DEMO_QUESTIONS)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def sync(test):
    """Run an async Pilot test under plain pytest (no asyncio plugin needed); fixtures still resolve."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return run


def write_demo_corpus(root: Path) -> Path:
    """Three small documents: facts, a markup/ANSI injection, and a long file with a fact at line 100."""
    for name, content in DEMO_FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return root


def fake_app(corpus: Path, embedder=None, **kwargs):
    """The chat over corpus with the hashing fake embedder: loads in milliseconds."""
    from fakes import HashingEmbedder

    from qa.config import RunConfig
    from tui.app import make_app

    config = RunConfig(corpus=(corpus,), index_dir=kwargs.pop("index_dir", None))
    # No file watch unless asked for: a test's own edits must not be indexed behind its back.
    return make_app(
        config, embedder=embedder or HashingEmbedder(), watch_seconds=kwargs.pop("watch_seconds", None), **kwargs
    )


def held_loader(corpus: Path, embedder):
    """An engine loader that waits until `release.set()` (at most 10 s) before loading: the chat is up and
    usable while its index is still loading. Returns (loader, release)."""
    import threading

    from qa.config import RunConfig
    from tui.app import default_loader

    release = threading.Event()
    inner = default_loader(RunConfig(corpus=(corpus,)), embedder)

    def loader(progress, cancelled, rebuild=False):
        release.wait(10)
        return inner(progress, cancelled, rebuild)

    return loader, release


def prebuild(corpus: Path, embedder=None) -> Path:
    """Index corpus where the app will look for it, so the app opens it without a first-run build."""
    from fakes import HashingEmbedder

    from index.builder import build_index
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
    await pilot.wait_for_scheduled_animations()  # a picture taken mid-animation would depend on the machine's speed


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
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system=None,
        record=True,
        legacy_windows=False,
    )
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def static_text(static) -> str:
    """A Static's content as plain text, unwrapped and right-stripped (long lines don't break assertions)."""
    console = Console(width=400, file=io.StringIO(), color_system=None)
    with console.capture() as capture:
        console.print(static.content)
    return "\n".join(line.rstrip() for line in capture.get().splitlines()) + "\n"


def notices(app) -> list[tuple[str, str]]:
    """(severity, message) of the notifications raised so far (recorded even when toasts are hidden)."""
    return [(n.severity, n.message) for n in app._notifications]


def _cite(root: Path, source: str, first: int, last: int, text: str | None = None):
    """A Citation of lines first..last of a demo file (or of the given text inside it), offsets computed."""
    from qa.results import Citation

    whole = (root / source).read_text(encoding="utf-8")
    lines = whole.split("\n")
    start = sum(len(line) + 1 for line in lines[: first - 1])
    quoted = text if text is not None else "\n".join(lines[first - 1 : last])
    start = whole.index(quoted, start)
    return Citation(source, first, last, start, start + len(quoted), quoted)


def canned_answer(root: Path, question: str):
    """Fixed replies over the demo corpus, independent of how retrieval is tuned."""
    from qa.results import Answer, AnswerSpan, Passage, Scores

    def marks(sentence: str, *words: str) -> tuple[tuple[int, int], ...]:
        return tuple((sentence.index(w), sentence.index(w) + len(w)) for w in words)

    def passage(rank, citation, fused):
        return Passage(rank, rank, citation, Scores(round(fused * 6, 2), fused, fused))

    keeper = "The lighthouse keeper was named Aurelio Bassani and he lived on Skerry Island."
    if "capital" in question:
        sentence = "Paris is the capital of France."
        span = AnswerSpan(_cite(root, "paris.txt", 1, 1, sentence), 0.93, 1, marks(sentence, "capital", "France"))
        passages = (
            passage(1, _cite(root, "paris.txt", 1, 4), 0.91),
            passage(2, _cite(root, "evil.txt", 1, 2), 0.32),
            passage(3, _cite(root, "notes/lighthouse.txt", 91, 102), 0.2),
        )
    elif "keeper" in question:
        span = AnswerSpan(
            _cite(root, "notes/lighthouse.txt", 100, 100, keeper),
            0.82,
            1,
            marks(keeper, "lighthouse", "keeper", "Skerry", "Island"),
        )
        passages = (
            passage(1, _cite(root, "notes/lighthouse.txt", 91, 102), 0.78),
            passage(2, _cite(root, "paris.txt", 1, 4), 0.21),
        )
    else:
        span = AnswerSpan(_cite(root, "paris.txt", 4, 4, "The Seine flows through Paris from east to west."), 0.07, 2)
        passages = (
            passage(1, _cite(root, "notes/lighthouse.txt", 1, 12), 0.12),
            passage(2, _cite(root, "paris.txt", 1, 4), 0.11),
        )
    found = span.confidence >= 0.5
    return Answer(question, found, span if found else None, passages, "hybrid", span, 0.5)


class CannedEngine:
    """Stands in for qa.engine.Engine in snapshot tests: pictures change only when the chat does."""

    def __init__(self, root: Path) -> None:
        from types import SimpleNamespace

        from fakes import HashingEmbedder

        self.root = root.resolve()
        self.embedder = HashingEmbedder()
        self.index = SimpleNamespace(n_chunks=17)

    def sources(self) -> list[str]:
        return sorted(DEMO_FILES)

    def document_text(self, source: str) -> str | None:
        return (self.root / source).read_text(encoding="utf-8")

    def ask(self, question: str, k: int = 5, mode: str | None = None, sources=None):
        return canned_answer(self.root, question)

    def close(self) -> None:
        pass


def canned_app(corpus: Path, **kwargs):
    """The chat over the demo corpus with canned answers (for snapshot pictures)."""
    from qa.config import RunConfig
    from tui.app import make_app

    # No file watch: its comparisons (every 3 s) would run beside the picture on a slow machine.
    kwargs.setdefault("watch_seconds", None)
    return make_app(RunConfig(corpus=(corpus,)), engine_loader=lambda *_: (CannedEngine(corpus), None), **kwargs)
