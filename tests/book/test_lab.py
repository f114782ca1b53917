"""The chapters in a real JupyterLab (the one `make lab` starts), driven by Playwright and chromium.

JupyterLab is started on a copy of the chapters (its autosave must never write outputs into the
committed notebooks), with `experiments/` beside them as in the repository. For each chapter:
- every JupyterLab extension of the environment loads (none reports that it failed);
- every markdown cell is rendered by jupyterlab-myst and no rendered cell shows MyST syntax (a
  role such as {term}`...`, a directive fence, a `(label)=` target): the oracle is the rendered
  text in the browser, not the notebook's source;
- the chapter runs top to bottom (Run All), the kernel goes idle, and no cell has an error output;
- every computed number in the text, {eval}`name` (bnlib/book.py), shows its value: jupyterlab-myst
  evaluates the name in the kernel, where the cell before bound it;
- when the chapter opens, every computed number already shows (each markdown cell stores its
  numbers: tools/store_numbers.py); after Run All no number shows as its name (tests/book/test_chapter_outputs.py checks the order
  that a reader running cell by cell needs); a {cite} shows its BibTeX key (jupyterlab-myst 2.7
  reads no bibliography), which names the authors and the year; the keys are printed;
- every live widget (the controls and the image of `bnlib.widgets.live`) redraws when each of its
  controls moves one step: the image changes. The time from the reader's action (key press, option,
  click) to the new image decoded and painted is measured with the page's clock, one step a second
  (a reader's pace: the widget draws the next steps while the reader looks), and printed per
  widget (never asserted: STYLE.md; benchmarks/widgets.py measures the kernel's share, cold).

Chapters 3 and 4 take minutes to run; `BNBOOK_LAB_CHAPTERS=01,02` runs some only (all by default).
Locally the test skips when chromium is missing; in CI (`CI` set) it fails instead (conftest.py).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, skip_or_fail

CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
ONLY = [c.strip() for c in os.environ.get("BNBOOK_LAB_CHAPTERS", "").split(",") if c.strip()]
SELECTED = [c for c in CHAPTERS if not ONLY or any(c.name.startswith(o) for o in ONLY)]
# A reader steps a control, then looks at the picture: the widget draws the next steps meanwhile
# (bnlib.widgets.live's prefetch). One second between steps is that pace.
READER_PAUSE_S = 1.0
RUN_TIMEOUT_S = 1200  # one chapter, Run All to idle (chapter 3 takes minutes on 2 cores)
# MyST as the reader would see it raw: a role, a directive fence, a target line.
RAW_MYST = re.compile(r"\{[a-z]+(?::[a-z-]+)?\}`|(?:```|:::)\s*\{[a-z]|^\s*\([\w.:-]+\)=\s*$", re.M)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not CHROMIUM.is_file():
        skip_or_fail(f"{CHROMIUM} is missing: `apt-get install chromium` (or set CHROMIUM=...)")
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "chapters", root / "chapters")
    (root / "experiments").symlink_to(ROOT / "experiments")
    # Every cell in the page (no windowing), so that every rendered markdown cell can be read.
    settings = root / ".settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    port = _free_port()
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           "--ServerApp.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
           "--expose-app-in-browser", f"--ServerApp.root_dir={root}", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
               JUPYTER_CONFIG_DIR=str(root / ".jupyter"), JUPYTERLAB_SETTINGS_DIR=str(root / ".settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(root / ".workspaces"))
    log = open(root / "lab.log", "w")
    server = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    import urllib.request

    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"JupyterLab did not start: {(root / 'lab.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield url
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is pinned in requirements.txt
        skip_or_fail("the playwright package is not installed: run `make venv`")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


# The notebook panel's model, through the app JupyterLab exposes (--expose-app-in-browser).
CELLS_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = [];
  for (const cell of panel.content.widgets) {
    const m = cell.model;
    const outputs = m.type === 'code' ? m.outputs.toJSON() : [];
    cells.push({type: m.type, count: m.type === 'code' ? m.executionCount : null,
                errors: outputs.filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue)});
  }
  return {cells, kernel: panel.sessionContext.session?.kernel?.status};
}"""


def _open(page, lab: str, chapter: Path) -> None:
    page.goto(f"{lab}/lab/tree/chapters/{chapter.name}?reset", wait_until="load")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel?.status === 'idle'",
                           timeout=180_000)
    # A "Select Kernel" dialog, if any: keep the notebook's kernel.
    dialog = page.locator(".jp-Dialog button.jp-mod-accept")
    if dialog.count():
        dialog.first.click()


