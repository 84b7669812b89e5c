"""Command palette entries and the help screen's key list, both derived from the app's actions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Protocol

from textual.app import SystemCommand
from textual.binding import Binding

from tui.widgets.citations import CitationList
from tui.widgets.question_input import QuestionInput
from tui.widgets.source_view import SourcePane, SourceView

K_CHOICES = (3, 5, 10, 20)


class ChatActions(Protocol):
    """What the palette and the help screen need of the chat (the app in tui/app.py), named here so this
    module does not import the app that imports it."""

    BINDINGS: list
    set_mode: Callable[[str], None]
    set_k: Callable[[int], None]
    action_filter: Callable[[], None]
    action_toggle_scores: Callable[[], None]
    action_reindex: Callable[..., None]
    action_bench: Callable[[], None]
    action_conversations: Callable[[], None]
    action_new_conversation: Callable[[], None]
    action_copy_turn: Callable[[], None]
    action_export_turn: Callable[[], None]
    action_export_conversation: Callable[[], None]
    action_open_editor: Callable[[], None]
    action_help: Callable[[], None]


def chat_commands(app: ChatActions) -> Iterable[SystemCommand]:
    """Everything the bindings do, plus direct choices of mode and k."""
    from qa.settings import MODES  # deferred: the first frame does not need it

    yield SystemCommand("Filter documents", "Search only some documents (ctrl+f)", app.action_filter)
    for mode in MODES:
        yield SystemCommand(
            f"Mode: {mode}", f"Retrieve with {mode} scoring (ctrl+t cycles)", partial(app.set_mode, mode)
        )
    for k in K_CHOICES:
        yield SystemCommand(f"Cite {k} passages", f"Set k = {k} (ctrl+g cycles)", partial(app.set_k, k))
    yield SystemCommand(
        "Toggle score breakdown", "Show bm25 / dense / fused per passage (ctrl+b)", app.action_toggle_scores
    )
    yield SystemCommand(
        "Re-index", "Index new and changed files, with progress (ctrl+r; again cancels)", app.action_reindex
    )
    yield SystemCommand("Rebuild index", "Re-embed every file from scratch", partial(app.action_reindex, True))
    yield SystemCommand(
        "Bench: accuracy on a question file", "Hit@1, MRR per mode and why each question missed (f2)", app.action_bench
    )
    yield SystemCommand("Reopen a past conversation", "Browse saved conversations (ctrl+o)", app.action_conversations)
    yield SystemCommand("New conversation", "Start an empty conversation (ctrl+n)", app.action_new_conversation)
    yield SystemCommand("Copy turn as Markdown", "The selected (or last) turn with its citations", app.action_copy_turn)
    yield SystemCommand(
        "Export conversation as Markdown",
        "Every question, answer and citation to a file; the notice names it (ctrl+s)",
        app.action_export_conversation,
    )
    yield SystemCommand(
        "Export turn as Markdown",
        "Write the selected (or last) turn to a file (s in the citations)",
        app.action_export_turn,
    )
    yield SystemCommand("Open citation in $EDITOR", "At the cited line (e)", app.action_open_editor)
    yield SystemCommand("Help", "Keys and how the chat works (? or f1)", app.action_help)


def _keys(binding: Binding) -> str:
    names = {"question_mark": "?", "escape": "esc", "enter": "enter"}
    return " / ".join(names.get(k.strip(), k.strip()) for k in binding.key.split(","))


def help_sections(app: ChatActions) -> list[tuple[str, list[tuple[str, str]]]]:
    """(section title, [(keys, description)]) from the bindings of the app and its widgets."""
    from tui.screens.bench import BenchScreen  # deferred: the first frame does not need it

    def rows(bindings) -> list[tuple[str, str]]:
        return [(_keys(b), b.description) for b in bindings if isinstance(b, Binding) and b.description]

    return [
        ("Anywhere", rows(app.BINDINGS) + [("ctrl+p", "Command palette"), ("ctrl+q", "Quit")]),
        ("Question box", [("enter", "Ask")] + rows(QuestionInput.BINDINGS)),
        ("Citations", [("up / down", "Move; the source pane follows")] + rows(CitationList.BINDINGS)),
        ("Source pane", [("arrows, pgup/pgdn", "Scroll")] + rows(SourceView.BINDINGS) + rows(SourcePane.BINDINGS)),
        (
            "Bench (f2)",
            [("up / down", "Pick a question; its drill-down follows"), ("enter", "Ask it in the chat")]
            + rows(BenchScreen.BINDINGS),
        ),
    ]
