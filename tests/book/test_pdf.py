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
