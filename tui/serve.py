"""`qa serve`: the chat in web browsers, through textual-serve (each browser tab gets its own chat process,
drawn by xterm.js in the page). A guard in front of every route refuses a request without the token,
or, on loopback without a token, one that names another host (DNS rebinding) or a WebSocket opened
from another site's page."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import re
import secrets
import shlex
import signal
import socket
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import aiohttp_jinja2
import click
import jinja2
from aiohttp import WSCloseCode, web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from index.errors import InputError

STOP_SECONDS = 5.0
"""How long a chat gets to quit when its tab closes or the server stops, before it is killed."""

REFUSED_TOKEN = (
    "Access refused: this qa serve needs its token. Open the URL it printed when it started (it ends in ?token=...)."
)
REFUSED_HOST = "Access refused: this qa serve answers only at this machine's loopback address (127.0.0.1 or localhost)."
REFUSED_ORIGIN = "Access refused: the chat connects only from its own page."


def is_loopback(host: str) -> bool:
    """True for an address or name of this machine's loopback interface, which other machines cannot reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def token_matches(given: str | None, token: str) -> bool:
    """Constant-time comparison, so response times tell nothing about how much of a guess was right."""
    return given is not None and hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


class ChatSession(AppService):
    """One browser tab's chat process: started directly (no shell) in a session of its own, so Ctrl-C in
    the server's terminal reaches only the server, which then stops each chat in turn."""

    def __init__(self, argv: list[str], **kwargs) -> None:
        super().__init__(shlex.join(argv), **kwargs)
        self.argv = argv

    async def _open_app_process(self, width: int = 80, height: int = 24):
        self._process = process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._build_environment(width=width, height=height),
            start_new_session=True,
        )
        self._stdin = process.stdin
        return process

    async def stop(self) -> None:
        """Ask the chat to quit; kill it if it has not within STOP_SECONDS."""
        try:
            await asyncio.wait_for(super().stop(), STOP_SECONDS)
        except (TimeoutError, asyncio.TimeoutError):
            self._task = None
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            await self._process.wait()


