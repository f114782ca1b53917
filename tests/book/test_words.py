"""Checks of the book's words: the glossary, the notation table, the term links and the alt text.

From the sources: every glossary term is linked ({term} role) from at least one chapter, every
{term} in a chapter names a glossary term, each chapter links at least five terms, and every
symbol of the chapters' mathematics has a row in notation.md that links to its definition. From
the built book (`make book`): every image in a chapter's article has a real alt text.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import yaml

from conftest import ROOT

CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
GLOSSARY = ROOT / "glossary.md"
NOTATION = ROOT / "notation.md"


# --- reading the sources --------------------------------------------------------------------------

def markdown_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def figure_captions(path: Path) -> list[str]:
    """The captions of the chapter's figures (cell metadata): rendered markdown with math too."""
    cells = json.loads(path.read_text(encoding="utf8"))["cells"]
    return [c["metadata"]["mystnb"]["figure"]["caption"] for c in cells
            if c["metadata"].get("mystnb", {}).get("figure", {}).get("caption")]


FENCE = re.compile(r"^\s*(`{3,}|~{3,}|:{3,})\s*(.*?)\s*$")


def prose(markdown: str) -> str:
    """Markdown without code blocks, inline code, directive fence lines and directive options.

    The bodies of directives ({prf:proof}, {exercise}, ...) are kept: they are prose and math."""
    out, directives, code = [], [], None
    for line in markdown.splitlines():
        m = FENCE.match(line)
        if code is not None:  # inside a code block until its closing fence
            if m and m.group(1)[0] == code[0] and len(m.group(1)) >= len(code) and not m.group(2):
                code = None
            continue
        if m:
            fence, info = m.groups()
            if info.startswith("{"):
                directives.append(fence)
            elif not info and directives and directives[-1][0] == fence[0] \
                    and len(fence) >= len(directives[-1]):
                directives.pop()
            else:
                code = fence
            continue
        if re.match(r"^\s*:[\w-]+:", line):
            continue
        out.append(line)
    return re.sub(r"`[^`\n]+`", "", "\n".join(out))


# $$...$$ (display) or $...$ (inline, which may wrap onto the next line but not span a paragraph)
MATH = re.compile(r"\$\$(.+?)\$\$|\$((?:[^$\n]|\n(?!\s*\n))+?)\$", re.S)


def math_of(markdown: str) -> list[str]:
    return [m.group(1) or m.group(2) for m in MATH.finditer(prose(markdown))]


# --- the glossary and the term links --------------------------------------------------------------

def glossary_entries() -> dict[str, str]:
    """term -> definition, from the {glossary} directive of glossary.md."""
    text = GLOSSARY.read_text(encoding="utf8")
    block = re.search(r"^```\{glossary\}[^\n]*\n(.*?)^```\s*$", text, re.S | re.M)
    assert block, "glossary.md has no ```{glossary} directive"
    entries: dict[str, str] = {}
    term = None
    for line in block.group(1).splitlines():
        if not line.strip() or line.startswith(":"):
            continue
        if line[0].isspace():
            assert term, f"glossary.md: a definition line before any term: {line!r}"
            entries[term] += line.strip() + " "
        else:
            term = line.strip()
            assert term not in entries, f"glossary.md: the term {term!r} appears twice"
            entries[term] = ""
    return entries


TERM_ROLE = re.compile(r"\{term\}`([^`]*)`")


def term_target(content: str) -> str:
    """The glossary term a {term} role points at: `text <term>` or `term`."""
    m = re.search(r"<([^<>]+)>\s*$", content)
    return re.sub(r"\s+", " ", (m.group(1) if m else content)).strip()


def chapter_term_links(path: Path) -> list[str]:
    return [term_target(m.group(1)) for cell in markdown_cells(path)
            for m in TERM_ROLE.finditer(cell)]


