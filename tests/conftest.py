"""Shared pytest set-up: the two halves of the suite, where the built book lives, and how a missing
prerequisite is reported.

The suite has two folders, each with its marker (registered in pytest.ini), set here by folder:
tests/unit/ (``unit``: the fast tests of bnlib, no book build; `make test-unit` runs them with
bnlib's doctests) and tests/book/ (``book``: the checks of the book). `pytest -m unit` and
`pytest -m book` split tests/ in two; a test file elsewhere under tests/ is refused.

The fixtures and helpers below serve tests/book/ only. They stay in this one conftest.py rather than
a tests/book/conftest.py: two conftest.py files are both the module ``conftest``, which breaks the
book tests' ``from conftest import ...`` and the doctest collection of conftest.py
(``--doctest-modules``: "import file mismatch").

The build checks (test_book.py) and the browser test (test_browser.py) need `make book` to have
run, and the browser test needs Debian's chromium. Locally a missing prerequisite skips those tests
with a message that says what to run; in CI (environment variable ``CI`` set, as `.ci/run` does)
it fails them, so that a broken set-up can never pass as "all skipped".
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
MARKERS = ("unit", "book")  # the folders of tests/, each its own marker
BUILD_HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"

# tools/offline_site.py (page order, local server, chromium flags) is shared with tools/pdf.py.
sys.path.insert(0, str(ROOT / "tools"))
from offline_site import CHROMIUM, CHROMIUM_ARGS, LOCAL_HOSTS, serve, toc_pages  # noqa: E402,F401


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test by its folder: tests/unit -> ``unit``, tests/book -> ``book``.

    pytest calls this with every collected item (bnlib's doctests and nbval's chapters too); only
    the items under tests/ are marked.
    """
    stray = set()
    for item in items:
        path = Path(item.path).resolve()
        if TESTS not in path.parents:
            continue
        folder = path.relative_to(TESTS).parts[0]
        if folder in MARKERS:
            item.add_marker(getattr(pytest.mark, folder))
        else:
            stray.add(path.relative_to(ROOT).as_posix())
    if stray:
        raise pytest.UsageError(
            f"tests outside tests/unit/ and tests/book/ (each folder is a marker): {sorted(stray)}"
        )


def in_ci() -> bool:
    """True when running under CI (``CI`` set to anything but empty/0/false)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> None:
    """Skip the calling test locally, fail it in CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def book_pages() -> list[Path]:
    """Every HTML page of the built book (not the copied assets or the page sources)."""
    if not BUILD_HTML.is_dir():
        return []
    skip_dirs = {"_static", "_sources", "_images", "_downloads", ".doctrees", "jupyter_execute"}
    pages = []
    for path in BUILD_HTML.rglob("*.html"):
        folders = path.relative_to(BUILD_HTML).parts[:-1]
        if not skip_dirs.intersection(folders) and not any(f.startswith(".") for f in folders):
            pages.append(path)
    return sorted(pages)


@pytest.fixture(scope="session")
def build_html() -> Path:
    """The built book, `_build/html`; skips (locally) or fails (CI) when it is missing."""
    if not (BUILD_HTML / "index.html").is_file():
        skip_or_fail(f"{BUILD_HTML} has no index.html: run `make book` first")
    return BUILD_HTML


@pytest.fixture(scope="module")
def server(build_html: Path):
    """`_build/html` over HTTP on 127.0.0.1, on a free port, in a background thread."""
    with serve(build_html) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        skip_or_fail(f"{CHROMIUM} is missing: `apt-get install chromium` (or set CHROMIUM=...)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is pinned in requirements.txt
        skip_or_fail("the playwright package is not installed: run `make book`")
    with sync_playwright() as pw:
        # Never `playwright install`: its download is unavailable here; use the system chromium.
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# --- nbval on another CPU's kernels, and the glued numbers it re-computes ------------------------
# `make test` re-executes the chapters the build executed (nbval on _build/jupyter_execute) with
# BNBOOK_NBVAL_ISA=baseline: nbval's kernels then run ATen's, oneDNN's, MKL's and numba's baseline
# kernels (tools/portable.py, ISAS), while the build ran this CPU's best. So every assert, every
# `# NBVAL_CHECK_OUTPUT` output and (below) every glued number of the text is tried on two CPU
# families in every run, at no extra cost.
NBVAL_ISA = os.environ.get("BNBOOK_NBVAL_ISA", "")


def pytest_configure(config: pytest.Config) -> None:
    if not NBVAL_ISA or not config.pluginmanager.hasplugin("nbval"):
        return
    import nbval.kernel
    from portable import isa_env

    env = isa_env(NBVAL_ISA)  # a ValueError names the ISAs for an unknown one
    start = nbval.kernel.start_new_kernel

    def start_under_isa(*args, **kwargs):  # jupyter_client passes env to the kernel's process
        return start(*args, env=env, **kwargs)

    nbval.kernel.start_new_kernel = start_under_isa


def glued_numbers(outputs) -> dict[str, str]:
    """The numbers a cell glued into the text (myst-nb's glue outputs), {name: text}.

    (tests/book/test_portable.py checks it; no doctest here: tests/ holds tests only in unit/ and book/.)
    """
    from portable import glued_text

    return {output["metadata"]["scrapbook"]["name"]: glued_text(output) for output in outputs or []
            if "name" in ((output.get("metadata") or {}).get("scrapbook") or {})}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """An nbval cell fails when a number it glues for the text differs from the build's."""
    result = yield
    reference, rerun = getattr(item, "cell", None), getattr(item, "test_outputs", None)
    if reference is not None and rerun is not None:
        before, now = glued_numbers(reference.get("outputs")), glued_numbers(rerun)
        changed = {k: (v, now.get(k)) for k, v in before.items() if now.get(k) != v}
        if changed:
            where = f" under the {NBVAL_ISA} kernels" if NBVAL_ISA else ""
            raise AssertionError(
                f"{len(changed)} number(s) of the text differ from the build when re-run{where} "
                "(name: build, now): " + "; ".join(f"{k}: {b!r}, {n!r}" for k, (b, n) in changed.items())
                + ". A number the text quotes must be the same on every CPU (execution.md).")
    return result
