"""The one error hierarchy: every message says what happened and what to do next."""

from __future__ import annotations


class QAError(Exception):
    """A problem the user can fix; shown as one line, never as a traceback."""

    exit_code = 1

    def __init__(self, message: str, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """Message and fix on one line; characters that are not printable (escape sequences, newlines
        from a file name or a tampered manifest) are shown as '?', never sent to the terminal."""
        text = f"{self.message} {self.fix}" if self.fix else self.message
        return "".join(ch if ch.isprintable() else "?" for ch in text)


class UndecodableError(ValueError):
    """A file's bytes are not text a reader accepts; the message says why, after the file's name, in skip reports."""


class InputError(QAError):
    """A path or argument the user gave is unusable."""

    exit_code = 2


class EmptyCorpusError(InputError):
    """No indexable documents were found."""


class IndexMissingError(QAError):
    """There is no index at the expected place."""


class IndexMismatchError(QAError):
    """The index was built with other settings (model, backend, chunker, format)."""


REBUILD_HINT = "Rebuild it: qa index --rebuild PATH (or delete the index folder)."
"""The fix for a damaged index when its folders are unknown (index.store.rebuild_hint names them when it can)."""


class IndexCorruptError(QAError):
    """The index folder is damaged or was tampered with."""


class IndexLockedError(QAError):
    """Another process is writing this index."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class ModelError(QAError):
    """The embedding model (or an optional backend) cannot be loaded."""


class CancelledError(QAError):
    """The user stopped a long operation; the previous index is untouched."""

    exit_code = 130


class StoreUnavailableError(QAError):
    """The store's server cannot be reached (or refused the connection)."""

    exit_code = 69  # EX_UNAVAILABLE
