"""Checks of the built HTML book (`make book` writes `_build/html` before pytest runs).

What a reader needs: every page of the table of contents is there, the API page was generated
from bnlib's docstrings, the bibliography lists every entry of references.bib, and no page asks
the browser for anything on another host (the book must work offline: no CDN scripts, styles or
fonts). test_browser.py checks the same pages in a real browser.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from conftest import BUILD_HTML, ROOT, book_pages, toc_pages

pytestmark = pytest.mark.usefixtures("build_html")


def toc_files() -> list[str]:
    """The document names listed in _toc.yml (root first), e.g. ``chapters/01_cpa_splines``."""
    return toc_pages(ROOT / "_toc.yml")


class ResourceLinks(HTMLParser):
    """Collects the URLs a browser would load while rendering a page (not the links to follow)."""

    LOADED = {
        "script": ["src"],
        "img": ["src", "srcset"],
        "iframe": ["src"],
        "source": ["src", "srcset"],
        "video": ["src", "poster"],
        "audio": ["src"],
        "embed": ["src"],
        "object": ["data"],
        "input": ["src"],
    }
    # <link rel=...> values that make the browser fetch the href.
    FETCHING_RELS = {"stylesheet", "preload", "prefetch", "modulepreload", "icon",
                     "shortcut", "apple-touch-icon", "manifest", "preconnect", "dns-prefetch"}

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in self.LOADED.get(tag, []):
            if attrs.get(name):
                self.urls.append((f"<{tag} {name}>", attrs[name]))
        if tag == "link" and attrs.get("href"):
            rels = set((attrs.get("rel") or "").lower().split())
            if rels & self.FETCHING_RELS:
                self.urls.append((f"<link rel={attrs.get('rel')}>", attrs["href"]))
        style = attrs.get("style") or ""
        for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", style):
            self.urls.append((f"<{tag} style>", url))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            for url in re.findall(r"(?:url\(|@import)\s*['\"]?([^'\")\s;]+)", data):
                self.urls.append(("<style>", url))


REMOTE = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)


def remote_urls(html: str) -> list[tuple[str, str]]:
    parser = ResourceLinks()
    parser.feed(html)
    found = []
    for where, value in parser.urls:
        # srcset holds "url size, url size"
        for url in [part.strip().split(" ")[0] for part in value.split(",")] if "srcset" in where else [value]:
            if REMOTE.match(url):
                found.append((where, url))
    return found


def test_book_has_every_toc_page():
    missing = [n for n in toc_files() if not (BUILD_HTML / f"{n}.html").is_file()]
    assert not missing, f"pages of _toc.yml missing from {BUILD_HTML}: {missing}"
    assert (BUILD_HTML / "index.html").is_file()


def test_every_chapter_notebook_is_in_the_book():
    listed = set(toc_files())
    notebooks = sorted(p.relative_to(ROOT).with_suffix("").as_posix()
                       for p in (ROOT / "chapters").glob("*.ipynb"))
    assert notebooks, "no chapters/*.ipynb found"
    left_out = [n for n in notebooks if n not in listed]
    assert not left_out, f"notebooks not in _toc.yml (so not built nor shown): {left_out}"


def test_chapter_pages_show_executed_outputs():
    """The build executed every notebook: each chapter page has cell outputs and no traceback."""
    for name in toc_files():
        if not name.startswith("chapters/"):
            continue
        page = (BUILD_HTML / f"{name}.html").read_text(encoding="utf8")
        assert "cell_output" in page, f"{name}: no cell output on the page (was it executed?)"
        assert "Traceback (most recent call last)" not in page, f"{name}: a cell raised"


def test_every_chapter_has_an_executed_copy_with_checked_cells():
    """`make test` runs nbval on the build's executed copies (see the Makefile): each chapter
    must have one, carrying outputs, with at least one `# NBVAL_CHECK_OUTPUT` cell to compare."""
    import json

    executed = BUILD_HTML.parent / "jupyter_execute" / "chapters"
    for source in sorted((ROOT / "chapters").glob("*.ipynb")):
        copy = executed / source.name
        assert copy.is_file(), f"{copy} is missing: the book build did not execute {source.name}"
        cells = [c for c in json.loads(copy.read_text())["cells"] if c["cell_type"] == "code"]
        checked = [c for c in cells if "".join(c["source"]).lstrip().startswith("# NBVAL_CHECK_OUTPUT")]
        assert checked, f"{source.name}: no cell marked # NBVAL_CHECK_OUTPUT"
        assert all(c["outputs"] for c in checked), f"{source.name}: a checked cell printed nothing"


def test_api_page_documents_bnlib():
    page = (BUILD_HTML / "api.html").read_text(encoding="utf8")
    # Every public module of bnlib has its section (a new module needs one in api.md:
    # "## `bnlib.NAME`: ..." and an {eval-rst} ".. automodule:: bnlib.NAME" block).
    modules = sorted(f"bnlib.{p.stem}" for p in (ROOT / "bnlib").glob("*.py")
                     if not p.stem.startswith("_"))
    missing = [m for m in modules if f'id="module-{m}"' not in page]
    assert not missing, f"api.html lacks the modules {missing}: add them to api.md"
    # The two names every chapter uses, with their generated entries (signature anchors).
    assert 'id="bnlib.nets.MLP"' in page, "api.html does not document bnlib.nets.MLP"
    assert re.search(r'id="bnlib\.partition\.partition"', page), \
        "api.html does not document bnlib.partition.partition"
    # napoleon turned the numpy sections into field lists.
    assert "Parameters" in page and "Returns" in page


def bib_titles() -> dict[str, str]:
    text = (ROOT / "references.bib").read_text(encoding="utf8")
    entries = re.findall(r"@\w+\{([^,\s]+),(.*?)\n\}", text, flags=re.S)
    titles = {}
    for key, body in entries:
        m = re.search(r"\btitle\s*=\s*\{(.*?)\},?\s*\n", body, flags=re.S)
        assert m, f"references.bib: {key} has no title"
        titles[key] = re.sub(r"[{}]", "", m.group(1))
    return titles


def test_bibliography_lists_every_reference():
    page = (BUILD_HTML / "bibliography.html").read_text(encoding="utf8")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page)).replace("&amp;", "&").lower()
    titles = bib_titles()
    assert "balestriero2022batch" in titles
    # The bibliography style may change the case of titles ("A spline theory of deep networks").
    missing = [k for k, t in titles.items() if t.rstrip(".?").lower() not in text]
    assert not missing, f"bibliography.html lacks the entries {missing}"


def landing_page() -> str:
    """The root page of _toc.yml (index.html only redirects to it)."""
    return (BUILD_HTML / f"{toc_files()[0]}.html").read_text(encoding="utf8")


def test_intro_cites_the_paper():
    page = landing_page()
    assert "Balestriero" in page and "bibliography.html#" in page, \
        "the landing page does not cite Balestriero & Baraniuk (2022)"


def test_no_page_loads_remote_resources():
    pages = book_pages()
    assert pages, f"no HTML pages under {BUILD_HTML}"
    offenders = {}
    for path in pages:
        found = remote_urls(path.read_text(encoding="utf8"))
        if found:
            offenders[path.relative_to(BUILD_HTML).as_posix()] = found
    assert not offenders, f"pages that would fetch from another host: {offenders}"


def test_static_css_loads_nothing_remote():
    offenders = []
    for css in (BUILD_HTML / "_static").rglob("*.css"):
        text = css.read_text(encoding="utf8", errors="replace")
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)  # comments (license headers)
        for url in re.findall(r"(?:url\(|@import)\s*['\"]?([^'\")\s;]+)", text):
            if REMOTE.match(url):
                offenders.append((css.relative_to(BUILD_HTML).as_posix(), url))
    assert not offenders, f"stylesheets that would fetch from another host: {offenders}"


def test_mathjax_and_widgets_are_vendored():
    assert re.search(r'<script[^>]+src="_static/mathjax/tex-chtml\.js', landing_page()), \
        "the landing page does not load the vendored MathJax"
    static = BUILD_HTML / "_static"
    assert (static / "mathjax" / "tex-chtml.js").is_file()
    fonts = list((static / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))
    assert fonts, "MathJax's CHTML fonts are not next to the vendored script"
    assert (static / "require.js").is_file()
    assert (static / "jupyter-widgets" / "embed-amd.js").is_file()
    for path in book_pages():
        html = path.read_text(encoding="utf8")
        if "application/vnd.jupyter.widget-state+json" in html:
            assert "_static/jupyter-widgets/offline.js" in html and \
                "_static/jupyter-widgets/embed-amd.js" in html, \
                f"{path.name}: widget state without the vendored widget embedder"


class ExecTable(HTMLParser):
    """Rows of the execution report's table: [document, modified, method, run time, status]."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append([])
        elif self._in_body and tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_execution_report_lists_every_chapter_with_its_run_time():
    """The execution report (execution.md, myst-nb's statistics) has one row per chapter, each
    executed and succeeded. Oracle for the times: the build writes each executed copy right after
    running it, in name order, so a chapter's run time fits between its copy's and the previous
    copy's modification times, and fills most of that gap (parsing a page takes a moment)."""
    table = ExecTable()
    table.feed((BUILD_HTML / "execution.html").read_text(encoding="utf8"))
    rows = {row[0]: row for row in table.rows}
    chapters = sorted(p.stem for p in (ROOT / "chapters").glob("*.ipynb"))
    assert sorted(rows) == [f"chapters/{c}" for c in chapters], rows
    executed = BUILD_HTML.parent / "jupyter_execute" / "chapters"
    written = [(executed / f"{c}.ipynb").stat().st_mtime for c in chapters]
    for i, chapter in enumerate(chapters):
        _, _, method, runtime, status = rows[f"chapters/{chapter}"]
        assert method == "force" and status == "succeeded", rows[f"chapters/{chapter}"]
        seconds = float(runtime)
        assert seconds > 0.5, f"{chapter}: {seconds} s is too short to have run the chapter"
        if i > 0:
            gap = written[i] - written[i - 1]
            assert 0.5 * gap <= seconds <= gap + 1.0, f"{chapter}: {seconds} s run, {gap:.1f} s gap"


def test_every_local_extension_is_loaded():
    """_config.yml's `sphinx.config.extensions` replaces Jupyter Book's list, so a local extension
    that is not also named there is never loaded (the {eval} role of tools/eval_glue.py once was not:
    every computed number of chapters 2-5 became a warning)."""
    import yaml

    sphinx = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]
    missing = set(sphinx["local_extensions"]) - set(sphinx["config"]["extensions"])
    assert not missing, f"local extensions not in sphinx.config.extensions: {sorted(missing)}"


def test_computed_numbers_are_pasted_into_the_chapters(build_html):
    """Every {eval}`name` of a chapter became the glued text (a `pasted-text` span) on its page."""
    import json

    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        roles = sum(len(re.findall(r"\{eval\}`[^`]+`", "".join(c["source"])))
                    for c in cells if c["cell_type"] == "markdown")
        page = (BUILD_HTML / "chapters" / f"{path.stem}.html").read_text(encoding="utf-8")
        assert page.count('class="pasted-text"') >= roles, (path.name, roles)
