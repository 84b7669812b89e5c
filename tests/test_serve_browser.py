"""`qa serve` in a real browser: the system's headless Chromium opens the page, asks the chat over seeds/ with the
real model, opens a citation, and is refused without the token when the server listens beyond loopback."""

from __future__ import annotations

import re
import shutil
import time
import urllib.parse

import psutil
import pytest
from browser import CHROMIUM, CITATION, ask, chromium, open_chat, screen, serving, wait_for_screen
from conftest import REPO

pytestmark = pytest.mark.slow

SEEDS = REPO / "seeds"
QUESTION = "Who did Hollande meet in Washington?"
SOURCE_HEADER = re.compile(r"([\w.-]+\.\w+):(\d+)(?:-\d+)?\s+e: \$EDITOR")
"""The source pane's first row: the citation it shows, then its keys."""


@pytest.fixture(scope="module")
def browser():
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: apt-get install -y chromium (as .ci/run does)"
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """One QA_HOME for the module: the seeds are indexed once, by the first chat."""
    return tmp_path_factory.mktemp("serve-home")


def open_first_citation(page) -> re.Match:
    """Tab to the citations and, once the footer offers it, Enter: the source pane's header."""
    page.keyboard.press("Tab")
    wait_for_screen(page, "Read in source", timeout=30)
    page.keyboard.press("Enter")
    return wait_for_screen(page, SOURCE_HEADER, timeout=30)


def squashed(text: str) -> str:
    return " ".join(text.split())


def test_a_question_typed_in_the_page_is_answered_with_a_citation_that_opens_its_source(browser, home):
    with serving(SEEDS, home) as served:
        assert served.url == f"http://127.0.0.1:{served.port}/"  # loopback: no token
        page = open_chat(browser, served.url)
        wait_for_screen(page, "Ask about the documents")
        ask(page, QUESTION)
        wait_for_screen(page, rf"Answer .*{CITATION.pattern}")
        assert QUESTION in screen(page)
        elsewhere = [url for url in page.requested if urllib.parse.urlsplit(url).netloc != f"127.0.0.1:{served.port}"]
        assert elsewhere == [], "the page loads from other sites"

        header = open_first_citation(page)
        source, line = header.group(1), int(header.group(2))
        cited = (SEEDS / source).read_text(encoding="utf-8").splitlines()[line - 1]
        words = " ".join(cited.split()[:4])
        assert words
        # The header can be drawn a frame before the pane's text: wait for the line, up to a timeout.
        deadline = time.monotonic() + 30
        while words not in squashed(screen(page)):
            assert time.monotonic() < deadline, f"line {line} of {source} is not in the source pane"
            page.wait_for_timeout(250)

        chats = psutil.Process(served.process.pid).children(recursive=True)
        assert chats, "no chat process for the open tab"
        printed = served.stop()  # Ctrl-C while the tab is open
        assert served.process.returncode == 0, printed
        assert "Traceback" not in printed and "Stopped" in printed, printed
        assert not [c for c in chats if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        page.close()


def test_document_text_shows_as_text_in_the_page(browser, home, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEEDS / "002_c6b6b51f87ff079e.txt", corpus)
    (corpus / "notice.txt").write_text(
        "Harbour notice.\n\n"
        "The gate password is <script>alert('page')</script> today.\n"
        "The sign shows <img src=x onerror=alert('img')> here.\n"
        "It is printed in [bold]red[/bold] letters.\n"
        "Then\x1b[2J the end.\n",
        encoding="utf-8",
    )
    dialogs = []
    with serving(corpus, home) as served:
        page = open_chat(browser, served.url)
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        wait_for_screen(page, "Ask about the documents")
        ask(page, "What is the gate password?")
        wait_for_screen(page, r"Answer .*notice\.txt:\d+")
        open_first_citation(page)
        shown = squashed(screen(page))
        assert "<script>alert('page')</script>" in shown
        assert "<img src=x onerror=alert('img')>" in shown
        assert "[bold]red[/bold]" in shown
        # The escape sequence shows as replacement characters in the source pane and clears nothing.
        assert re.search("Then\ufffd* the end\\.", shown) and "\x1b" not in shown
        assert "What is the gate password?" in shown
        assert page.locator("img").count() == 0
        scripts = [s.get_attribute("src") or "" for s in page.query_selector_all("script")]
        assert all(s.endswith("/static/js/textual.js") or s == "" for s in scripts), scripts
        inline = page.evaluate("() => [...document.scripts].map(s => s.textContent).join('\\n')")
        assert "alert" not in inline
        assert dialogs == []
        page.close()


def test_beyond_loopback_the_page_needs_the_token(browser, home):
    with serving(SEEDS, home, "--host", "0.0.0.0") as served:
        token = urllib.parse.parse_qs(urllib.parse.urlsplit(served.url).query)["token"][0]
        assert len(token) >= 32
        local = f"http://127.0.0.1:{served.port}/"
        for url in (local, f"{local}?token=wrong-{token}", f"{local}?token="):
            page = browser.new_page()
            response = page.goto(url)
            assert response.status == 403, url
            body = page.inner_text("body").strip()
            assert body.startswith("Access refused") and "token" in body and "\n" not in body
            page.close()

        page = open_chat(browser, f"{local}?token={token}")
        wait_for_screen(page, "Ask about the documents")
        page.close()
        assert "Traceback" not in served.stop()
