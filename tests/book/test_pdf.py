"""The PDF of the whole book (`make pdf`, tools/pdf.py), read back with poppler's tools.

Every oracle comes from somewhere else than the script that printed the PDF: the page order and
titles from `_toc.yml` and the built HTML pages, the figures and the players' frames from the HTML
(and `_images/`), and what the PDF holds from poppler (`pdfinfo`, `pdftotext`, `pdffonts`,
`pdfimages`, `pdftoppm`). Checked:
- the page count is plausible and every page is numbered in order; the pages of each toc entry
  follow `_toc.yml` (the title in each page's footer) and its first page shows its title;
- no page is empty;
- the math is typeset: no TeX in a page's text beyond the TeX its code cells print (matplotlib
  labels), and MathJax's web fonts (embedded by chromium as Type 3 fonts; the text fonts are
  TrueType) are on every page range whose HTML has math;
- every figure of the HTML is in its page range, at its pixel size, and every kernel-free player
  shows its first frame (pixel for pixel) and none of its controls;
- the pages with figures are coloured with the book's Okabe-Ito palette (rendered at 30 dpi);
- the exercise solutions are printed (the PDF unfolds them);
- the outline (read with pypdf): one entry per toc page, in toc order, at its first page, and under
  it the page's section headings as the HTML has them, in order, each at a page of its range;
- the links: every link of the PDF either goes to another site or to a page of the PDF (none to the
  server that printed it, none to a name the PDF does not define); each chapter links within
  itself (equations, figures, sections) and to the glossary, and those links land in their ranges;
- nothing was fetched from another host while printing, and no link points at the local server.

The PDF is `_build/pdf/batch-normalization-explained.pdf` (from `make pdf`; `make test` makes it
before pytest). To check another one: BNBOOK_PDF=<pdf>, BNBOOK_PDF_HTML=<html folder it was printed
from>, BNBOOK_PDF_TOC=<its _toc.yml>. Missing PDF or poppler: a skip locally, a failure in CI.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import BUILD_HTML, ROOT, skip_or_fail, toc_pages

PDF = Path(os.environ.get("BNBOOK_PDF", ROOT / "_build" / "pdf" / "batch-normalization-explained.pdf"))
HTML = Path(os.environ.get("BNBOOK_PDF_HTML", BUILD_HTML))
TOC = Path(os.environ.get("BNBOOK_PDF_TOC", ROOT / "_toc.yml"))
POPPLER = ("pdfinfo", "pdftotext", "pdffonts", "pdfimages", "pdftoppm")
# TeX as text: a control word (\\omega, \\frac, ...), a math delimiter (\\( \\) \\[ \\]) or $$.
TEX_TOKEN = re.compile(r"\\[A-Za-z]+|\\[()\[\]]|\$\$")
# Okabe-Ito colours the figures fill and draw with and the theme never uses for text or boxes (its
# blues and purple are left out): orange, bluish green, yellow, vermillion.
WARM_PALETTE = np.array(
    [[0xE6, 0x9F, 0x00], [0x00, 0x9E, 0x73], [0xF0, 0xE4, 0x42], [0xD5, 0x5E, 0x00]], dtype=float)


def _run(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


class Doc:
    """One toc page as the HTML has it: title, figures, players' frames, math, solutions."""

    def __init__(self, name: str):
        self.name = name
        path = HTML / f"{name}.html"
        source = path.read_text(encoding="utf-8")
        self.title = html.unescape(re.search(r"<title>(.*?)</title>", source, re.S).group(1))
        self.title = self.title.split("\u2014")[0].strip()
        from PIL import Image

        self.figures = []  # (width, height) of each figure image of the page
        for src in re.findall(r'<img[^>]*\bsrc="([^"]*_images/[^"]+)"', source):
            with Image.open((path.parent / src).resolve()) as im:
                self.figures.append(im.size)
        self.players = len(re.findall(r'<img[^>]*id="_anim_img', source))
        firsts = re.findall(r'frames\[0\]\s*=\s*"data:image/png;base64,([^"]+)"', source)
        seconds = re.findall(r'frames\[1\]\s*=\s*"data:image/png;base64,([^"]+)"', source)
        self.frames = []  # (first frame, second frame or None) of each player, as RGB arrays
        for i, first in enumerate(firsts):
            second = seconds[i] if i < len(seconds) else None
            self.frames.append((_decode(first), _decode(second) if second else None))
        self.has_math = 'class="math' in source
        # TeX that is meant to print as text: in code and its outputs (matplotlib labels, r"$\beta$").
        code = re.findall(r"<pre\b.*?</pre>|<code\b.*?</code>", source, re.S)
        self.code_tex = Counter(TEX_TOKEN.findall(html.unescape(re.sub(r"<[^>]+>", "", "".join(code)))))
        self.solutions = len(re.findall(r'<div class="solution\b', source))
        # The page's section headings, in order (h2-h6 and the toctree captions, role="heading").
        article = source[source.index("<article"):source.index("</article>")]
        self.sections = [
            " ".join(html.unescape(re.sub(r"<[^>]+>", "", text.replace('>#</a>', '></a>'))).split())
            for _, text in re.findall(r'<(h[2-6]|p\b[^>]*role="heading")[^>]*>(.*?)</(?:h[2-6]|p)>', article, re.S)]
        self.links_within = len(re.findall(r'<a class="reference internal" href="#', article))


