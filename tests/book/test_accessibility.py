"""Accessibility of the built book, in the same offline chromium as test_browser.py.

- axe-core (npm, injected into each page; the book never ships it) finds no serious or critical
  violation inside the page's article, which is what the book writes. Violations in the theme's
  chrome (navigation bar, sidebars, search and theme buttons) are recorded in
  ``_build/a11y/theme-violations.json`` for the record, not failed: they are pydata-sphinx-theme's.
- Headings go down one level at a time, with one h1 per page (checked on the HTML).
- Dark mode: with the theme switched to dark, every figure and player frame is still readable:
  its text and lines contrast with its own background by at least WCAG's 4.5:1, measured on the
  pixels the browser shows; widget labels and text outputs likewise, from computed styles.
  Screenshots go to ``_build/screenshots/dark__*.png``.
"""

from __future__ import annotations

import io
import json
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, SCREENSHOTS, skip_or_fail
from test_browser import (CHAPTERS, IDLE_TIMEOUT_MS, PAGES, PageVisit, _has_math,
                          _wait_for_mathjax, idle)

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
REPORT = ROOT / "_build" / "a11y" / "theme-violations.json"
SERIOUS = {"serious", "critical"}
ARTICLE = "article.bd-article"


def _settle(page, visit=None) -> None:
    """Wait for what renders after load: MathJax and the embedded widgets."""
    if _has_math(page):
        _wait_for_mathjax(page)
    if page.locator('script[type="application/vnd.jupyter.widget-state+json"]').count():
        page.wait_for_selector(".jupyter-widgets", timeout=IDLE_TIMEOUT_MS)
    idle(page, visit)


@pytest.fixture(scope="module")
def theme_report():
    found: dict[str, list] = {}
    yield found
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    # Merge: with pytest-xdist each worker has its own fixture and writes its pages.
    earlier = json.loads(REPORT.read_text(encoding="utf8")) if REPORT.is_file() else {}
    REPORT.write_text(json.dumps({**earlier, **found}, indent=1, sort_keys=True), encoding="utf8")


@pytest.mark.parametrize("name", PAGES or ["<no build>"])
def test_axe_finds_no_serious_violation_in_the_content(browser, server, theme_report, name):
    if name == "<no build>":
        skip_or_fail("`_build/html` is missing: run `make book` first")
    if not AXE.is_file():
        skip_or_fail(f"{AXE} is missing: run `make book` (npm ci installs axe-core)")
    visit = PageVisit(browser, f"{server}/{name}")
    try:
        page = visit.page
        _settle(page, visit)
        page.add_script_tag(path=str(AXE))
        violations = page.evaluate(
            """async (article) => {
                 const result = await axe.run(document, {resultTypes: ['violations']});
                 return result.violations.flatMap(v => v.nodes.map(n => ({
                   rule: v.id, impact: n.impact || v.impact, help: v.help,
                   target: n.target.join(' '), html: n.html.slice(0, 160),
                   ours: (() => { const el = document.querySelector(n.target[0]);
                                  return !!(el && el.closest(article)); })(),
                 })));
               }""", ARTICLE)
        serious = [v for v in violations if v["impact"] in SERIOUS]
        ours = [v for v in serious if v["ours"]]
        theme = [v for v in serious if not v["ours"]]
        if theme:
            theme_report[name] = theme
        assert not ours, f"{name}: serious accessibility violations in the content:\n  " + \
            "\n  ".join(f"{v['impact']} {v['rule']} ({v['help']}): {v['target']} {v['html']}"
                        for v in ours)
        assert not visit.problems(), visit.problems()
    finally:
        visit.close()


