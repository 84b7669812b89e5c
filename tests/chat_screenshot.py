"""Make docs/img/chat.png: `qa chat` over seeds/ with the real model, a question answered with its citations.
Textual draws the screen as SVG; the system's Chromium turns it into a PNG (apt-get install -y chromium).

    python tests/chat_screenshot.py [--out docs/img/chat.png]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUESTION = "How many people were killed in the Paris attacks?"
SIZE = (110, 34)  # columns, rows: a terminal a user would have open


async def take(svg: Path, home: Path) -> None:
    """Run the chat as `qa chat seeds` does (real model, default backend), ask, and save the screen as SVG."""
    from qa.config import RunConfig
    from tui.app import make_app
    from tui.widgets.question_input import QuestionInput
    from tui.widgets.turn import TurnView

    app = make_app(RunConfig(corpus=(REPO / "seeds",)), history_path=home / "history.sqlite", cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.engine is not None)
        box = app.query_one(QuestionInput)
        box.focus()
        box.value = QUESTION
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.query_one(TurnView).answer is not None)
        await pilot.pause(0.5)  # the conversation scrolls to the answer
        await pilot.wait_for_scheduled_animations()
        app.save_screenshot(filename=svg.name, path=str(svg.parent))


async def wait_until(pilot, ready, seconds: float = 300.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not ready():
        if loop.time() > deadline:
            raise SystemExit("the chat did not get there in time")
        await pilot.pause(0.2)


def svg_to_png(svg: Path, png: Path) -> None:
    """Render the SVG at its own size (times 1.25, for legible text) in headless Chromium."""
    text = svg.read_text(encoding="utf-8")
    width, height = (float(v) for v in re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', text).groups())
    scale = 1.25
    w, h = round(width * scale), round(height * scale)
    page = svg.with_suffix(".html")
    page.write_text(
        f'<html><body style="margin:0"><img src="{svg.name}" width="{w}" height="{h}"></body></html>',
        encoding="utf-8",
    )
    with tempfile.TemporaryDirectory(prefix="qa-chromium-") as profile:
        subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={w},{h}",
                f"--screenshot={png}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "chat.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qa-chat-shot-") as home:
        os.environ.update(QA_HOME=home, HF_HUB_OFFLINE="1")
        # Indexed first, so the chat opens on a ready index (no "Indexed" notice over the picture).
        subprocess.run([sys.executable, "-m", "qa", "index", "-q", str(REPO / "seeds")], check=True, cwd=REPO)
        svg = Path(home) / "chat.svg"
        asyncio.run(take(svg, Path(home)))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        svg_to_png(svg, args.out.resolve())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
