"""Make docs/img/serve.png: `qa serve` over seeds/ in headless Chromium, a question answered and the passage
holding the answer open beside its document. Needs the system's chromium (apt-get install -y chromium).

    python tests/serve_screenshot.py [--out docs/img/serve.png]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from browser import REPO, ask, chromium, open_chat, serving, wait_for_screen

QUESTION = "Who did Hollande meet in Washington?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "serve.png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    args = parser.parse_args()
    seeds = REPO / "seeds"
    with tempfile.TemporaryDirectory(prefix="qa-serve-shot-") as home:
        env = {**os.environ, "QA_HOME": home, "HF_HUB_OFFLINE": "1"}
        # Indexed first, so the chat opens on a ready index (no "Indexed" notice over the picture).
        subprocess.run([sys.executable, "-m", "qa", "index", "-q", str(seeds)], env=env, check=True, cwd=REPO)
        with serving(seeds, Path(home)) as served, chromium() as browser:
            page = open_chat(browser, served.url, args.width, args.height)
            wait_for_screen(page, "Ask about the documents")
            ask(page, QUESTION)
            wait_for_screen(page, r"Answer .*\.txt:\d+")
            page.keyboard.press("Tab")
            wait_for_screen(page, "Read in source")
            page.keyboard.press("a")  # the answer's passage, in its document
            wait_for_screen(page, r"e: \$EDITOR")
            page.wait_for_timeout(500)  # the source pane scrolls to the cited lines
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
