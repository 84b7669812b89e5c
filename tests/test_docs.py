"""The docs stay true to the repository: a short README, every picture and result file referenced, no dead links."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README_LIMIT = 15 * 1024
# Markdown links and images: [text](target) and ![alt](target); the target up to a space, ')' or '#'.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s#>]+)")


def docs() -> list[Path]:
    """Every Markdown file a reader sees: the top-level ones and docs/."""
    return sorted([*REPO.glob("*.md"), *(REPO / "docs").glob("*.md")])


def everything_the_docs_say() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in docs())


def test_the_readme_is_short():
    size = (REPO / "README.md").stat().st_size
    assert size <= README_LIMIT, f"README.md is {size} bytes; keep it under {README_LIMIT} and move detail to docs/"


@pytest.mark.parametrize(
    "folder, suffix", [("docs/img", ".png"), ("benchmarks/results", ".json")], ids=["images", "results"]
)
def test_every_image_and_result_file_is_referenced_from_the_docs(folder, suffix):
    said = everything_the_docs_say()
    files = sorted((REPO / folder).glob(f"*{suffix}"))
    assert files, f"{folder} holds no {suffix} files"
    unreferenced = [path.name for path in files if path.name not in said and path.stem not in said]
    assert not unreferenced, f"not referenced from README.md or docs/*.md (delete or document): {unreferenced}"


def test_every_relative_link_in_the_docs_points_to_a_file():
    missing = []
    for path in docs():
        for target in LINK.findall(path.read_text(encoding="utf-8")):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            if not (path.parent / target).exists():
                missing.append(f"{path.relative_to(REPO)}: {target}")
    assert not missing, missing


def test_the_link_check_finds_a_missing_file(tmp_path):
    """The pattern sees images and links, and skips URLs and anchors, so the check above can fail."""
    text = "![a](img/a.png) [b](../b.md#part) [c](https://example.org/x) [d](<spaced.md>)"
    assert LINK.findall(text) == ["img/a.png", "../b.md", "https://example.org/x", "spaced.md"]