class Headings(HTMLParser):
    """The h1-h6 levels inside the page's <article>."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0  # nesting inside <article>
        self.levels: list[int] = []

    def handle_starttag(self, tag, attrs):
        if tag == "article" and "bd-article" in (dict(attrs).get("class") or ""):
            self.depth = 1
        elif self.depth and tag == "article":
            self.depth += 1
        elif self.depth and len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            self.levels.append(int(tag[1]))

    def handle_endtag(self, tag):
        if self.depth and tag == "article":
            self.depth -= 1


@pytest.mark.parametrize("name", PAGES or ["<no build>"])
def test_headings_are_in_order(build_html, name):
    if name == "<no build>":
        skip_or_fail("`_build/html` is missing: run `make book` first")
    parser = Headings()
    parser.feed((build_html / name).read_text(encoding="utf8"))
    levels = parser.levels
    if name == "genindex.html" or name == "search.html" or not levels:
        return  # Sphinx's generated index/search pages
    assert levels[0] == 1 and levels.count(1) == 1, f"{name}: one h1 first, got {levels}"
    jumps = [(a, b) for a, b in zip(levels, levels[1:]) if b > a + 1]
    assert not jumps, f"{name}: heading levels skip {jumps} in {levels}"


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """WCAG relative luminance of sRGB values in 0..255."""
    c = rgb / 255.0
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return c @ np.array([0.2126, 0.7152, 0.0722])


def _contrast(l1: float, l2: float) -> float:
    hi, lo = max(l1, l2), min(l1, l2)
    return (hi + 0.05) / (lo + 0.05)


def _figure_contrast(png: bytes) -> tuple[float, float]:
    """(contrast of the figure's darkest ink with its own background, background luminance)."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float).reshape(-1, 3)
    lum = _luminance(pixels)
    values, counts = np.unique(np.round(lum, 2), return_counts=True)
    background = float(values[np.argmax(counts)])  # the most common shade
    ink = float(np.percentile(lum, 0.5))  # text, axes and lines: the darkest pixels
    return _contrast(background, ink), background


@pytest.mark.parametrize("name", CHAPTERS or ["<no chapters>"])
def test_figures_readable_in_dark_mode(browser, server, name):
    if name == "<no chapters>":
        skip_or_fail("no chapter pages in `_build/html/chapters`: run `make book` first")
    visit = PageVisit(browser, "about:blank")
    try:
        page = visit.page
        # pydata-sphinx-theme reads the reader's choice from localStorage before it paints.
        page.add_init_script("localStorage.setItem('mode', 'dark'); localStorage.setItem('theme', 'dark');")
        page.goto(f"{server}/{name}", wait_until="load", timeout=IDLE_TIMEOUT_MS)
        _settle(page, visit)
        assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
        body = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        rgb = np.array([float(x) for x in body[body.index("(") + 1:-1].split(",")[:3]])
        assert _luminance(rgb) < 0.1, f"{name}: the page is not dark in dark mode ({body})"

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"dark__{name.replace('/', '__')[:-5]}.png"),
                        full_page=True)
        figures = page.locator(f"{ARTICLE} img")
        assert figures.count() > 0
        poor = []
        for i in range(figures.count()):
            img = figures.nth(i)
            if not img.is_visible():
                continue  # inside a folded solution
            img.scroll_into_view_if_needed()
            ratio, background = _figure_contrast(img.screenshot())
            if ratio < 4.5 or background < 0.4:
                poor.append(f"{img.get_attribute('alt') or img.get_attribute('src')[:60]}: "
                            f"contrast {ratio:.1f}, background luminance {background:.2f}")
        assert not poor, f"{name}: figures hard to read in dark mode:\n  " + "\n  ".join(poor)

        # Widget labels and text outputs: computed colour vs the first opaque background behind.
        low = page.evaluate(
            """(article) => {
                 const rgb = s => s.match(/[\\d.]+/g).map(Number);
                 const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255;
                     return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
                   .reduce((acc, v, i) => acc + v * [0.2126, 0.7152, 0.0722][i], 0);
                 const back = el => { for (; el; el = el.parentElement) {
                     const c = rgb(getComputedStyle(el).backgroundColor);
                     if (c.length < 4 || c[3] > 0.5) return c.slice(0, 3); }
                   return [255, 255, 255]; };
                 const sel = `${article} .widget-label, ${article} .widget-readout, ` +
                             `${article} .cell_output pre, ${article} .cell_output .text_html`;
                 return Array.from(document.querySelectorAll(sel))
                   .filter(el => el.offsetParent !== null && el.textContent.trim())
                   .map(el => { const a = lum(rgb(getComputedStyle(el).color)), b = lum(back(el));
                                return [el.className + ': ' + el.textContent.trim().slice(0, 40),
                                        (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)]; })
                   .filter(([, ratio]) => ratio < 4.5);
               }""", ARTICLE)
        assert not low, f"{name}: text with contrast below 4.5:1 in dark mode: {low}"
        assert not visit.problems(), visit.problems()
    finally:
        visit.close()