class ChatServer(Server):
    """textual-serve's server with the access guard, page URLs taken from the request (so a wildcard bind
    works), one ChatSession per WebSocket, and a shutdown that stops every chat."""

    def __init__(self, argv: list[str], host: str, port: int, token: str | None) -> None:
        super().__init__(shlex.join(argv), host=host, port=port, title="qa")
        self.argv = argv
        self.token = token
        self.cookie = f"qa_token_{port}"  # per port: two servers on one host keep their own
        self.sockets: set[web.WebSocketResponse] = set()
        self.tasks: set[asyncio.Task] = set()
        """Each open tab's handler, and each chat being stopped."""

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self.guard)
        aiohttp_jinja2.setup(app, loader=jinja2.DictLoader({"app_index.html": page_template(self.templates_path)}))
        return app

    def refusal(self, request: web.Request) -> str | None:
        """Why this request is refused, or None."""
        if self.token is not None:
            given = request.query.get("token") or request.cookies.get(self.cookie)
            if not token_matches(given, self.token):
                return REFUSED_TOKEN
        elif not is_loopback(request.url.host or ""):
            return REFUSED_HOST
        if request.path == "/ws" and request.headers.get("Origin", "") != f"{request.scheme}://{request.host}":
            return REFUSED_ORIGIN
        return None

    @web.middleware
    async def guard(self, request: web.Request, handler) -> web.StreamResponse:
        reason = self.refusal(request)
        if reason is not None:
            return web.Response(status=403, text=reason + "\n", headers={"Cache-Control": "no-store"})
        response = await handler(request)
        if request.path == "/" and self.token is not None:
            # The page's scripts, styles and WebSocket send the cookie; the token need not be in their URLs.
            response.set_cookie(self.cookie, self.token, httponly=True, samesite="Strict")
            response.headers["Referrer-Policy"] = "no-referrer"
            response.headers["Cache-Control"] = "no-store"
        return response

    async def handle_index(self, request: web.Request) -> web.Response:
        """textual-serve's page, its URLs on the host the browser asked for rather than the bound address."""
        base = f"{request.scheme}://{request.host}"
        context = {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"{'wss' if request.scheme == 'https' else 'ws'}://{request.host}/ws",
            "config": {"static": {"url": f"{base}/static/"}},
            "application": {"name": self.title},
        }
        return aiohttp_jinja2.render_template("app_index.html", request, context)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One browser tab: a chat process fed the tab's keys and sizes, drawing into the tab."""
        websocket = web.WebSocketResponse(heartbeat=15)
        await websocket.prepare(request)
        session = ChatSession(
            self.argv,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=websocket.close,
            download_manager=self.download_manager,
        )
        self.sockets.add(websocket)
        self._track(asyncio.current_task())
        try:
            await session.start(
                to_int(request.query.get("width", "80"), 80), to_int(request.query.get("height", "24"), 24)
            )
            await self._process_messages(websocket, session)
        except ConnectionResetError:
            pass
        finally:
            # A tab that closes cancels this handler: the chat is stopped in a task of its own all the same.
            await asyncio.shield(self._track(asyncio.ensure_future(self._end(session, websocket))))
        return websocket

    def _track(self, task: asyncio.Task) -> asyncio.Task:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _end(self, session: ChatSession, websocket: web.WebSocketResponse) -> None:
        await session.stop()
        self.sockets.discard(websocket)
        await websocket.close()

    async def settle(self, timeout: float) -> None:
        """Wait until every tab's handler and every chat's stop have finished (at most timeout seconds)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.tasks and (left := deadline - asyncio.get_running_loop().time()) > 0:
            await asyncio.wait(set(self.tasks), timeout=left)

    async def on_startup(self, app: web.Application) -> None:
        """Quiet: serve_chat prints the URL once the port is bound."""

    async def run(self, on_ready: Callable[[], None]) -> None:
        """Listen until SIGINT or SIGTERM, then close every tab and stop its chat."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        runner = web.AppRunner(await self._make_app(), handle_signals=False, access_log=None)
        await runner.setup()
        try:
            try:
                await web.TCPSite(runner, self.host, self.port).start()
            except OSError as exc:
                raise InputError(
                    f"Cannot listen on {self.host} port {self.port}: {exc.strerror or exc}.",
                    "Pick another --port (or --host).",
                ) from exc
            on_ready()
            await stop.wait()
        finally:
            for websocket in list(self.sockets):
                await websocket.close(code=WSCloseCode.GOING_AWAY, message=b"qa serve stopped")
            await self.settle(2 * STOP_SECONDS)
            await runner.cleanup()


def page_template(templates: Path) -> str:
    """textual-serve's page without its stylesheet link to Google Fonts: opening the chat tells no one else,
    and offline it waits on no failing request (the terminal falls back to a local monospace font)."""
    page = (templates / "app_index.html").read_text(encoding="utf-8")
    return re.sub(r"<link[^>]*fonts\.googleapis\.com[^>]*>", "", page)


def page_url(host: str, port: int, token: str | None) -> str:
    """The URL to open; a wildcard bind is named by this machine's host name."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/" + (f"?token={urllib.parse.quote(token, safe='')}" if token else "")


def serve_chat(argv: list[str], host: str, port: int, token: str | None) -> None:
    """Serve the chat that argv starts until Ctrl-C. Off loopback a token is required: one is made if none is given."""
    if token is not None and not token.strip():
        raise InputError("The token is empty.", "Give a --token with some characters, or none for a random one.")
    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(24)
    logging.basicConfig(level=logging.WARNING, format="qa serve: %(message)s")
    server = ChatServer(argv, host, port, token)
    url = page_url(host, port, token)

    def ready() -> None:
        click.echo(f"Serving the chat at {url}")
        click.echo("Each browser tab gets its own chat. Ctrl-C stops.")

    asyncio.run(server.run(ready))
    click.echo("Stopped; every chat is closed.")
