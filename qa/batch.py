"""Batch asking (`qa ask --json -`): one question per input line, one `qa ask --json` object per output line."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator

from index.errors import InputError
from qa.engine import Engine, clean_question


def ask_lines(
    engine: Engine, lines: Iterable[str], *, k: int, mode: str, sources: tuple[str, ...] | None = None
) -> Iterator[dict]:
    """The `qa ask --json` payload for each line, asked of one open engine; a line that is no question (empty,
    blank) gets {"question": line, "error": message} and the lines after it are still asked. Other errors (an
    unknown source, a broken index) concern every line, so they end the batch as they end `qa ask`."""
    for line in lines:
        question = line.rstrip("\r\n")
        try:
            clean_question(question)
        except InputError as exc:
            yield {"question": question, "error": exc.one_line()}
            continue
        yield engine.ask(question, k=k, mode=mode, sources=sources or None).to_json()


def write_json_lines(payloads: Iterable[dict], write: Callable[[str], None]) -> None:
    """Each payload as one line of JSON (UTF-8, not ASCII escapes), written as soon as it is ready."""
    for payload in payloads:
        write(json.dumps(payload, ensure_ascii=False))