def _decode(data: str) -> np.ndarray:
    from PIL import Image

    raw = base64.b64decode(data.replace("\\n", "").replace("\\\n", ""))
    with Image.open(io.BytesIO(raw)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def book():
    missing = [tool for tool in POPPLER if not shutil.which(tool)]
    if missing:
        skip_or_fail(f"poppler's {', '.join(missing)} missing: `apt-get install poppler-utils`")
    if not PDF.is_file():
        skip_or_fail(f"{PDF} is missing: run `make pdf`")
    if not (HTML / "index.html").is_file():
        skip_or_fail(f"{HTML} has no index.html: run `make book`")
    if PDF.stat().st_mtime < (HTML / "index.html").stat().st_mtime:
        skip_or_fail(f"{PDF} is older than the HTML book in {HTML}: run `make pdf` again")
    return [Doc(name) for name in toc_pages(TOC)]


@pytest.fixture(scope="module")
def pages(book) -> list[str]:
    """The text of each page (pdftotext -layout), one string per page."""
    text = _run("pdftotext", "-layout", str(PDF), "-").split("\f")
    return text[:-1] if text and not text[-1].strip() else text


@pytest.fixture(scope="module")
def ranges(book, pages) -> dict[str, range]:
    """Page numbers (1-based) of each toc page, from the page footers (title, then number)."""
    out: dict[str, list[int]] = {}
    titles = {doc.title: doc.name for doc in book}
    for number, text in enumerate(pages, start=1):
        lines = [line for line in text.splitlines() if line.strip()]
        footer = re.match(r"^\s*(.*\S)\s{2,}(\d+)\s*$", lines[-1]) if lines else None
        assert footer, f"page {number}: no footer (title and page number): {lines[-1:]}"
        assert int(footer.group(2)) == number, f"page {number} is numbered {footer.group(2)}"
        assert footer.group(1) in titles, f"page {number}: footer title {footer.group(1)!r} is no toc page"
        out.setdefault(titles[footer.group(1)], []).append(number)
    return {name: range(nums[0], nums[-1] + 1) for name, nums in out.items()}


@pytest.fixture(scope="module")
def images(book) -> dict[int, list[tuple[int, int, str]]]:
    """(width, height, colour space) of the images drawn on each page (pdfimages -list)."""
    out: dict[int, list[tuple[int, int, str]]] = {}
    for line in _run("pdfimages", "-list", str(PDF)).splitlines()[2:]:
        f = line.split()
        if f[2] == "image":  # not the soft masks (alpha) chromium adds to PNGs
            out.setdefault(int(f[0]), []).append((int(f[3]), int(f[4]), f[5]))
    return out


def _body(text: str) -> str:
    """A page's text without its header and footer lines."""
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[1:-1])


def test_page_count(book, pages):
    n = int(re.search(r"^Pages:\s+(\d+)", _run("pdfinfo", str(PDF)), re.M).group(1))
    assert n == len(pages)
    assert len(book) <= n <= 40 * len(book), f"{n} pages for {len(book)} toc pages"


def test_pages_follow_the_toc(book, pages, ranges):
    assert list(ranges) == [doc.name for doc in book], "toc pages missing or out of order"
    assert [r.start for r in ranges.values()][1:] == [r.stop for r in ranges.values()][:-1], \
        "a toc page's pages are not contiguous"
    for doc in book:
        first = _body(pages[ranges[doc.name].start - 1])
        assert _squash(doc.title) in _squash(first), f"{doc.name}: its first page lacks {doc.title!r}"
        if doc.name.startswith("chapters/"):
            assert len(ranges[doc.name]) >= 5, f"{doc.name}: {len(ranges[doc.name])} pages only"


def test_no_empty_page(pages, images):
    empty = [i for i, text in enumerate(pages, start=1)
             if len(_body(text).strip()) < 20 and not images.get(i)]
    assert not empty, f"pages with (almost) nothing on them: {empty}"