def test_glossary_entries_define_and_point_to_the_chapters():
    entries = glossary_entries()
    assert len(entries) >= 20, f"only {len(entries)} glossary terms"
    lower = [t.lower() for t in entries]
    assert len(set(lower)) == len(lower), "two glossary terms differ only by case"
    for term, definition in entries.items():
        assert len(definition.split()) >= 8, f"glossary: {term!r} has no real definition"
        assert "{ref}`" in definition, \
            f"glossary: {term!r} does not say where the book defines or uses it (no {{ref}} link)"


def test_every_glossary_term_is_linked_from_a_chapter():
    linked = {t for path in CHAPTERS for t in chapter_term_links(path)}
    unlinked = sorted(set(glossary_entries()) - linked)
    assert not unlinked, f"glossary terms no chapter links with {{term}}: {unlinked}"


def test_every_term_link_names_a_glossary_term():
    terms = set(glossary_entries())
    for path in CHAPTERS:
        unknown = sorted(set(chapter_term_links(path)) - terms)
        assert not unknown, f"{path.name}: {{term}} links to terms not in glossary.md: {unknown}"


def test_each_chapter_links_its_terms_once():
    for path in CHAPTERS:
        links = chapter_term_links(path)
        assert len(set(links)) >= 5, f"{path.name} links only {len(set(links))} glossary terms"
        twice = sorted({t for t in links if links.count(t) > 1})
        assert not twice, f"{path.name}: link a term at its first use only; linked again: {twice}"


def test_term_links_stay_out_of_math_and_headings():
    for path in CHAPTERS:
        for cell in markdown_cells(path):
            for expr in math_of(cell):
                assert "{term}" not in expr, f"{path.name}: a {{term}} role inside math: {expr!r}"
            for line in prose(cell).splitlines():
                assert not (line.lstrip().startswith("#") and "{term}" in line), \
                    f"{path.name}: a {{term}} role in a heading: {line!r}"


# --- the notation table ---------------------------------------------------------------------------

def notation_rows() -> list[list[str]]:
    rows = []
    for line in NOTATION.read_text(encoding="utf8").splitlines():
        if not line.startswith("|") or re.match(r"^\|[\s|:-]+\|$", line):
            continue  # not a table row, or the |---| separator
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 3, f"notation.md: a row without exactly 3 cells (a | in math?): {line}"
        if cells[0] == "Symbol":
            continue
        rows.append(cells)
    return rows


def test_every_notation_row_links_to_a_definition():
    rows = notation_rows()
    assert len(rows) >= 50, f"notation.md has only {len(rows)} symbol rows"
    for symbol, meaning, where in rows:
        assert symbol.startswith("$") and meaning, f"notation.md: malformed row for {symbol!r}"
        assert "{ref}`" in where or "{eq}`" in where, \
            f"notation.md: the row of {symbol} does not link to a definition ({{ref}} or {{eq}})"


# Commands that carry no meaning of their own (layout, fractions, standard relations and operators
# whose meaning is universal); everything else (Greek letters, \ell, \nabla, \langle, \lVert,
# \top, \sim, \to, ...) must have a row in notation.md. Digits are never symbols.
ALLOWED_COMMANDS = {
    "left", "right", "big", "Big", "bigg", "Bigg",              # delimiters' sizes
    "frac", "tfrac", "dfrac", "sqrt", "binom",                  # fractions, roots
    "qquad", "quad", "text", "label", "begin", "end",           # spacing, text, environments
    "dots", "ldots", "cdots", "cdot", "times", "pm",            # dots, products
    "in", "le", "ge", "leq", "geq", "ne", "neq", "approx", "propto", "mapsto",  # relations
    "infty", "sum", "max", "min", "log", "cap", "bigcap", "square",            # operators
    "operatorname", "mathrm",      # checked through the word they wrap (Var, sd, diag, ...)
    "mathbb", "mathcal", "mathbf", "bar", "hat",  # checked as the compound (\mathbb E, \bar z)
}
COMPOUND = re.compile(r"\\(mathbb|mathcal|mathbf|bar|hat)\s*\{?\s*([A-Za-z0-9])\}?")
NAMED = re.compile(r"\\(operatorname|mathrm)\s*\{([^{}]*)\}")
WORDS = re.compile(r"\\(?:text|label|begin|end)\s*\{[^{}]*\}")


