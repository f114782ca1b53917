"""Store each chapter's computed numbers where JupyterLab shows them before the chapter runs.

A sentence names a computed number as {eval}`name` (bnlib/book.py). jupyterlab-myst evaluates the
name in the kernel when it renders the cell, and keeps the result in the markdown cell's metadata
(`user_expressions`); a cell that carries that metadata shows the numbers as soon as the notebook
opens, before anything runs. Without it a reader who opens a chapter sees names (ch2_closer_bn_8)
until the cells that compute them have run.

This script fills that metadata from the numbers the last book build glued
(_build/jupyter_execute/chapters/<chapter>.glue.json, written by `make book`), in the form
jupyterlab-myst writes it. The numbers are the build's, so the text a reader sees before running is
the text the built book shows; tests/book/test_chapter_outputs.py checks that the stored numbers
are the build's, so they cannot go stale.

    .venv/bin/python tools/store_numbers.py          # after `make book`: update the chapters
    .venv/bin/python tools/store_numbers.py --check  # list the cells whose numbers differ (exit 1)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
EXECUTED = ROOT / "_build" / "jupyter_execute" / "chapters"
EVAL = re.compile(r"\{eval\}`([^`]+)`")


def glued(chapter: Path) -> dict[str, str]:
    """The text each name was glued as in the last build, {name: text}."""
    path = EXECUTED / f"{chapter.stem}.glue.json"
    if not path.exists():  # a chapter that glues nothing has none
        if not (EXECUTED / chapter.name).exists():
            raise SystemExit(f"{EXECUTED / chapter.name} is missing: run `make book` first")
        return {}
    out = {}
    for name, output in json.loads(path.read_text(encoding="utf-8")).items():
        text = output.get("data", {}).get("text/plain")
        if text is not None:
            out[name] = "".join(text) if isinstance(text, list) else text
    return out


def expressions(source: str, values: dict[str, str], chapter: str) -> list[dict]:
    """The metadata jupyterlab-myst keeps for a markdown cell: one result per {eval}, in order."""
    out = []
    for name in EVAL.findall(source):
        if name not in values:
            raise SystemExit(f"{chapter}: {{eval}}`{name}` was not glued in the last build")
        out.append({"expression": name,
                    "result": {"status": "ok", "data": {"text/plain": values[name]}, "metadata": {}}})
    return out


def stored(chapter: Path) -> tuple[dict, list[int]]:
    """The chapter with its numbers stored, and the indices of the cells that changed."""
    nb = json.loads(chapter.read_text(encoding="utf-8"))
    values = glued(chapter)
    changed = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        want = expressions("".join(cell["source"]), values, chapter.name)
        have = cell.get("metadata", {}).get("user_expressions")
        if want and have != want:
            cell.setdefault("metadata", {})["user_expressions"] = want
            changed.append(i)
        elif not want and have is not None:
            del cell["metadata"]["user_expressions"]
            changed.append(i)
    return nb, changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only list the cells whose stored numbers differ")
    args = parser.parse_args(argv)
    stale = 0
    for chapter in sorted(CHAPTERS.glob("*.ipynb")):
        nb, changed = stored(chapter)
        if not changed:
            continue
        stale += len(changed)
        if args.check:
            print(f"{chapter.name}: the numbers stored in markdown cells {changed} are not the build's")
        else:
            chapter.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"{chapter.name}: stored the numbers of {len(changed)} markdown cells")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