def test_math_is_typeset(book, pages, ranges):
    for doc in book:
        r = ranges[doc.name]
        text = "\n".join(pages[p - 1] for p in r)
        # TeX in the PDF's text that is not code: math MathJax did not typeset (or that markdown
        # broke before it got there).
        raw = Counter(TEX_TOKEN.findall(text)) - doc.code_tex
        assert not raw, f"{doc.name}: raw TeX in pages {r.start}-{r[-1]}: {dict(raw)} " \
            f"(e.g. {[line.strip()[:90] for line in text.splitlines() if any(t in line for t in raw)][:3]})"
        if doc.has_math:
            fonts = _run("pdffonts", "-f", str(r.start), "-l", str(r[-1]), str(PDF))
            assert re.search(r"\bType 3\b", fonts), \
                f"{doc.name} has math but its pages {r.start}-{r[-1]} embed no MathJax (Type 3) font"


def test_figures_are_in_their_pages(book, ranges, images):
    for doc in book:
        drawn = Counter((w, h) for p in ranges[doc.name] for w, h, _ in images.get(p, []))
        wanted = Counter(doc.figures) + Counter(f[0].shape[1::-1] for f in doc.frames)
        missing = wanted - drawn
        assert not missing, f"{doc.name}: figures (width, height) not in the PDF: {dict(missing)}"
        assert sum(drawn.values()) >= len(doc.figures) + doc.players


def test_players_show_their_first_frame(book, pages, ranges, tmp_path):
    players = [doc for doc in book if doc.players]
    assert [d.name for d in players] == [d.name for d in book if d.name.startswith("chapters/")], \
        "every chapter has a kernel-free player"
    for doc in players:
        assert len(doc.frames) == doc.players, f"{doc.name}: frames of {doc.players} players not found"
        r = ranges[doc.name]
        out = tmp_path / doc.name.replace("/", "_")
        out.mkdir()
        _run("pdfimages", "-png", "-f", str(r.start), "-l", str(r[-1]), str(PDF), str(out / "img"))
        from PIL import Image

        extracted = []
        for png in sorted(out.glob("*.png")):
            with Image.open(png) as im:
                extracted.append(np.asarray(im.convert("RGB"), dtype=np.int16))
        for k, (first, second) in enumerate(doc.frames):
            same = [np.abs(x - first).mean() for x in extracted if x.shape == first.shape]
            assert same and min(same) < 1.0, \
                f"{doc.name}: player {k + 1}'s first frame is not in pages {r.start}-{r[-1]}"
            if second is not None and np.abs(second - first).mean() > 1.0:
                others = [np.abs(x - second).mean() for x in extracted if x.shape == second.shape]
                assert min(others) > 1.0, f"{doc.name}: player {k + 1} shows its second frame"
        text = "\n".join(pages[p - 1] for p in r)
        controls = re.findall(r"[\u25b6\u25c0]|\bOnce\b\s+\bLoop\b|\bLoop\b\s+\bReflect\b", text)
        assert not controls, f"{doc.name}: player controls printed: {controls[:5]}"


def _palette_pixels(png: Path) -> int:
    """Pixels of a warm Okabe-Ito colour, pure or blended with white (the figures' translucent
    fills): within 10 levels of the segment from white to the colour, at least 15% of the way."""
    from PIL import Image

    with Image.open(png) as im:
        px = np.asarray(im.convert("RGB"), dtype=np.float32).reshape(-1, 3) - 255.0
    hits = 0
    for colour in WARM_PALETTE - 255.0:
        t = np.clip(px @ colour / (colour @ colour), 0.0, 1.0)
        off = px - t[:, None] * colour.astype(np.float32)
        hits += int((((off * off).sum(axis=1) < 100.0) & (t >= 0.15)).sum())
    return hits


def test_figure_pages_are_colourful(book, ranges, images, tmp_path):
    # Pages with a colour image of some size (chromium's grey bitmaps of box shadows do not count),
    # and for contrast the first page of every toc entry.
    with_figures = {p for p, imgs in images.items()
                    if any(w >= 100 and h >= 100 and space != "gray" for w, h, space in imgs)}
    assert with_figures, "no page with a figure"
    colourful = set()
    for number in sorted(with_figures | {r.start for r in ranges.values()}):
        out = tmp_path / f"p{number}"
        _run("pdftoppm", "-r", "30", "-png", "-singlefile", "-f", str(number), "-l", str(number),
             str(PDF), str(out))
        if _palette_pixels(out.with_suffix(".png")) >= 30:
            colourful.add(number)
    grey = sorted(with_figures - colourful)
    assert not grey, f"pages with figures but no Okabe-Ito colour at 30 dpi: {grey}"
    assert colourful != with_figures | {r.start for r in ranges.values()}, \
        "every page looked at is 'colourful': the check does not discriminate"
    for doc in book:
        if doc.figures or doc.players:
            assert colourful & set(ranges[doc.name]), f"{doc.name}: no colourful page"


