"""Write (or check) the first code cell of every chapter: install bnlib where it is missing.

A chapter opened from its Colab launch button runs on a machine that has torch, numpy, numba,
matplotlib, ipywidgets, scikit-learn, scipy and tqdm but not bnlib, the book's own library. The
first code cell of each chapter therefore installs bnlib (with its dependencies, which are ranges:
Colab's own versions stay where they fit) from the book's repository when ``import bnlib`` fails
or finds only an empty ``bnlib`` folder (a namespace package, as an uninstall can leave), and does
nothing where bnlib is installed (the book build, ``make lab``, Binder, nbval). The environment
variables ``BNBOOK_REPOSITORY`` and ``BNBOOK_BRANCH`` override the URL and branch (any URL pip's
``git+`` takes, e.g. ``file:///path/to/clone``: tests/book/test_install.py runs chapters so).

The repository URL and branch live in ONE place, ``repository:`` in ``_config.yml`` (the launch
buttons are built from the same keys). This script renders the cell from that config:

    python tools/install_cell.py           # rewrite the cell in chapters/*.ipynb
    python tools/install_cell.py --check   # exit 1 if a chapter's cell is missing or stale

``tests/book/test_launch.py`` runs the check and executes the cell in both situations (bnlib
present / missing, with pip replaced by a recorder); ``tests/book/test_install.py`` runs chapters
1 and 5 with it, for real, in a fresh environment standing in for Colab.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
TAG = "install-bnlib"  # cell tag: how the script (and the tests) find the cell

TEMPLATE = '''\
# Setting up: this cell installs bnlib, the book's library, where it is missing (Colab, a bare
# Python). Where bnlib is installed (this book's build, `make lab`, Binder) it does nothing.
try:
    import bnlib
    if getattr(bnlib, "__file__", None) is None:  # an empty folder left by an uninstall
        raise ImportError("bnlib is not installed")
except ImportError:
    import importlib, importlib.metadata, os, subprocess, sys
    BOOK_REPOSITORY = os.environ.get("BNBOOK_REPOSITORY", "{url}")
    BOOK_BRANCH = os.environ.get("BNBOOK_BRANCH", "{branch}")
    # bnlib's dependencies are ranges: what is installed (Colab's torch, numpy, ...) stays where
    # it fits, and only what is missing or too old is installed.
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                    f"bnlib @ git+{{BOOK_REPOSITORY}}@{{BOOK_BRANCH}}"], check=True)
    sys.modules.pop("bnlib", None)
    importlib.invalidate_caches()
    import bnlib
    print(f"installed bnlib {{importlib.metadata.version('bnlib')}} from {{BOOK_REPOSITORY}} ({{BOOK_BRANCH}})")'''


def repository() -> tuple[str, str]:
    """The repository URL and branch named in ``_config.yml`` (the one place they live)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))
    repo = config.get("repository") or {}
    url, branch = str(repo.get("url", "")).rstrip("/"), str(repo.get("branch", "main"))
    if not url.startswith("https://github.com/") or url.count("/") != 4:
        raise ValueError(f"_config.yml repository.url must be https://github.com/OWNER/NAME, not {url!r}")
    return url, branch


def cell_source() -> str:
    url, branch = repository()
    return TEMPLATE.format(url=url, branch=branch)


def install_cell(nb: dict) -> dict | None:
    """The chapter's install cell (tagged ``install-bnlib``), or None."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and TAG in cell.get("metadata", {}).get("tags", []):
            return cell
    return None


def first_code_cell(nb: dict) -> dict | None:
    return next((c for c in nb["cells"] if c["cell_type"] == "code"), None)


def new_cell(source: str) -> dict:
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": "install-bnlib",
        # remove-cell: the book's pages leave it out (it does nothing there); the notebook keeps it.
        "metadata": {"tags": [TAG, "remove-cell"]},
        "outputs": [],
        "source": source.splitlines(keepends=True),
    }


def problems(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf8"))
    cell = install_cell(nb)
    if cell is None:
        return [f"{path.name}: no code cell tagged {TAG!r}"]
    found = []
    if first_code_cell(nb) is not cell:
        found.append(f"{path.name}: the {TAG} cell is not the first code cell")
    if "".join(cell["source"]) != cell_source():
        found.append(f"{path.name}: the {TAG} cell differs from tools/install_cell.py + _config.yml")
    return found


def write(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf8"))
    cell = install_cell(nb)
    if cell is not None:
        nb["cells"].remove(cell)
    first = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code")
    nb["cells"].insert(first, new_cell(cell_source()))
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale or missing cells")
    args = parser.parse_args(argv)
    if args.check:
        found = [p for path in CHAPTERS for p in problems(path)]
        print("\n".join(found) or f"install cells up to date in {len(CHAPTERS)} chapters")
        return 1 if found else 0
    for path in CHAPTERS:
        write(path)
        print(f"wrote the install cell of {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