def symbols(expr: str) -> set[str]:
    """The symbols of one math expression: letters, commands, compounds and named operators."""
    found = {f"\\{a} {b}" for a, b in COMPOUND.findall(expr)}
    found |= {f"\\operatorname{{{b}}}" for _, b in NAMED.findall(expr)}  # \mathrm{diag} = \operatorname{diag}
    rest = WORDS.sub(" ", NAMED.sub(" ", COMPOUND.sub(" ", expr)))
    found |= {c for c in re.findall(r"\\[A-Za-z]+", rest) if c[1:] not in ALLOWED_COMMANDS}
    found |= set(re.findall(r"[A-Za-z]", re.sub(r"\\[A-Za-z]+", " ", rest)))
    return found


def test_symbol_extraction():
    assert symbols(r"\mathbb E\,\mu_B = m") == {r"\mathbb E", r"\mu", "B", "m"}
    assert symbols(r"\operatorname{Var}(h) + n_\text{in} \bar z") == \
        {r"\operatorname{Var}", "h", "n", r"\bar z"}
    assert symbols(r"\begin{cases} t & t > 0 \end{cases}") == {"t"}


def test_every_symbol_of_the_chapters_is_in_the_notation():
    listed = set()
    for symbol, _, _ in notation_rows():
        for expr in math_of(symbol):
            listed |= symbols(expr)
    missing: dict[str, set[str]] = {}
    for path in CHAPTERS:
        for text in markdown_cells(path) + figure_captions(path):
            for expr in math_of(text):
                for s in symbols(expr) - listed:
                    missing.setdefault(s, set()).add(path.name)
    assert not missing, f"symbols of the chapters' math without a row in notation.md: {missing}"


# --- the book's structure --------------------------------------------------------------------------

def test_reference_part_lists_glossary_and_notation_before_the_api():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    part = next(p for p in toc["parts"] if p.get("caption") == "Reference")
    files = [c["file"] for c in part["chapters"]]
    assert files[:4] == ["glossary", "notation", "api", "bibliography"], files
    intro = (ROOT / "intro.md").read_text(encoding="utf8")
    assert "{doc}`glossary`" in intro and "{doc}`notation`" in intro


def test_chapter_headings_do_not_skip_levels():
    for path in CHAPTERS:
        previous = 0
        for cell in markdown_cells(path):
            for line in prose(cell).splitlines():
                m = re.match(r"^(#{1,6})\s", line)
                if m:
                    level = len(m.group(1))
                    assert level <= previous + 1, \
                        f"{path.name}: heading level {level} after {previous}: {line!r}"
                    previous = level


# --- the built book --------------------------------------------------------------------------------

class ArticleImages(HTMLParser):
    """The <img> tags inside the page's <article> (the chapter's content, not the theme's)."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "article":
            self.depth += 1
        elif tag == "img" and self.depth:
            self.images.append(dict(attrs))

    def handle_endtag(self, tag):
        if tag == "article" and self.depth:
            self.depth -= 1


FILE_NAME = re.compile(r"(^|/)[\w.-]+\.(png|jpe?g|gif|svg|webp)$|^[0-9a-f]{16,}", re.I)


def test_chapter_figures_have_alt_text(build_html):
    pages = sorted((build_html / "chapters").glob("*.html"))
    assert pages, f"no chapter pages under {build_html / 'chapters'}"
    total = 0
    for page in pages:
        parser = ArticleImages()
        parser.feed(page.read_text(encoding="utf8"))
        for img in parser.images:
            alt = (img.get("alt") or "").strip()
            src = (img.get("src") or "")[:80]
            assert alt, f"{page.name}: an image without alt text ({src})"
            assert not FILE_NAME.search(alt) and alt != src, \
                f"{page.name}: the alt text of {src} is a file name, not a description: {alt!r}"
            assert len(alt.split()) >= 5, f"{page.name}: alt text too short to describe: {alt!r}"
        total += len(parser.images)
    assert total, "the chapter pages show no images at all (were the notebooks executed?)"
