#!/usr/bin/env python3
"""Check that every evidence span in seed_questions.jsonl occurs in its source file.

Matching is done after collapsing runs of whitespace (including U+00A0) to a
single space. Prints each problem and exits non-zero if any are found.
"""

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
JSONL = HERE / "seed_questions.jsonl"
SEEDS = HERE.parent.parent / "seeds"

WS = re.compile(r"[\s\u00a0]+")


def norm(s):
    return WS.sub(" ", s.replace("\u00a0", " ")).strip()


def main():
    problems = []
    cache = {}
    answerable = unanswerable = 0
    with open(JSONL, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                problems.append(f"line {lineno}: invalid JSON: {e}")
                continue
            q = obj.get("question")
            ev = obj.get("evidence")
            if not isinstance(q, str) or not q.strip():
                problems.append(f"line {lineno}: missing/empty question")
            if not isinstance(ev, list):
                problems.append(f"line {lineno}: evidence is not a list")
                continue
            if ev:
                answerable += 1
            else:
                unanswerable += 1
            for i, e in enumerate(ev):
                src, text = e.get("source"), e.get("text")
                if not isinstance(src, str) or not isinstance(text, str) or not text.strip():
                    problems.append(f"line {lineno} ev {i}: bad source/text")
                    continue
                if src not in cache:
                    p = SEEDS / src
                    if not p.is_file():
                        problems.append(f"line {lineno} ev {i}: source file not found: {src}")
                        cache[src] = None
                        continue
                    cache[src] = norm(p.read_text(encoding="utf-8"))
                if cache[src] is None:
                    continue
                if norm(text) not in cache[src]:
                    problems.append(f"line {lineno} ev {i}: not found in {src}: {text!r}")
    print(f"answerable={answerable} unanswerable={unanswerable}")
    for p in problems:
        print("PROBLEM:", p)
    if problems:
        sys.exit(1)
    print("OK: all evidence spans found")


if __name__ == "__main__":
    main()
