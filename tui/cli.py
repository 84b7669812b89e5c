"""`qa chat` and `qa serve`: the commands that start the TUI. pyproject.toml registers them with qa's command line
under the 'qa.commands' entry point group, so qa/ never imports tui/. Textual loads inside the commands."""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from index.errors import InputError
from qa.cli import _backend_option, _config, _index_dir_option


@dataclass(frozen=True)
class ChatOptions:
    """What the chat opens: the corpus and its index. `qa chat` and `qa serve` share these options, and
    `qa serve` hands them on to each browser session's chat, so an option added here reaches both."""

    paths: tuple[Path, ...] = ()
    index_dir: Path | str | None = None
    """A folder, or a store's URL."""
    backend: str | None = None
    questions: Path | None = None

    def check(self) -> None:
        """A bad question file is a one-line error now, not after the window is up."""
        if self.questions is not None:
            from qa.questions import load_questions  # deferred: `qa --help` loads this module

            load_questions(self.questions)

    def config(self):
        return _config(self.paths, self.index_dir, self.backend)

    def argv(self) -> list[str]:
        """These options as `qa chat` arguments, paths made absolute."""
        args = [str(Path(p).absolute()) for p in self.paths]
        if self.index_dir is not None:
            where = self.index_dir  # a folder, or a store's URL (kept as it is)
            args += ["--index-dir", str(where.absolute()) if isinstance(where, Path) else where]
        if self.backend is not None:
            args += ["--backend", self.backend]
        if self.questions is not None:
            args += ["--questions", str(self.questions.absolute())]
        return args


def chat_options(command):
    """PATHS, --index-dir, --backend and --questions, given to the command as one ChatOptions `options`."""

    @click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
    @_index_dir_option
    @_backend_option
    @click.option(
        "--questions",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="A question file (as for `qa bench`) to bench in the chat with f2: accuracy per mode and each miss.",
    )
    @functools.wraps(command)
    def with_options(paths, index_dir, backend, questions, **rest):
        return command(ChatOptions(tuple(paths), index_dir, backend, questions), **rest)

    return with_options


@click.command()
@chat_options
def chat(options: ChatOptions) -> None:
    """Open the chat over PATHS (default seeds/)."""
    options.check()
    import gc  # deferred: `qa --help` loads this module

    # Start-up allocates many objects (Textual, CSS) but little garbage: the cyclic GC ran ~120 times
    # before the first frame, ~0.1 s of it. The chat turns it back on once that frame is drawn.
    gc.disable()
    config = options.config()
    from tui.app import run_chat  # deferred: Textual; `qa --help` loads this module

    run_chat(config, explicit_backend=options.backend is not None, questions=options.questions)


@click.command()
@chat_options
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Any address other than this machine's loopback asks for a token.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option(
    "--token",
    envvar="QA_SERVE_TOKEN",
    default=None,
    help="Secret a browser must give (?token=... in the URL) [env: QA_SERVE_TOKEN]. "
    "Default: none on loopback, else a random one, printed in the URL.",
)
def serve(options: ChatOptions, host: str, port: int, token: str | None) -> None:
    """Serve the chat over PATHS (default seeds/) to web browsers: one chat process per browser tab."""
    options.check()
    for path in options.config().paths:
        if not path.exists():
            raise InputError(f"No such file or folder: {path}.", "Check the path and try again.")
    from tui.serve import serve_chat  # deferred: aiohttp and textual-serve; `qa --help` loads this module

    serve_chat([sys.executable, "-m", "qa", "chat", *options.argv()], host, port, token)
