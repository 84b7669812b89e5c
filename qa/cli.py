"""The thin `qa` command line: index, ask, sources, bench, and the commands packages above qa register (the
chat: tui/cli.py). Heavy imports happen inside commands."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import sys
import threading
from collections import Counter
from pathlib import Path

import click

from index.backends import BACKENDS, DEFAULT_BACKEND
from index.errors import QAError

# Commands import rich, qa and the rest of index inside them: `qa --help` and `qa CMD --help` load only the
# modules above, and each command loads only what it uses.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

COMMANDS_GROUP = "qa.commands"
"""Entry point group through which packages above qa (tui: `chat`, `serve`) add commands, so qa never imports them."""


class CommandGroup(click.Group):
    """qa's own commands plus those registered under COMMANDS_GROUP, loaded only when named or listed (--help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_registered()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in _registered():
            command = _registered()[name].load()
        return command


@functools.cache
def _registered() -> dict:
    """Name -> entry point of each command registered under COMMANDS_GROUP. It scans the installed packages and
    importlib.metadata takes tens of ms to import, so qa's own commands never call it."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=COMMANDS_GROUP)}


def _backend_option(f):
    return click.option(
        "--backend",
        type=click.Choice(list(BACKENDS)),
        default=None,
        help=(
            "Embedding backend (default: the index's own, or onnx for a new index; "
            "onnx is exported once from the bundled weights)."
        ),
    )(f)


class _StoreLocation(click.ParamType):
    """An index folder (a Path) or a store's URL such as postgresql://user@host/db (kept as text)."""

    name = "FOLDER|URL"

    def convert(self, value, param, ctx):
        if isinstance(value, Path) or value is None:
            return value
        text = str(value)
        if "://" in text and not text.startswith("file://"):
            return text
        path = Path(text.removeprefix("file://"))
        if path.exists() and not path.is_dir():
            self.fail(f"{text} is a file; give a folder for the index, or a postgresql:// URL.", param, ctx)
        return path


def _index_dir_option(f):
    return click.option(
        "--index-dir",
        "--store",
        "index_dir",
        type=_StoreLocation(),
        default=None,
        envvar="QA_STORE",
        help="Where the index lives: a folder, or a PostgreSQL database (postgresql://user@host:port/db) "
        "(default: $QA_STORE, else a per-corpus folder in the user cache dir; QA_HOME moves all state).",
    )(f)


def _chunk_options(f):
    f = click.option(
        "--chunk-tokens", type=click.IntRange(16, 254), default=None, help="Wordpieces per chunk (model limit 254)."
    )(f)
    f = click.option(
        "--overlap-tokens",
        type=click.IntRange(0, 127),
        default=None,
        help="Wordpieces of whole sentences repeated between chunks.",
    )(f)
    return f


def _config(corpus, index_dir, backend, chunk_tokens=None, overlap_tokens=None):
    # deferred: start-up (see the note at the top)
    from index.chunker import ChunkSettings
    from qa.config import RunConfig

    defaults = ChunkSettings()
    chunking = ChunkSettings(
        max_tokens=chunk_tokens or defaults.max_tokens,
        overlap_tokens=defaults.overlap_tokens if overlap_tokens is None else overlap_tokens,
    )
    return RunConfig(
        corpus=tuple(Path(p) for p in corpus),
        index_dir=index_dir,
        backend=backend or DEFAULT_BACKEND,
        chunking=chunking,
    )