def _run_all(page) -> dict:
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(
        """() => { const p = window.jupyterapp.shell.currentWidget;
                   const busy = p.sessionContext.session?.kernel?.status !== 'idle';
                   const pending = p.content.widgets.some(c => c.model.type === 'code'
                       && (c.model.executionCount === null || c.model.executionState === 'running'
                           || c.promptNode?.textContent?.includes('*')));
                   return !busy && !pending; }""",
        timeout=RUN_TIMEOUT_S * 1000, polling=2000)
    return page.evaluate(CELLS_JS)


def _raw_myst(page) -> list[str]:
    # typeset math is left out: its rendered text ("u(x)=" on a line of its own) is not MyST
    texts = page.evaluate("""() => {
        const math = Array.from(document.querySelectorAll(
            '.jp-MarkdownCell .katex, .jp-MarkdownCell mjx-container, .jp-MarkdownCell .MathJax, .jp-MarkdownCell math'));
        const shown = math.map(e => e.style.display);
        math.forEach(e => { e.style.display = 'none'; });
        const out = Array.from(document.querySelectorAll('.jp-MarkdownCell'))
            .map(c => (c.querySelector('.jp-RenderedMarkdown, .jp-MarkdownOutput, .myst') || c).innerText);
        math.forEach((e, i) => { e.style.display = shown[i]; });
        return out;
    }""")
    found = []
    for i, text in enumerate(texts):
        for m in RAW_MYST.finditer(text):
            found.append(f"markdown cell {i}: {text[max(0, m.start() - 30):m.end() + 30]!r}")
    return found


# In the page: the time from the reader's action (the key press, the option chosen, the click) to
# the new picture decoded and painted (the frame after the image's decode). Measured with the
# page's own clock: Playwright's round trips (a key press is two protocol calls, and waiting for a
# change polls the page) would add tens of milliseconds that the reader does not see.
CLOCK_JS = """(w) => {
  const clock = window.__bnbookClock = {start: null, shown: null};
  for (const type of ['keydown', 'change', 'mousedown']) {
    document.addEventListener(type, () => { if (clock.start === null) clock.start = performance.now(); }, true);
  }
  const box = document.querySelectorAll('.bnbook-live')[w].querySelector('.widget-html');
  let last = box.querySelector('img')?.src;
  new MutationObserver(() => {
    const img = box.querySelector('img');
    if (!img || img.src === last) return;
    last = img.src;
    img.decode().catch(() => {}).then(() => requestAnimationFrame(() => { clock.shown = performance.now(); }));
  }).observe(box, {subtree: true, childList: true, attributes: true});
}"""


def _widgets(page) -> list[dict]:
    """Move every control of every live widget one step; return the redraws and their times."""
    results = []
    interacts = page.locator(".bnbook-live")
    for w in range(interacts.count()):
        box = interacts.nth(w)
        box.scroll_into_view_if_needed()
        image = box.locator(".widget-html img")
        image.first.wait_for(timeout=60_000)
        page.evaluate(CLOCK_JS, w)
        sliders = box.locator(".widget-slider .noUi-handle, .widget-hslider .noUi-handle")
        dropdowns = box.locator(".widget-dropdown select")
        checkboxes = box.locator(".widget-checkbox input[type=checkbox]")
        moves = [("slider", i) for i in range(sliders.count())] + \
                [("dropdown", i) for i in range(dropdowns.count())] + \
                [("checkbox", i) for i in range(checkboxes.count())]
        times, unchanged = [], []
        for kind, i in moves:
            time.sleep(READER_PAUSE_S)  # the reader looks at the picture before the next step
            if kind == "slider":
                handle = sliders.nth(i)
                handle.focus()
            page.evaluate("() => { window.__bnbookClock.start = null; window.__bnbookClock.shown = null; }")
            if kind == "slider":
                # a slider that starts at its end (chapter 5's training step) moves back instead
                at_end = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
                handle.press("ArrowLeft" if at_end else "ArrowRight")
            elif kind == "dropdown":
                select = dropdowns.nth(i)
                options = select.locator("option").all_inner_texts()
                current = select.evaluate("s => s.selectedIndex")
                select.select_option(index=(current + 1) % len(options))
            else:
                checkboxes.nth(i).click()
            try:
                page.wait_for_function("() => window.__bnbookClock.shown !== null && window.__bnbookClock.start !== null",
                                       timeout=60_000, polling="raf")
                times.append(page.evaluate("() => (window.__bnbookClock.shown - window.__bnbookClock.start) / 1000"))
            except Exception:  # noqa: BLE001 - recorded, asserted below
                unchanged.append(f"{kind} {i}")
        results.append({"widget": w, "moves": len(moves), "times": times, "unchanged": unchanged})
    return results