def test_solutions_are_printed(book, pages, ranges):
    for doc in book:
        text = "\n".join(pages[p - 1] for p in ranges[doc.name])
        printed = len(re.findall(r"\bSolution\s+to\s+Exercise\b", text))
        assert printed == doc.solutions, \
            f"{doc.name}: {doc.solutions} solutions in the HTML, {printed} printed"
    assert sum(doc.solutions for doc in book) > 0


def test_printed_offline(book):
    report_file = PDF.with_suffix(".json")
    assert report_file.is_file(), f"{report_file} (tools/pdf.py's report) is missing"
    report = json.loads(report_file.read_text(encoding="utf-8"))
    assert report["pdf_bytes"] == PDF.stat().st_size, f"{report_file} is not the report of {PDF}"
    assert report["remote_requests"] == [], "requests to other hosts while printing"
    assert report["local_requests"] > len(book)
    data = PDF.read_bytes()
    assert b"127.0.0.1" not in data, "a link or text points at the local server that printed the book"


def _outline_tree(reader, items) -> list[tuple[str, int, list]]:
    """pypdf's nested outline as (title, 0-based page, children)."""
    out = []
    for k, item in enumerate(items):
        if isinstance(item, list):
            continue
        children = items[k + 1] if k + 1 < len(items) and isinstance(items[k + 1], list) else []
        out.append((str(item.title), reader.get_destination_page_number(item),
                    _outline_tree(reader, children)))
    return out


def _flatten(tree) -> list[tuple[str, int]]:
    return [x for title, page, children in tree for x in [(title, page), *_flatten(children)]]


@pytest.fixture(scope="module")
def reader(book):
    from pypdf import PdfReader

    return PdfReader(PDF)


def test_outline_has_every_page_and_section(book, ranges, reader):
    tree = _outline_tree(reader, reader.outline)
    assert [title for title, _, _ in tree] == [doc.title for doc in book], \
        "the outline's top entries are not the toc pages' titles, in order"
    for doc, (title, page, children) in zip(book, tree):
        r = ranges[doc.name]
        assert page + 1 == r.start, f"{doc.name}: its outline entry is on page {page + 1}, not {r.start}"
        sections = _flatten(children)
        assert [t for t, _ in sections] == doc.sections, \
            f"{doc.name}: the outline under {title!r} is not the page's section headings"
        pages = [p + 1 for _, p in sections]
        assert pages == sorted(pages) and all(p in r for p in pages), \
            f"{doc.name}: section entries out of order or outside pages {r.start}-{r[-1]}: {pages}"
    chapters = [doc for doc in book if doc.name.startswith("chapters/")]
    assert all(len(doc.sections) >= 5 for doc in chapters), "a chapter with fewer than 5 sections?"


def test_links_resolve_within_the_pdf(book, ranges, reader):
    from urllib.parse import urlsplit

    from pypdf.generic import ArrayObject

    owner = {p: doc.name for doc in book for p in ranges[doc.name]}
    glossary = next(doc.name for doc in book if doc.name == "glossary")
    within: Counter = Counter()
    to_glossary: Counter = Counter()
    for number, page in enumerate(reader.pages, start=1):
        for annot in page.get("/Annots", []) or []:
            annot = annot.get_object()
            if annot.get("/Subtype") != "/Link":
                continue
            where = f"page {number} ({owner[number]})"
            if "/Dest" in annot:
                dest = annot["/Dest"]
                assert isinstance(dest, ArrayObject), f"{where}: a link to the name {dest!r}"
                target = reader.get_page_number(dest[0].get_object()) + 1
                assert target >= 1, f"{where}: a link to a page that is not in the PDF"
                if owner[target] == owner[number]:
                    within[owner[number]] += 1
                if owner[target] == glossary:
                    to_glossary[owner[number]] += 1
            else:
                action = annot["/A"].get_object()
                assert action.get("/S") == "/URI", f"{where}: a link of kind {action.get('/S')}"
                url = urlsplit(str(action["/URI"]))
                assert url.scheme in ("http", "https", "mailto"), f"{where}: a link to {url.geturl()}"
                assert url.hostname not in ("127.0.0.1", "book-page.invalid"), \
                    f"{where}: a link to {url.geturl()} (the printing server, or an unresolved book link)"
    for doc in book:
        # Every link within the page's content (equations, figures, propositions, sections) is a
        # link of the PDF (a link that wraps is two), plus the printed contents list's own links.
        assert within[doc.name] >= doc.links_within, \
            f"{doc.name}: {within[doc.name]} links within its pages; its HTML has {doc.links_within}"
        if doc.name.startswith("chapters/"):
            assert to_glossary[doc.name] > 0, f"{doc.name}: no link lands in the glossary's pages"