def _progress_printer(quiet: bool):
    """A Rich progress bar on stderr, driven by the builder's progress(stage, done, total) calls."""
    # deferred: start-up (see the note at the top)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        return None, (lambda *_: None)

    class Count(MofNCompleteColumn):
        def render(self, task):  # a row without a total (preparing the model) has no count to show
            return super().render(task) if task.total is not None else ""

    bar = Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        Count(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    tasks: dict[str, int] = {}
    labels = {"scan": "reading", "recheck": "checking", "embed": "embedding", "save": "saving"}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(labels.get(stage, stage), total=max(total, 1))
        bar.update(tasks[stage], completed=done, total=max(total, 1))

    return bar, progress


def _seconds(seconds: float) -> str:
    """ "0.12s" under a second (a watched update), "3.4s" above."""
    return f"{seconds:.2f}s" if seconds < 1 else f"{seconds:.1f}s"


OTHER_TYPES_LISTED = 3
"""Up to this many files left out for their type are listed one per line; more make one line of counts."""


def _types(skipped) -> str:
    """ ".png 6, .js 1": how many files of each suffix, most first."""
    # deferred: start-up (see the note at the top)
    from index.readers import suffix_of
    from qa.sanitize import safe_line

    counts = Counter(
        suffix_of(os.path.basename(s.path)) or "no extension" for s in skipped
    )  # as the skip reasons name them
    return ", ".join(f"{safe_line(suffix)} {n}" for suffix, n in counts.most_common())


def _print_report(report, console_err) -> None:
    # deferred: start-up (see the note at the top)
    from rich.text import Text

    from index.readers import SUPPORTED_NOTE
    from qa.render import count
    from qa.sanitize import safe_line

    by_type = [s for s in report.skipped if s.other_type]
    listed = [s for s in report.skipped if not s.other_type or len(by_type) <= OTHER_TYPES_LISTED]
    for skipped in listed:
        # soft_wrap: one line per file even when piped (Rich would wrap at 80 columns)
        console_err.print(Text(f"skipped {safe_line(skipped.path)}: {skipped.reason}", style="yellow"), soft_wrap=True)
    if len(by_type) > OTHER_TYPES_LISTED:  # a notes folder's pictures: one line, not one per picture
        console_err.print(
            Text(
                f"skipped {len(by_type)} files of types it does not read ({_types(by_type)}; {SUPPORTED_NOTE})",
                style="yellow",
            ),
            soft_wrap=True,
        )
    if report.rebuilt_because:
        console_err.print(Text(f"rebuilt everything: {report.rebuilt_because}", style="dim"), soft_wrap=True)
    console_err.print(
        Text(
            f"{report.summary()}  ({count(report.n_documents, 'document')}, {count(report.n_chunks, 'chunk')}, "
            f"{_seconds(report.seconds)}) -> {report.index_dir}"
        ),
        soft_wrap=True,
    )


@click.group(cls=CommandGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qa-docs")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Ask questions about a folder of documents; answers cite file, lines and characters.

    With no command, opens the chat over seeds/.
    """
    if ctx.invoked_subcommand is None:
        chat = ctx.command.get_command(ctx, "chat")
        if chat is None:
            raise click.UsageError("No chat is installed (the tui package registers it); try `qa ask QUESTION`.")
        ctx.invoke(chat)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@_index_dir_option
@_backend_option
@_chunk_options
@click.option("--rebuild", is_flag=True, help="Re-embed everything instead of only new and changed files.")
@click.option("--wait", is_flag=True, help="If another index run holds the lock, wait for it instead of exiting.")
@click.option(
    "--max-file-mb", type=click.FloatRange(0.001), default=20.0, show_default=True, help="Skip files larger than this."
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option(
    "--watch", is_flag=True, help="Then keep the index up to date: index changed files as they change, until Ctrl-C."
)
@click.option(
    "--interval",
    type=click.FloatRange(0.1),
    default=3.0,
    show_default=True,
    help=(
        "With --watch, when the system sends no change notifications (or PATHS name files): "
        "seconds between looks at every file."
    ),
)
def index(paths, index_dir, backend, chunk_tokens, overlap_tokens, rebuild, wait, max_file_mb, quiet, watch, interval):
    """Index PATHS (files or folders, recursively; default seeds/). Only new or changed files are embedded."""
    # deferred: start-up (see the note at the top)
    from rich.console import Console
    from rich.text import Text

    from qa.model_notice import model_notice
    from qa.service import FULL_CHECK_SECONDS, index_corpus, make_embedder, open_change_feed, ready_feed, watch_corpus

    config = _config(paths, index_dir, backend, chunk_tokens, overlap_tokens)
    embedder = make_embedder(config.backend) if watch else None  # one model for every update
    feed = open_change_feed(config) if watch else None  # before indexing: what changes meanwhile is seen
    try:
        bar, progress = _progress_printer(quiet)
        if bar is not None:
            with bar, model_notice(bar.console, bar):
                report = index_corpus(
                    config, embedder, rebuild=rebuild, wait=wait, progress=progress, max_bytes=int(max_file_mb * 1e6)
                )
        else:
            report = index_corpus(
                config, embedder, rebuild=rebuild, wait=wait, progress=progress, max_bytes=int(max_file_mb * 1e6)
            )
        console = Console(stderr=True)
        _print_report(report, console)
        if watch:
            feed = ready_feed(feed)  # None: no notifications here (a limit on watches reached?): compare on a timer
            if feed is not None:
                console.print(
                    Text(
                        "Watching for changes as files are saved "
                        f"(and every file each {FULL_CHECK_SECONDS:g} s); Ctrl-C stops."
                    )
                )
            else:
                console.print(Text(f"Watching for changes every {interval:g} s; Ctrl-C stops."))

            def gone(missing: list[Path]) -> None:
                if missing:
                    console.print(
                        Text(
                            f"{', '.join(str(p) for p in missing)}: gone (moved or deleted?). "
                            "The index stays as it was; "
                            "waiting for it to come back. Ctrl-C stops."
                        )
                    )
                else:
                    console.print(Text("Back: comparing every file with the index."))

            try:
                watch_corpus(
                    config,
                    embedder,
                    lambda update: _print_report(update, console),
                    interval=interval,
                    max_bytes=int(max_file_mb * 1e6),
                    feed=feed,
                    on_gone=gone,
                )
            except KeyboardInterrupt:
                console.print(Text("Stopped watching; the index is up to date as of the last update."))
            return
    finally:
        if feed is not None:
            feed.close()
    if report.skipped:
        sys.exit(3)  # indexed, but some files were left out


@cli.command()
@click.argument("question")
@click.option(
    "--corpus",
    "-c",
    "corpus",
    multiple=True,
    type=click.Path(path_type=Path),
    help="File or folder to answer from (repeatable; default seeds/).",
)
@_index_dir_option
@_backend_option
@click.option("-k", "k", type=click.IntRange(1, 100), default=5, show_default=True, help="How many passages to cite.")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "bm25"]), default="hybrid", show_default=True)
@click.option(
    "--source", "-s", "sources", multiple=True, help="Only search this document (repeatable; a name from `qa sources`)."
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--full", is_flag=True, help="Print each cited passage whole, not a snippet around the question's words.")
def ask(question, corpus, index_dir, backend, k, mode, sources, as_json, full):
    """Answer QUESTION with the best sentence and the top-k cited passages.

    With --json, QUESTION '-' reads one question per line from standard input and prints one JSON object per line.
    """
    # deferred: start-up (see the note at the top)
    from rich.console import Console

    from qa.engine import clean_question
    from qa.model_notice import model_notice
    from qa.render import PipeConsole, render_answer
    from qa.service import open_engine

    if question == "-":
        return _ask_batch(_config(corpus, index_dir, backend), backend is not None, k, mode, sources, as_json)
    # Before anything loads: an empty question must not leave a model-loading thread to die at exit.
    clean_question(question)
    config = _config(corpus, index_dir, backend)
    bar, progress = _progress_printer(as_json)
    with model_notice(Console(stderr=True)):  # stderr only, and only on a terminal: --json stays clean
        engine, report = open_engine(config, progress=progress, explicit_backend=backend is not None, preload=True)
        if report is not None and not as_json:
            _print_report(report, Console(stderr=True))
        try:
            answer = engine.ask(question, k=k, mode=mode, sources=sources or None)
        finally:
            engine.close()
    try:
        if as_json:
            click.echo(json.dumps(answer.to_json(), ensure_ascii=False, indent=2))
        else:
            render_answer(answer, PipeConsole(highlight=False, markup=False, emoji=False), full=full)
    except BrokenPipeError:  # here, not in main(): click's own handler would exit 1
        _closed_pipe()


def _ask_batch(config, explicit_backend, k, mode, sources, as_json) -> None:
    """`qa ask --json -`: the model and index load once, then each line of standard input is asked."""
    # deferred: start-up (see the note at the top)
    from rich.console import Console

    from qa.batch import ask_lines, write_json_lines
    from qa.model_notice import model_notice
    from qa.service import open_engine

    if not as_json:
        raise click.UsageError("Questions from standard input ('-') are answered as JSON Lines: add --json.")
    # No preload: a batch of empty lines would exit while the loading thread runs (an abort, issue 19 item 2).
    engine, _ = open_engine(config, explicit_backend=explicit_backend)
    try:
        lines = sys.stdin
        if hasattr(lines, "reconfigure"):  # undecodable bytes: a question with '?' in them, not a crash
            lines.reconfigure(errors="replace")
        with model_notice(Console(stderr=True)):  # the first question loads the model
            write_json_lines(ask_lines(engine, lines, k=k, mode=mode, sources=sources), click.echo)
    except BrokenPipeError:
        _closed_pipe()
    finally:
        engine.close()


@cli.command()
@click.option(
    "--corpus",
    "-c",
    "corpus",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Corpus whose index to list (default seeds/).",
)
@_index_dir_option
def sources(corpus, index_dir):
    """List the documents in the index."""
    # deferred: start-up (see the note at the top)
    from index.stores import open_store
    from qa.sanitize import safe_line

    config = _config(corpus, index_dir, None)
    index = open_store(config.resolved_index_dir).open()
    try:
        for source, n in index.catalog.passage_counts().items():
            click.echo(f"{safe_line(source)}\t{n} chunk{'' if n == 1 else 's'}")
    finally:
        index.close()


@cli.command()
@click.argument("questions", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--corpus",
    "-c",
    "corpus",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Corpus the QUESTIONS are about (default seeds/).",
)
@click.option(
    "--beir",
    "beir_folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="A BEIR folder (corpus.jsonl, queries.jsonl, qrels/) instead of QUESTIONS.",
)
@click.option("--split", default="test", show_default=True, help="Which BEIR qrels file to score against.")
@click.option("--modes", default="bm25,dense,hybrid", show_default=True, help="Comma-separated retrieval modes.")
@click.option(
    "--granularity",
    type=click.Choice(["chunks", "document"]),
    default="chunks",
    show_default=True,
    help="BEIR only: product chunks, or one passage per document (how BEIR/MTEB published figures are made).",
)
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N queries, for a quick look.")
@click.option(
    "--unanswerable",
    "unanswerable_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also ask this question file's questions, counted as unanswerable (off-corpus checks).",
)
@click.option(
    "--articles",
    default=None,
    help="Only questions about these articles: a comma list, a JSON file of lists (FILE.json), or FILE.json:KEY.",
)
@click.option(
    "--sample",
    type=click.IntRange(1),
    default=None,
    help="A random sample of at most N questions of each file (seeded by --seed).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --sample.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the full report (every failure, every question) to this file; '-' prints it instead of the table.",
)
@click.option(
    "--failures", is_flag=True, help="List each query whose first relevant result is not at rank 1, with what beat it."
)
@click.option(
    "--max-failures", type=click.IntRange(0), default=20, show_default=True, help="Failures printed per mode."
)
@click.option(
    "--alpha", type=click.FloatRange(0, 1), default=None, help="Dense weight in hybrid fusion (default: the product's)."
)
@_index_dir_option
@_backend_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def bench(
    questions,
    corpus,
    beir_folder,
    split,
    modes,
    granularity,
    limit,
    unanswerable_path,
    articles,
    sample,
    seed,
    json_path,
    failures,
    max_failures,
    alpha,
    index_dir,
    backend,
    quiet,
):
    """Measure retrieval and answer accuracy per mode on a question file (QUESTIONS) or a BEIR dataset (--beir)."""
    # deferred: start-up (see the note at the top)
    from rich.console import Console

    from qa.bench import retrieval_settings, run_question_bench
    from qa.bench_beir import BeirSettings, run_beir_bench
    from qa.bench_render import render_report
    from qa.questions import article_names

    if (questions is None) == (beir_folder is None):
        raise click.UsageError("Give either a question file or --beir FOLDER.")
    if beir_folder is not None and (unanswerable_path or articles or sample):
        raise click.UsageError("--unanswerable, --articles and --sample are for question files, not --beir.")
    to_stdout = json_path is not None and str(json_path) == "-"
    mode_list = [m.strip() for m in modes.split(",") if m.strip()]
    retrieval = retrieval_settings(alpha=alpha)
    bar, progress = _progress_printer(quiet or to_stdout)
    with bar if bar is not None else _no_context():
        if beir_folder is not None:
            report = run_beir_bench(
                beir_folder,
                backend or DEFAULT_BACKEND,
                mode_list,
                split=split,
                settings=BeirSettings(granularity=granularity, retrieval=retrieval),
                index_dir=index_dir,
                limit=limit,
                failures=failures or json_path is not None,
                progress=progress,
            )
        else:
            report = run_question_bench(
                _config(corpus, index_dir, backend),
                questions,
                mode_list,
                limit=limit,
                retrieval=retrieval,
                progress=progress,
                explicit_backend=backend is not None,
                unanswerable_path=unanswerable_path,
                articles=article_names(articles) if articles else None,
                sample=sample,
                seed=seed,
            )
    if to_stdout:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
        return
    if json_path is not None:
        json_path.write_text(json.dumps(report.to_json(), ensure_ascii=False, indent=2), encoding="utf-8")
    render_report(
        report, Console(highlight=False, markup=False, emoji=False), failures=failures, max_failures=max_failures
    )


def _no_context():
    return contextlib.nullcontext()


def main() -> None:
    """Entry point: user errors become one line on stderr with an exit code, never a traceback."""
    interrupted = threading.Event()

    def on_sigint(signum, frame):
        interrupted.set()
        signal.default_int_handler(signum, frame)  # KeyboardInterrupt, as without this handler

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        cli.main(standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort):
        _interrupted()
    except QAError as exc:
        # A C extension interrupted while it loads reports an ImportError ("initialization failed"):
        # after Ctrl-C, whatever error follows is the interruption, not a missing package.
        if interrupted.is_set():
            _interrupted()
        click.echo(f"Error: {exc.one_line()}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        _closed_pipe()
    except OSError as exc:  # unwritable --index-dir, disk full: the user's to fix, not a crash
        if interrupted.is_set():
            _interrupted()
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"Error: {exc.strerror or exc}{where}. Check the path, permissions and free space.", err=True)
        sys.exit(1)
    finally:
        signal.signal(signal.SIGINT, previous)


def _closed_pipe() -> None:
    """The reader went away (`| head`): end quietly, as git does. Python's own flush of stdout at exit would
    hit the closed pipe again, so stdout points at /dev/null from here on."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)


def _interrupted() -> None:
    click.echo("Interrupted; the previous index is unchanged.", err=True)
    sys.exit(130)
