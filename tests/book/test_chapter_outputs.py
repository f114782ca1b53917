"""What the chapters show: tables are HTML tables, printed output stays short, no home-made tables.

The executed copies the book build leaves in _build/jupyter_execute/chapters are read (`make book`
first); the committed chapters are read for the code rule.
"""

from __future__ import annotations

import ast
import json
import re

import pytest

from conftest import BUILD_HTML, ROOT

CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
EXECUTED = ROOT / "_build" / "jupyter_execute" / "chapters"
MAX_PRINTED_LINES = 8
# what a table-formatting helper is called: fmt, format_row, table_rows, print_gain, results_table ...
TABLE_HELPER = re.compile(r"(^|_)(fmt|format|table|tables|rows|print)(_|$)")


def _code_cells(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_chapter_defines_a_table_formatting_function(path):
    for cell in _code_cells(path):
        source = "".join(cell["source"])
        tree = ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))
        names = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
        bad = [n for n in names if TABLE_HELPER.search(n)]
        assert not bad, f"{path.name} defines {bad}: tables come from bnlib.stats (stats.table), not the chapter"


def _executed(path):
    copy = EXECUTED / path.name
    if not copy.exists():
        pytest.skip(f"{copy} is missing: run `make book` first")
    return _code_cells(copy)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_printed_outputs_are_at_most_eight_lines(path, build_html):
    for cell in _executed(path):
        for out in cell.get("outputs", []):
            if out["output_type"] == "stream" and out["name"] == "stdout":
                lines = "".join(out["text"]).rstrip("\n").split("\n")
                assert len(lines) <= MAX_PRINTED_LINES, (
                    f"{path.name}: a cell prints {len(lines)} lines (at most {MAX_PRINTED_LINES}); "
                    f"show a table (bnlib.stats.table) instead:\n{''.join(cell['source'])[:300]}"
                )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_result_tables_are_html_tables_in_the_built_page(path, build_html):
    cells = _executed(path)
    tables = [out for cell in cells for out in cell.get("outputs", [])
              if "text/html" in out.get("data", {}) and "bnlib-table" in "".join(out["data"]["text/html"])]
    assert tables, f"{path.name} shows no bnlib.stats table"
    page = (BUILD_HTML / "chapters" / f"{path.stem}.html").read_text(encoding="utf-8")
    assert page.count('class="bnlib-table"') >= len(tables)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_output_checked_cells_do_not_glue(path):
    # myst-nb's glue writes an output (application/papermill.record) that the book's executed copy
    # does not keep, so nbval would find an "unexpected output field" in a checked cell
    for cell in _code_cells(path):
        source = "".join(cell["source"])
        assert not ("NBVAL_CHECK_OUTPUT" in source and "glue(" in source), (
            f"{path.name}: a cell marked NBVAL_CHECK_OUTPUT calls glue(); check its numbers with asserts:\n"
            f"{source[:200]}"
        )


def _glue_names(source: str) -> list[re.Pattern]:
    """The names a code cell glues: literal, or f-strings whose fields match any text."""
    out = []
    for match in re.finditer(r"glue\(\s*(f?)\"([^\"]+)\"", source):
        pattern = re.escape(match.group(2))
        if match.group(1):
            pattern = re.sub(r"\\\{[^}]*\\\}", ".+", pattern)
        out.append(re.compile(f"^{pattern}$"))
    return out


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_number_in_the_text_is_glued_before_it_is_read(path):
    """The text names computed numbers as {eval}`name` (bnlib/book.py): the built book pastes the
    glued value, and JupyterLab evaluates `name` in the kernel when it renders the cell, so the
    cell that glues it must come first. myst-nb's {glue:text} (a bare name in JupyterLab) is not
    used."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    glued, late, old = [], [], []
    for i, cell in enumerate(nb["cells"]):
        source = "".join(cell["source"])
        if cell["cell_type"] == "code":
            glued += _glue_names(source)
        elif cell["cell_type"] == "markdown":
            old += re.findall(r"\{glue(?::\w+)?\}`[^`]+`", source)
            for name in re.findall(r"\{eval\}`([^`]+)`", source):
                assert name.isidentifier(), f"{path.name}: {{eval}}`{name}` is not a name"
                if not any(p.match(name) for p in glued):
                    late.append(f"cell {i}: {name}")
    assert not old, f"{path.name}: use {{eval}}`name` (bnlib.book.glue), not {old[:3]}"
    assert not late, f"{path.name}: read before any cell glues them: {late[:5]}"
