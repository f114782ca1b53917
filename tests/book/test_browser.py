"""The built book in a real, offline browser (Playwright driving Debian's chromium).

Every page of `_build/html` is served from 127.0.0.1 and opened in headless chromium. A page
passes when
- it asks for nothing on another host (such requests are blocked and recorded: the book must
  work with no network, so a CDN script, style or font is a failure),
- the console shows no error and no script throws,
- its math is typeset by the vendored MathJax (``mjx-container`` elements, no TeX errors),
- on chapter pages, every image has loaded, and each kernel-free player (matplotlib's
  ``to_jshtml``) shows another frame when its slider is moved or its next-frame button is pressed,
- pages with embedded ipywidgets state render the widgets.

Full-page screenshots go to `_build/screenshots/` for a human to look at.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from conftest import BUILD_HTML, LOCAL_HOSTS, SCREENSHOTS, book_pages, skip_or_fail

PAGES = [p.relative_to(BUILD_HTML).as_posix() for p in book_pages()]


# How long a page may take to go quiet (no request for 500 ms). A page settles in about 5 s on an
# idle machine; the CI machine has two cores shared with the rest of the suite, so the limit is
# generous, and a page that does not settle says which requests were still open.
IDLE_TIMEOUT_MS = 120_000


def idle(page, visit: "PageVisit | None" = None) -> None:
    """Wait until the page has had no network activity for 500 ms; on time-out say what was open."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_load_state("networkidle", timeout=IDLE_TIMEOUT_MS)
    except PlaywrightTimeout:
        open_requests = sorted(set(visit.pending.values()))[:20] if visit is not None else []
        if visit is not None and not open_requests:
            # Every request the page made has finished (the visit counts them): Playwright missed
            # the quiet moment (seen once in CI under load, with nothing open). The page is settled.
            return
        raise AssertionError(f"{page.url}: the network did not go quiet within "
                             f"{IDLE_TIMEOUT_MS / 1000:.0f} s; requests still open: "
                             f"{open_requests}") from None


class PageVisit:
    """One page opened in a fresh context, with everything that went wrong recorded."""

    def __init__(self, browser, url: str):
        self.remote: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.failed: list[str] = []
        self.loaded: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900},
                                           service_workers="block")
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        self.page.on("requestfailed", self._request_failed)
        self.page.on("requestfinished", lambda request: self.loaded.append(request.url))
        self.pending: dict[int, str] = {}
        self.page.on("request", lambda request: self.pending.__setitem__(id(request), request.url))
        self.page.on("requestfinished", lambda request: self.pending.pop(id(request), None))
        self.page.on("requestfailed", lambda request: self.pending.pop(id(request), None))
        self.page.goto(url, wait_until="load", timeout=IDLE_TIMEOUT_MS)
        idle(self.page, self)


    def _route(self, route):
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about") or parts.hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.remote.append(url)
            route.abort("blockedbyclient")

    def _console(self, msg):
        if msg.type == "error":
            loc = msg.location or {}
            self.console_errors.append(f"{msg.text} ({loc.get('url', '')}:{loc.get('lineNumber', '')})")

    def _request_failed(self, request):
        if urlsplit(request.url).hostname in LOCAL_HOSTS:
            self.failed.append(f"{request.url}: {request.failure}")

    def problems(self) -> list[str]:
        out = [f"request to another host (blocked): {u}" for u in self.remote]
        out += [f"console error: {m}" for m in self.console_errors]
        out += [f"page error: {m}" for m in self.page_errors]
        out += [f"failed request: {m}" for m in self.failed]
        return out

    def close(self):
        self.context.close()


def _visit(browser, server, name) -> PageVisit:
    return PageVisit(browser, f"{server}/{name}")


def _has_math(page) -> bool:
    return page.locator(".math, span.math, div.math").count() > 0


