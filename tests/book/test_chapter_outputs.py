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
        tree = _parse(source)
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


def _parse(source: str) -> ast.Module:
    return ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))


def _is_glue(node) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "glue" and node.args


def _template(node) -> list:
    """A glued name's parts: literal text, or the expression of an f-string's field."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [v.value for v in node.values]  # a Constant's text, a FormattedValue's expression
    return [node]


def _regex(parts: list, bound: dict) -> str:
    """Literal parts as they are; a field that is a helper's parameter bound to a string (or an
    f-string) at the call site as that; any other field matches any text."""
    out = ""
    for part in parts:
        if isinstance(part, str):
            out += re.escape(part)
        elif isinstance(part, ast.Name) and part.id in bound:
            out += _regex(_template(bound[part.id]), {})
        else:
            out += ".+"
    return out


def _glue_helpers(cells: list[str]) -> dict:
    """Functions a chapter defines that glue a name made from their parameters (chapter 5's
    `claim`): {function: (parameters, the glued name's parts)}. A name glued inside one is glued
    where the function is called, not where it is defined."""
    helpers = {}
    for source in cells:
        for node in ast.walk(_parse(source)):
            if isinstance(node, ast.FunctionDef):
                calls = [c for c in ast.walk(node) if _is_glue(c)]
                if calls:
                    helpers[node.name] = ([a.arg for a in node.args.args], _template(calls[0].args[0]))
    return helpers


def _glue_names(source: str, helpers: dict) -> list[re.Pattern]:
    """The names a code cell glues: literal, f-strings whose fields match any text, and the names
    that calls of a gluing helper make from their arguments."""
    out = []
    tree = _parse(source)
    inside = {id(c) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) for c in ast.walk(f)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or id(node) in inside:
            continue
        if _is_glue(node):
            out.append(re.compile(f"^{_regex(_template(node.args[0]), {})}$"))
        elif isinstance(node.func, ast.Name) and node.func.id in helpers:
            params, parts = helpers[node.func.id]
            bound = dict(zip(params, node.args)) | {k.arg: k.value for k in node.keywords if k.arg}
            out.append(re.compile(f"^{_regex(parts, bound)}$"))
    return out


def test_the_glue_order_check_follows_helpers():
    cells = ['def claim(section, name, row):\n    glue(f"ch9_{name}", row)\n',
             'claim("s", "first", 1)\nfor t in "ab":\n    claim("s", f"second_{t}", 2)\nglue(f"ch9_x_{t}", 3)\n']
    helpers = _glue_helpers(cells)
    assert _glue_names(cells[0], helpers) == []  # the definition glues nothing
    names = ["ch9_first", "ch9_second_a", "ch9_x_b", "ch9_third"]
    assert [any(p.match(n) for p in _glue_names(cells[1], helpers)) for n in names] == [True, True, True, False]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_number_in_the_text_is_glued_before_it_is_read(path):
    """The text names computed numbers as {eval}`name` (bnlib/book.py): the built book pastes the
    glued value, and JupyterLab evaluates `name` in the kernel when it renders the cell, so the
    cell that glues it must come first. myst-nb's {glue:text} (a bare name in JupyterLab) is not
    used."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    helpers = _glue_helpers(["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"])
    glued, late, old = [], [], []
    for i, cell in enumerate(nb["cells"]):
        source = "".join(cell["source"])
        if cell["cell_type"] == "code":
            glued += _glue_names(source, helpers)
        elif cell["cell_type"] == "markdown":
            old += re.findall(r"\{glue(?::\w+)?\}`[^`]+`", source)
            for name in re.findall(r"\{eval\}`([^`]+)`", source):
                assert name.isidentifier(), f"{path.name}: {{eval}}`{name}` is not a name"
                if not any(p.match(name) for p in glued):
                    late.append(f"cell {i}: {name}")
    assert not old, f"{path.name}: use {{eval}}`name` (bnlib.book.glue), not {old[:3]}"
    assert not late, f"{path.name}: read before any cell glues them: {late[:5]}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_numbers_stored_for_jupyterlab_are_the_builds(path, build_html):
    """Each markdown cell carries its {eval} numbers in its metadata (tools/store_numbers.py), so
    that JupyterLab shows them before the chapter runs: they must be the numbers this build glued."""
    import store_numbers

    if not (EXECUTED / path.name).exists():
        pytest.skip(f"{EXECUTED / path.name} is missing: run `make book` first")
    _, changed = store_numbers.stored(path)
    assert not changed, (f"{path.name}: markdown cells {changed} store numbers that are not the build's: "
                         "run `.venv/bin/python tools/store_numbers.py` after `make book`")