def _names_shown(page, numbers: set[str], timeout_s: float) -> list[str]:
    """The {eval} names the rendered markdown shows instead of their values, after waiting up to
    `timeout_s` for them to go (cells render, and results arrive, asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while True:
        shown = "\n".join(page.evaluate("() => Array.from(document.querySelectorAll('.jp-MarkdownCell'))"
                                        ".map(c => c.innerText)"))
        names = sorted(n for n in numbers if re.search(rf"\b{re.escape(n)}\b", shown))
        if not names or time.monotonic() > deadline:
            return names
        time.sleep(2)


@pytest.mark.parametrize("chapter", SELECTED, ids=[c.stem for c in SELECTED])
def test_chapter_in_jupyterlab(chapter, lab, browser, capsys):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # an extension that fails to load (jupytext 1.19.5's, built for JupyterLab 4.6, did in 4.5)
    broken: list[str] = []
    page.on("console", lambda m: broken.append(m.text[:300]) if "Failed to create module" in m.text
            or (m.type == "error" and "/lab/extensions/" in m.text) else None)
    try:
        _open(page, lab, chapter)
        assert not broken, f"JupyterLab extensions that did not load: {broken[:3]}"
        # Before anything runs, the text already shows its numbers: each markdown cell stores them
        # (tools/store_numbers.py), as jupyterlab-myst does after it evaluates them.
        source = "\n".join("".join(c["source"]) for c in __import__("json").loads(chapter.read_text())["cells"]
                           if c["cell_type"] == "markdown")
        numbers = set(re.findall(r"\{eval\}`([^`]+)`", source))
        names = _names_shown(page, numbers, timeout_s=60)
        assert not names, f"{chapter.name}: numbers shown as their names when the chapter opens: {names[:8]}"
        # Forget the stored numbers, so that those shown after Run All are the kernel's.
        page.evaluate("""() => { for (const cell of window.jupyterapp.shell.currentWidget.content.widgets) {
                                   if (cell.model.type === 'markdown') cell.model.deleteMetadata('user_expressions'); } }""")
        state = _run_all(page)
        code = [c for c in state["cells"] if c["type"] == "code"]
        assert all(c["count"] is not None for c in code), f"{chapter.name}: cells that did not run"
        failed = [e for c in code for e in c["errors"]]
        assert not failed, f"{chapter.name}: cells raised {failed[:3]}"
        raw = _raw_myst(page)
        assert not raw, f"{chapter.name}: rendered markdown shows MyST syntax: {raw[:5]}"
        # Run All sends every code cell to the kernel first, then the markdown cells' {eval}
        # requests (jupyterlab-myst parses a cell before it asks), so the new numbers arrive after
        # the last code cell, one request per markdown cell.
        unevaluated = _names_shown(page, numbers, timeout_s=120)
        assert not unevaluated, f"{chapter.name}: numbers shown as their names after Run All: {unevaluated[:8]}"
        results = page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets
            .filter(c => c.model.type === 'markdown').flatMap(c => c.model.getMetadata('user_expressions') || [])
            .map(e => [e.expression, e.result.status])""")
        assert {e for e, _ in results} == numbers and all(status == "ok" for _, status in results), \
            f"{chapter.name}: the kernel did not evaluate {sorted(numbers - {e for e, st in results if st == 'ok'})[:8]}"
        # A citation, which jupyterlab-myst 2.7 cannot resolve (it reads no bibliography), shows
        # as its BibTeX key: author, year and a word of the title (ioffe2015batch). Reported.
        cited = {k.strip() for ks in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", source) for k in ks.split(",")}
        widgets = _widgets(page)
        assert widgets, f"{chapter.name}: no live widget found"
        for w in widgets:
            assert w["moves"] > 0 and not w["unchanged"], \
                f"{chapter.name}: widget {w['widget']}: the figure did not change after {w['unchanged']}"
        with capsys.disabled():
            for w in widgets:
                ms = [t * 1e3 for t in w["times"]]
                print(f"\n  {chapter.stem} widget {w['widget']}: {len(ms)} moves, key press to new picture "
                      f"median {statistics.median(ms):.0f} ms, max {max(ms):.0f} ms")
            print(f"  {chapter.stem}: {len(cited)} works cited, shown by key: {', '.join(sorted(cited))}")
    finally:
        context.close()