def _wait_for_mathjax(page):
    page.wait_for_function(
        "() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=IDLE_TIMEOUT_MS)
    page.evaluate("() => MathJax.startup.promise")


def _screenshot(page, name: str):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    out = SCREENSHOTS / (name.replace("/", "__").removesuffix(".html") + ".png")
    page.screenshot(path=str(out), full_page=True)


def test_pages_were_found(build_html):
    assert PAGES, f"no pages under {build_html}"
    assert "index.html" in PAGES


@pytest.mark.parametrize("name", PAGES or ["<no build>"])
def test_page_works_offline(browser, server, name):
    if name == "<no build>":
        skip_or_fail("`_build/html` is missing: run `make book` first")
    visit = _visit(browser, server, name)
    try:
        page = visit.page
        if _has_math(page):
            _wait_for_mathjax(page)
            n_math = page.locator("div.math, span.math").count()
            n_typeset = page.locator("mjx-container").count()
            assert n_typeset >= n_math, \
                f"{name}: {n_math} math elements but only {n_typeset} typeset by MathJax"
            errors = page.locator("mjx-merror").all_inner_texts()
            assert not errors, f"{name}: TeX errors {errors}"
            idle(page, visit)
            fonts = [u for u in visit.loaded if "/_static/mathjax/output/chtml/fonts/" in u]
            assert fonts, f"{name}: MathJax typeset without loading its fonts from _static"
        if page.locator('script[type="application/vnd.jupyter.widget-state+json"]').count():
            # ipywidgets rendered from the embedded state, their $...$ labels typeset.
            page.wait_for_selector(".jupyter-widgets", timeout=IDLE_TIMEOUT_MS)
            idle(page, visit)
            if page.evaluate("() => !!(window.MathJax && MathJax.startup)"):
                _wait_for_mathjax(page)
                page.wait_for_timeout(200)
            raw = [t for t in page.locator(".jupyter-widgets .widget-label").all_inner_texts()
                   if re.search(r"\$[^$]+\$", t)]
            assert not raw, f"{name}: widget labels with untypeset math: {raw}"
        idle(page, visit)
        _screenshot(page, name)
        assert not visit.problems(), f"{name}:\n  " + "\n  ".join(visit.problems())
    finally:
        visit.close()


CHAPTERS = [n for n in PAGES if n.startswith("chapters/")]


@pytest.mark.parametrize("name", CHAPTERS or ["<no chapters>"])
def test_chapter_figures_and_players(browser, server, name):
    if name == "<no chapters>":
        skip_or_fail("no chapter pages in `_build/html/chapters`: run `make book` first")
    visit = _visit(browser, server, name)
    try:
        page = visit.page
        images = page.locator("main img")
        assert images.count() > 0, f"{name}: no figures on a chapter page"
        broken = page.evaluate(
            """() => Array.from(document.querySelectorAll('main img'))
                 .filter(img => img.id.startsWith('_anim_img') ? false
                                : !(img.complete && img.naturalWidth > 0))
                 .map(img => img.currentSrc.slice(0, 120))""")
        assert not broken, f"{name}: images that did not load: {broken}"

        players = page.locator('img[id^="_anim_img"]')
        for i in range(players.count()):
            img_id = players.nth(i).get_attribute("id")
            suffix = img_id.removeprefix("_anim_img")
            img = page.locator(f"#{img_id}")
            slider = page.locator(f'input[type="range"]#_anim_slider{suffix}')
            assert slider.count() == 1, f"{name}: player {img_id} has no slider"
            n_frames = int(slider.get_attribute("max") or page.evaluate(
                "(s) => s.max", slider.element_handle()))
            assert n_frames >= 1, f"{name}: player {img_id} has a single frame"
            first = img.get_attribute("src")
            natural = page.evaluate("(i) => i.naturalWidth", img.element_handle())
            assert first and natural > 0, f"{name}: player {img_id} shows no frame"

            # Drag the slider to the last frame: the shown image must change.
            slider.evaluate(
                """(s) => { s.value = s.max;
                            s.dispatchEvent(new Event('input', {bubbles: true}));
                            s.dispatchEvent(new Event('change', {bubbles: true})); }""")
            last = img.get_attribute("src")
            assert last != first, f"{name}: moving the slider of {img_id} did not change the frame"

            # Back to the first frame, then the next-frame button.
            slider.evaluate(
                """(s) => { s.value = 0; s.dispatchEvent(new Event('input', {bubbles: true})); }""")
            assert img.get_attribute("src") == first
            page.locator(f'button[onclick="anim{suffix}.next_frame()"]').click()
            assert img.get_attribute("src") != first, \
                f"{name}: the next-frame button of {img_id} did not change the frame"
            assert slider.input_value() == "1"
        assert not visit.problems(), f"{name}:\n  " + "\n  ".join(visit.problems())
    finally:
        visit.close()

