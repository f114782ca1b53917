"""Committed notebooks carry no outputs: the book build and nbval produce them from the code.

Outputs in git would go stale, bloat diffs, and could hide a notebook that no longer runs. To
clean a notebook: `jupyter nbconvert --clear-output --inplace chapters/NAME.ipynb` (JupyterLab:
Edit > Clear Outputs of All Cells, then save).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ROOT

# Build outputs, environments and vendored packages hold notebooks that are not ours.
SKIP_DIRS = {"_build", "_vendor", "node_modules", "build", "dist", "__pycache__"}


def repo_notebooks() -> list[Path]:
    found = []
    for path in ROOT.rglob("*.ipynb"):
        parts = path.relative_to(ROOT).parts[:-1]
        if any(p in SKIP_DIRS or p.startswith(".") for p in parts):
            continue  # also .venv, .git, .ipynb_checkpoints, .jupyter_cache
        found.append(path)
    return sorted(found)


NOTEBOOKS = repo_notebooks()


def test_the_chapters_are_found():
    assert any(p.parent.name == "chapters" for p in NOTEBOOKS), "no chapters/*.ipynb found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.relative_to(ROOT).as_posix() for p in NOTEBOOKS])
def test_notebook_has_no_outputs(path: Path):
    nb = json.loads(path.read_text(encoding="utf8"))
    dirty = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            dirty.append(f"cell {i}: {len(cell['outputs'])} output(s)")
        if cell.get("execution_count") is not None:
            dirty.append(f"cell {i}: execution_count {cell['execution_count']}")
    if "widgets" in nb.get("metadata", {}):
        dirty.append("notebook metadata holds saved widget state ('widgets')")
    assert not dirty, (f"{path.relative_to(ROOT)} is not clean; clear it with "
                       f"`jupyter nbconvert --clear-output --inplace {path.relative_to(ROOT)}`:\n  "
                       + "\n  ".join(dirty))
