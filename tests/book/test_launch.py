"""Running a chapter elsewhere: launch buttons, the .ipynb download, Binder's environment and the
chapters' install cell.

The install cell is executed here in the two situations a reader meets, with pip replaced by a
recorder (the tests have no network): bnlib installed (it must do nothing) and bnlib missing, as
on Colab (it must pip-install bnlib, with its dependencies, from the repository named in
_config.yml), or only an empty bnlib folder left (the same). tests/book/test_install.py runs it for
real in a stand-in for Colab.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))
REPO_URL = CONFIG["repository"]["url"].rstrip("/")
BRANCH = CONFIG["repository"]["branch"]
OWNER, NAME = REPO_URL.removeprefix("https://github.com/").split("/")
sys.path.insert(0, str(ROOT / "tools"))
from reader_copy import PAGES_BRANCH  # noqa: E402


def first_code_cell(path: Path) -> dict:
    nb = json.loads(path.read_text(encoding="utf8"))
    return next(c for c in nb["cells"] if c["cell_type"] == "code")


def install_source(path: Path) -> str:
    cell = first_code_cell(path)
    assert "install-bnlib" in cell["metadata"].get("tags", []), \
        f"{path.name}: the first code cell is not the bnlib install cell"
    return "".join(cell["source"])


def test_install_cells_agree_with_config():
    """tools/install_cell.py --check: every chapter has the cell, first, rendered from _config.yml."""
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "install_cell.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


class PipRecorder:
    """Stands in for subprocess.run: records pip calls; "installing" bnlib unblocks its import."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, args, check=False, **kwargs):
        self.calls.append(list(args))
        if any(str(a).startswith("bnlib @ ") for a in args):
            sys.modules.pop("bnlib", None)  # the entry that blocked the import (None or an empty bnlib)
        return subprocess.CompletedProcess(args, 0)


def run_cell(source: str, monkeypatch, *, bnlib_installed: bool, not_installed=()) -> tuple[PipRecorder, str]:
    recorder = PipRecorder()
    monkeypatch.setattr(subprocess, "run", recorder)
    if not bnlib_installed:
        monkeypatch.setitem(sys.modules, "bnlib", None)  # `import bnlib` raises ImportError
    real_version = importlib.metadata.version

    def version(name):
        if name in not_installed:
            raise importlib.metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "<install cell>", "exec"), {"__name__": "__main__"})
    return recorder, out.getvalue()


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_install_cell_does_nothing_where_bnlib_is_installed(path, monkeypatch):
    recorder, printed = run_cell(install_source(path), monkeypatch, bnlib_installed=True)
    assert recorder.calls == [] and printed == ""


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_install_cell_installs_bnlib_where_it_is_missing(path, monkeypatch):
    # As on Colab: torch, numpy, ... are there (this environment), bnlib is not. bnlib comes with
    # its dependencies (ranges: what is installed stays where it fits), not --no-deps.
    monkeypatch.delenv("BNBOOK_REPOSITORY", raising=False)
    monkeypatch.delenv("BNBOOK_BRANCH", raising=False)
    recorder, printed = run_cell(install_source(path), monkeypatch, bnlib_installed=False)
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    assert recorder.calls == [pip + [f"bnlib @ git+{REPO_URL}@{BRANCH}"]]
    assert REPO_URL in printed and "installed bnlib" in printed
    assert sys.modules["bnlib"].__name__ == "bnlib"  # imported for the rest of the chapter


def test_install_cell_installs_over_an_empty_bnlib_folder(monkeypatch):
    # An uninstall that left site-packages/bnlib/ behind: `import bnlib` finds a namespace package
    # (no __file__), which is not bnlib. The cell installs it (from the URL the environment names).
    import types

    empty = types.ModuleType("bnlib")
    empty.__file__, empty.__path__ = None, []
    monkeypatch.setitem(sys.modules, "bnlib", empty)
    monkeypatch.setenv("BNBOOK_REPOSITORY", "file:///tmp/a-clone")
    monkeypatch.setenv("BNBOOK_BRANCH", "work")
    recorder, printed = run_cell(install_source(CHAPTERS[0]), monkeypatch, bnlib_installed=True)
    assert recorder.calls == [[sys.executable, "-m", "pip", "install", "--quiet",
                               "bnlib @ git+file:///tmp/a-clone@work"]]
    assert "installed bnlib" in printed and sys.modules["bnlib"].__file__ is not None


def test_install_cell_prints_nothing_in_the_book_build(build_html):
    executed = sorted((ROOT / "_build" / "jupyter_execute" / "chapters").glob("*.ipynb"))
    assert [p.name for p in executed] == [p.name for p in CHAPTERS]
    for path in executed:
        cell = first_code_cell(path)
        assert "install-bnlib" in cell["metadata"]["tags"] and cell["outputs"] == [], path.name


def test_binder_installs_the_lock_and_bnlib():
    """pip itself parses binder/requirements.txt: it resolves to the full lock, all satisfied here."""
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index",
                           "-r", str(ROOT / "binder" / "requirements.txt")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    from packaging.requirements import Requirement

    # the lock's lines for this platform (the others carry a marker: macOS, Windows, torch's two builds)
    lock = [req.name for line in (ROOT / "requirements.txt").read_text().splitlines()
            if "==" in line and not line.startswith("#")
            for req in [Requirement(line)] if req.marker is None or req.marker.evaluate()]
    assert "Would install" not in done.stdout
    assert done.stdout.count("Requirement already satisfied") >= len(lock) > 100
    binder = (ROOT / "binder" / "requirements.txt").read_text()
    assert "download.pytorch.org/whl/cpu" in binder  # torch==...+cpu lives on PyTorch's index
    post = (ROOT / "binder" / "postBuild")
    assert post.stat().st_mode & 0o111, "binder/postBuild must be executable"
    assert "pip install --no-deps --no-build-isolation -e ." in post.read_text()


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a" and dict(attrs).get("href"):
            self.hrefs.append(dict(attrs)["href"])


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_page_has_launch_buttons_and_download(path, build_html):
    page = build_html / "chapters" / f"{path.stem}.html"
    links = Links()
    links.feed(page.read_text(encoding="utf8"))
    rel = f"chapters/{path.name}"
    # Colab opens the reader's copy (tools/reader_copy.py) from the branch the site is published to;
    # Binder opens the chapter itself in JupyterLab, which renders MyST (jupyterlab-myst).
    copy = f"_sources/{rel}"
    assert f"https://colab.research.google.com/github/{OWNER}/{NAME}/blob/{PAGES_BRANCH}/{copy}" in links.hrefs
    assert f"https://mybinder.org/v2/gh/{OWNER}/{NAME}/{BRANCH}?urlpath=lab/tree/{rel}" in links.hrefs
    download = f"../_sources/{rel}"
    assert download in links.hrefs
    served = json.loads((page.parent / download).read_text(encoding="utf8"))
    source = json.loads(path.read_text(encoding="utf8"))
    assert len(served["cells"]) == len(source["cells"]), "the download is not the chapter's reader's copy"
    assert "reader_copy" in served["metadata"].get("bnbook", {}), "the download is the MyST chapter itself"
