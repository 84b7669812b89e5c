"""Drive `qa serve` in a real browser: start the server in a subprocess, open the page in the system's headless
Chromium through Playwright, and read what the chat draws from xterm.js's buffer. Used by test_serve_browser.py
and by tests/serve_screenshot.py (docs/img/serve.png)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("QA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Playwright's own browser download cannot work offline; the system Chromium runs headless with these.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CITATION = re.compile(r"[\w.-]+\.\w+:\d+")
"""A file:line citation as the chat shows it."""

# xterm.js draws on a canvas, so the page's DOM holds no text. Every xterm Terminal sets `this._core` in its
# constructor: a setter on Object.prototype sees each one, and the test reads the screen from its buffer.
CAPTURE_TERMINALS = """
(() => {
  const seen = [];
  window.__qaTerminals = seen;
  Object.defineProperty(Object.prototype, "_core", {
    configurable: true,
    set(value) {
      Object.defineProperty(this, "_core", {value, writable: true, configurable: true, enumerable: false});
      seen.push(this);
    },
  });
})();
"""
READ_SCREEN = """
() => {
  const terminal = window.__qaTerminals.find(t => { try { return !!t.buffer.active; } catch (e) { return false; } });
  if (!terminal) return null;
  const buffer = terminal.buffer.active;
  const lines = [];
  for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i).translateToString(true));
  return lines.join("\\n");
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    process: subprocess.Popen
    url: str
    port: int

    def stop(self, timeout: float = 30) -> str:
        """Ctrl-C, as in a terminal; returns everything the server printed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=timeout)
        return out


@contextmanager
def serving(corpus: Path, home: Path, *args: str, port: int | None = None, timeout: float = 60):
    """`qa serve CORPUS ARGS` with its own QA_HOME, until the block ends; yields once it prints its URL."""
    port = port or free_port()
    env = {**os.environ, "QA_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "qa", "serve", str(corpus), "--port", str(port), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    served = None
    try:
        deadline = time.monotonic() + timeout
        printed = []
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                raise AssertionError(f"qa serve exited ({process.wait()}): {''.join(printed)}")
            printed.append(line)
            if match := re.search(r"at (http://\S+)", line):
                served = Served(process, match.group(1), port)
                break
        assert served is not None, f"qa serve printed no URL in {timeout} s: {''.join(printed)}"
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def chromium():
    """A headless system Chromium under Playwright (a fresh profile each time)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_chat(browser, url: str, width: int = 1400, height: int = 900):
    """A page on the chat, with xterm.js's terminals captured for screen(); page.requested lists every URL
    it fetches."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.requested = []
    page.on("request", lambda request: page.requested.append(request.url))
    page.add_init_script(CAPTURE_TERMINALS)
    page.goto(url)
    return page


def screen(page) -> str:
    """The text the chat shows in the page's terminal ('' before it is drawn)."""
    return page.evaluate(READ_SCREEN) or ""


def wait_for_screen(page, pattern: str | re.Pattern, timeout: float = 120) -> re.Match:
    """Wait until the terminal's text matches pattern; fail with what it showed."""
    pattern = re.compile(pattern) if isinstance(pattern, str) else pattern
    deadline = time.monotonic() + timeout
    while True:
        text = screen(page)
        if match := pattern.search(text):
            return match
        if time.monotonic() > deadline:
            raise AssertionError(f"{pattern.pattern!r} not on screen after {timeout} s:\n{text}")
        page.wait_for_timeout(250)


def ask(page, question: str) -> None:
    """Type a question into the chat's terminal and press Enter."""
    page.focus(".xterm-helper-textarea")
    page.keyboard.type(question)
    page.keyboard.press("Enter")
