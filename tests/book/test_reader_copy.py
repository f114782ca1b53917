"""The reader's copies of the chapters (tools/reader_copy.py, written by `make book`).

The page's download button and the Colab launch button give the reader's copy of a chapter: its
markdown resolved to CommonMark + LaTeX, for Colab and a plain Jupyter, which render no MyST.
Checked here, against the committed chapters (the single source) and the built pages:
- no MyST role, directive, target or equation label is left in any markdown cell (the pattern
  below is the test's own, not the script's);
- the code cells are the chapter's, unchanged and in order; the markdown cells are as many;
- the links within a copy point at anchors the copy defines;
- the glued numbers are the values the built page shows;
- a copy runs top to bottom in a fresh kernel (chapter 1's: the cheapest to run; the code cells of
  every chapter are the same as the chapters' own, which nbval runs).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import ROOT

CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
# MyST syntax: a role ({name}`...`), a directive fence (```{name} or :::{name}), a target
# `(label)=`, a labelled equation `$$ (label)`, a substitution {{ name }}.
MYST = re.compile(r"\{[a-z]+(?::[a-z-]+)?\}`|^\s*(?:`{3,}|:{3,})\s*\{|^\s*\([\w.:-]+\)=\s*$|\$\$\s*\([\w.:-]+\)"
                  r"|\{\{[^}]*\}\}", re.M)


@pytest.fixture(scope="module")
def copies(build_html: Path) -> dict[str, dict]:
    out = {}
    for chapter in CHAPTERS:
        path = build_html / "_sources" / "chapters" / chapter.name
        assert path.is_file(), f"{path} is missing: `make book` writes it (tools/reader_copy.py)"
        out[chapter.name] = json.loads(path.read_text(encoding="utf8"))
    return out


def _markdown(nb: dict) -> list[str]:
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def test_the_oracle_sees_myst():
    source = "\n".join(m for chapter in CHAPTERS for m in _markdown(json.loads(chapter.read_text())))
    found = {m.group(0)[:6] for m in MYST.finditer(source)}
    assert {"{term}", "{ref}`", "{eq}`", "{cite}", "{prf:r"} <= found, found


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_no_myst_is_left(chapter, copies):
    copy = copies[chapter.name]
    for i, text in enumerate(_markdown(copy)):
        left = [m.group(0) for m in MYST.finditer(text)]
        assert not left, f"{chapter.name}, markdown cell {i}: MyST left in the reader's copy: {left[:5]}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_code_is_the_chapters(chapter, copies):
    source = json.loads(chapter.read_text(encoding="utf8"))
    copy = copies[chapter.name]
    assert [c["cell_type"] for c in copy["cells"]] == [c["cell_type"] for c in source["cells"]]
    assert [c["source"] for c in copy["cells"] if c["cell_type"] == "code"] == \
        [c["source"] for c in source["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") for c in copy["cells"] if c["cell_type"] == "code")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_links_within_the_copy_resolve(chapter, copies):
    text = "\n".join(_markdown(copies[chapter.name]))
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', text))
    headings = {re.sub(r"[^\w -]", "", h).strip().lower().replace(" ", "-")
                for h in re.findall(r"^#+\s+(.*)$", text, re.M)}
    wanted = set(re.findall(r"\]\(#([^)\s]+)\)", text))
    assert wanted, f"{chapter.name}: no link within the copy"
    missing = wanted - anchors - headings
    assert not missing, f"{chapter.name}: links to anchors the copy does not define: {sorted(missing)[:5]}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_glued_numbers_are_the_pages(chapter, copies, build_html):
    page = (build_html / "chapters" / f"{chapter.stem}.html").read_text(encoding="utf8")
    shown = [" ".join(re.sub(r"<[^>]+>", "", v).split())
             for v in re.findall(r'<span class="pasted-text">(.*?)</span>', page, re.S)]
    text = "\n".join(_markdown(copies[chapter.name]))
    for value in shown:
        assert value.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") in text, \
            f"{chapter.name}: the glued value {value!r} of the page is not in the copy"


def test_a_copy_runs_top_to_bottom(copies, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.reads(json.dumps(copies[CHAPTERS[0].name]), as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
