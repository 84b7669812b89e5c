"""Messages the background workers post back to the app (dataclasses, handled on the UI thread)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message

from index.preparing import ModelPreparation
from qa.results import Answer, Citation

if TYPE_CHECKING:
    from qa.engine import Engine


@dataclass
class EngineReady(Message):
    """The index is open and the model loaded; queued questions can be answered."""

    engine: Engine
    report: Any = None
    """The BuildReport when the index had to be built or updated first."""


@dataclass
class FilesChanged(Message):
    """Files of the corpus differ from the index (tui/watch.py), which was engine's when compared."""

    engine: Engine
    summary: str
    """What an update would do: "0 new, 1 changed, 0 removed"."""
    changed_paths: frozenset[str] | None = None
    """The paths compared, when a change notification named them (None: every file was)."""


@dataclass
class FoldersGone(Message):
    """Corpus paths are not there (moved away or deleted, perhaps for a moment); () once they are back."""

    missing: tuple


@dataclass
class FilesNotified(Message):
    """The operating system reported changed files (index/changes.py): compare them soon."""


@dataclass
class IndexProgress(Message):
    """One step of indexing; a newer one replaces the older on the status line."""

    stage: str
    done: int
    total: int
    update: bool = False
    """Part of bringing an existing index up to date when the chat opens (not a first build)."""


@dataclass
class ModelPreparing(Message):
    """The model's one-time preparation started, ended or failed (index/preparing.py)."""

    step: ModelPreparation


@dataclass
class AnswerReady(Message):
    """The engine answered the question of one turn."""

    turn_id: int
    answer: Answer


@dataclass
class AskFailed(Message):
    """The engine refused a question (bad filter, empty question) with a one-line reason."""

    turn_id: int
    reason: str


@dataclass
class CitationChosen(Message):
    """A citation was highlighted or picked; the source pane should show it."""

    citation: Citation
    open_pane: bool
    """True when the user picked it (Enter, click); False when merely moving over it."""
    answer: Citation | None = None
    """The answer sentence, when it lies inside this citation: the pane emphasises it and scrolls to it."""
    question: str = ""
    """The question asked: its words are marked inside the cited span."""
