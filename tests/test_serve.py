"""`qa serve`'s guard on a real aiohttp server (no browser, no chat started): the token, the host a loopback
server answers to, the WebSocket's origin; and the command's own errors and Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys

import pytest
from aiohttp import WSServerHandshakeError
from aiohttp.test_utils import TestClient, TestServer
from browser import free_port
from conftest import REPO, run_main

from tui.serve import REFUSED_HOST, REFUSED_ORIGIN, REFUSED_TOKEN, ChatServer, is_loopback, page_url, token_matches

TOKEN = "s3cret-token"
# A session's process that exits at once: enough to see a WebSocket let through.
NO_CHAT = [sys.executable, "-c", "pass"]


def on_server(token: str | None, *calls):
    """Run calls (async functions of a TestClient) against a ChatServer; their results."""

    async def run():
        server = ChatServer(NO_CHAT, "127.0.0.1", 8000, token)
        async with TestClient(TestServer(await server._make_app(), host="127.0.0.1")) as client:
            results = [await call(client) for call in calls]
            await server.settle(10)  # a WebSocket let through started a chat: it stops before the loop ends
            return results

    return asyncio.run(run())


def get(path: str, **kwargs):
    async def call(client):
        response = await client.get(path, **kwargs)
        return response.status, await response.text(), response.cookies

    return call


def test_loopback_names_and_addresses():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.20", "example.org", "localhost.evil.org"))


def test_token_comparison():
    assert token_matches(TOKEN, TOKEN)
    assert not token_matches(None, TOKEN) and not token_matches("", TOKEN) and not token_matches(TOKEN[:-1], TOKEN)
    assert not token_matches("ünïcode", TOKEN)  # non-ASCII guesses are refused, not an error


@pytest.mark.parametrize("path", ["/", "/ws", "/static/js/textual.js", "/download/x"])
@pytest.mark.parametrize("given", [None, "", "wrong", TOKEN + "x"])
def test_every_route_refuses_a_missing_or_wrong_token(path, given):
    query = {} if given is None else {"token": given}
    [(status, text, cookies)] = on_server(TOKEN, get(path, params=query))
    assert status == 403 and text == REFUSED_TOKEN + "\n" and not cookies


def test_a_token_with_url_characters_works_through_the_printed_url():
    token = "a&b #c/ü"
    query = page_url("127.0.0.1", 8000, token).split("?", 1)[1]
    [(status, _, _)] = on_server(token, get("/?" + query))
    assert status == 200


def test_the_token_opens_the_page_and_its_cookie_the_rest():
    (status, page, cookies), (static_status, _, _) = on_server(
        TOKEN, get("/", params={"token": TOKEN}), get("/static/js/textual.js", cookies={"qa_token_8000": TOKEN})
    )
    assert status == 200 and "textual.js" in page
    assert "googleapis" not in page and "<link" in page  # its own stylesheet stays, Google's font goes
    cookie = cookies["qa_token_8000"]
    assert cookie.value == TOKEN and cookie["httponly"] and cookie["samesite"] == "Strict"
    assert static_status == 200


def test_loopback_without_token_answers_only_to_loopback_names():
    (ok, _, _), (rebound, text, _) = on_server(None, get("/"), get("/", headers={"Host": "attacker.example:8000"}))
    assert ok == 200
    assert rebound == 403 and text == REFUSED_HOST + "\n"


def handshake(origin: str | None):
    """Open the chat's WebSocket from a page at origin (None: the server's own); the HTTP status."""

    async def call(client):
        try:
            async with client.ws_connect("/ws", origin=origin or f"http://127.0.0.1:{client.port}") as ws:
                await ws.close()
            return 101
        except WSServerHandshakeError as exc:
            return exc.status

    return call


def test_a_websocket_from_another_sites_page_is_refused():
    assert on_server(None, handshake(None), handshake("http://attacker.example")) == [101, 403]
    [(status, text, _)] = on_server(None, get("/ws", headers={"Origin": "http://attacker.example"}))
    assert text == REFUSED_ORIGIN + "\n"


def test_page_url():
    assert page_url("127.0.0.1", 8000, None) == "http://127.0.0.1:8000/"
    assert page_url("::1", 80, "t") == "http://[::1]:80/?token=t"
    assert page_url("0.0.0.0", 8000, "t") == f"http://{socket.gethostname()}:8000/?token=t"
    assert page_url("10.0.0.2", 8000, "a&b #c") == "http://10.0.0.2:8000/?token=a%26b%20%23c"


def assert_one_line_error(code, err, *fragments):
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("Error: "), err
    assert all(f in err for f in fragments), err


def test_a_port_in_use_is_a_one_line_error(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("QA_HOME", str(tmp_path))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = run_main(monkeypatch, capsys, "serve", str(REPO / "seeds"), "--port", str(port))
    assert_one_line_error(code, err, f"port {port}", "--port")


def test_a_missing_folder_or_an_empty_token_is_a_one_line_error(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("QA_HOME", str(tmp_path))
    code, _, err = run_main(monkeypatch, capsys, "serve", str(tmp_path / "nowhere"))
    assert_one_line_error(code, err, "nowhere")
    code, _, err = run_main(monkeypatch, capsys, "serve", str(REPO / "seeds"), "--token", " ")
    assert_one_line_error(code, err, "token")


def test_a_wildcard_bind_prints_a_url_with_a_fresh_token_and_stops_on_ctrl_c(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "qa", "serve", str(REPO / "seeds"), "--host", "0.0.0.0", "--port", str(free_port())],
        cwd=REPO,
        env={"QA_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    first = process.stdout.readline()
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=30)
    assert "?token=" in first and len(first.split("?token=")[1].strip()) >= 32, first + rest
    assert process.returncode == 0 and "Traceback" not in rest and "Stopped" in rest, first + rest
