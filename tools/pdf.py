"""Print the built HTML book to one PDF, offline: `make pdf` (or `python tools/pdf.py`).

Jupyter Book's own route (`jupyter-book build --builder pdfhtml`) downloads a browser and fails
with no network; a second Sphinx build would also execute every notebook again. This script prints
the pages `make book` already built instead:

1. the page order comes from `_toc.yml` (the root, then each part's chapters and their sections);
2. `--html` (default `_build/html`) is served on 127.0.0.1 (a free port, a background thread);
3. Debian's chromium (`/usr/bin/chromium`, or `$CHROMIUM`) opens each page through Playwright, as
   tests/book/test_browser.py does. Every request to another host is blocked and counted (the book
   works offline, so there should be none). The script waits until MathJax has typeset the math,
   every image has loaded and, on pages with embedded ipywidgets state, the widgets have rendered;
4. the page is printed with the theme's print CSS (sphinx-book-theme hides the sidebars, header
   and footer navigation) plus PRINT_CSS below: A4 at 80 %, the book's title on top, the page's
   title and the page number within the whole PDF at the bottom (CSS margin boxes, PAGE_CSS);
5. the root page is printed again with each toc entry's first page number in its contents list,
   and pypdf joins the per-page PDFs, in toc order, into `--out`. A report for
   tests/book/test_pdf.py goes next to it (`.json`: page ranges, requests made, seconds).

The outline and the links (pdfunite, used before, kept neither):
- chromium prints each page with its own outline (`outline=True`: one entry per heading); the
  joined PDF's outline has one entry per toc page (its title, at its first page) and under it the
  page's section headings, in order, at their pages (the headings' text taken from the page, since
  chromium's outline loses the space where a heading wraps);
- every link is resolved to an explicit page and position of the joined PDF: a link within a page
  (an equation, a figure, a proposition, a section) from chromium's named destinations of that page,
  a link to another page of the book (a glossary term, another chapter's section) from the named
  destinations of the page it points at (or its first page when the anchor is not there). Links to
  pages that are not in the toc (the index, a source file) stop being links.

What the printed book keeps and drops (PRINT_CSS, PREPARE_JS):
- kept: the text, math, figures, the ipywidgets as rendered from their saved state, and each
  kernel-free player's current image, i.e. its first frame;
- dropped: screen-only controls (the header buttons, launch and download menus, copy buttons,
  "back to top", the players' slider, buttons and loop-mode radios);
- exercise solutions are printed, unfolded (on screen they sit in a folded dropdown; on paper a
  folded dropdown could never be opened, and the PDF is meant to be the whole book). Cells whose
  input is hidden (tag hide-input; none in the chapters today) stay folded: set-up, not content;
- links to other pages of the book become links within the PDF (127.0.0.1:<port> will not exist
  when it is read); links to other sites stay.

Exits non-zero, with a message that says what to do, when the HTML folder (or a page of the toc in
it), chromium, Playwright or pypdf is missing, and writes no PDF when a page asked for another
host, threw an error, or has an image that did not load or a TeX error, and none when a link
within the book cannot be resolved to a page of the PDF.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from offline_site import CHROMIUM, CHROMIUM_ARGS, LOCAL_HOSTS, serve, toc_pages

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HTML = ROOT / "_build" / "html"
DEFAULT_OUT = ROOT / "_build" / "pdf" / "batch-normalization-explained.pdf"
TIMEOUT_MS = 60_000
# Links to another page of the book are printed to this (never fetched) address, then resolved into
# links within the PDF: https://book-page.invalid/<index of the page in the toc>/<anchor>.
PAGE_LINK = "https://book-page.invalid/"

# Screen-only chrome the theme's print CSS leaves visible, and the players' controls.
PRINT_CSS = """
@media print {
  .header-article, .bd-header-article, .article-header-buttons, .dropdown-launch-buttons,
  .dropdown-download-buttons, .btn-fullscreen-button, .theme-switch-button, .search-button,
  .search-button-field, #pst-back-to-top, .copybtn, .toggle-button, .prev-next-area,
  .bd-sidebar-primary, .bd-sidebar-secondary, .bd-header, .bd-footer, .bd-footer-article,
  .bd-footer-content, .sidebar-toggle, .skip-link, a.headerlink,
  .animation .anim-controls, .animation .anim-buttons, .animation .anim-state,
  .animation input[type="range"] { display: none !important; }
  /* A cell whose input is hidden (tag hide-input): its folded input is not
     printed anyway, so drop the "Show code cell source" bar too. */
  div.cell > details.hide:not([open]) { display: none !important; }
  /* Shadows are rasterized into grey bitmaps by chromium's PDF backend: flat boxes instead
     (:not(#id) outranks the theme's own !important shadows on admonitions). */
  :not(#pdf-none), :not(#pdf-none)::before, :not(#pdf-none)::after {
    box-shadow: none !important; text-shadow: none !important; }
  /* The player's current (first) frame, whole and on one page. */
  .animation img { max-width: 100% !important; height: auto !important; }
  /* The theme keeps a code block on one page; keep its cell's frame with it, or the frame is left
     behind as an empty box at the foot of the page. */
  div.cell_input { break-inside: avoid; }
  /* The theme keeps every table on one page, so a long one (the Notation page's) leaves most of the
     page before it empty: let tables run on, one row never split. */
  table { break-inside: auto !important; }
  tr { break-inside: avoid; }
  img, figure, .animation, .cell_output .output.image_png, .jupyter-widgets { break-inside: avoid; }
  .bd-main .bd-content .bd-article-container { max-width: 100% !important; }
  pre { white-space: pre-wrap !important; }
  /* Links that were made inert (other pages of the book) read as text. */
  a.pdf-inert { color: inherit !important; text-decoration: none !important; }
  .pdf-toc-page { float: right; color: #666; }
  .pdf-contents-title { font-size: 1.5em; font-weight: bold; margin: 0.83em 0; }
}
"""

# A4 with the book's title on top, the page's title and the page number of the whole PDF at the
# bottom (CSS margin boxes: chromium's own header/footer templates number each page from 1).
PAGE_CSS = """
@page {
  size: A4;
  margin: 16mm 16mm 16mm 16mm;
  @top-right { content: "Batch Normalization Explained"; font: 8pt sans-serif; color: #777; }
  @bottom-left { content: "%(title)s"; font: 8pt sans-serif; color: #777; }
  @bottom-right { content: counter(page); font: 8pt sans-serif; color: #777; }
}
@page:first { counter-increment: page %(first)d; }
"""

# Unfold the solutions, load every image now, put the page number into the print title, point
# links to other pages of the book at PAGE_LINK (entries of the book's contents get their page
# number) and make links to pages outside the book inert.
PREPARE_JS = """
([title, tocPages, docIndex, pageLink]) => {
  for (const img of document.querySelectorAll('img')) { img.loading = 'eager'; }
  // sphinx-togglebutton: a folded admonition has class toggle-hidden; its button toggles it.
  for (const sol of document.querySelectorAll('.solution')) {
    sol.classList.remove('toggle-hidden');
    for (const hidden of sol.querySelectorAll('.toggle-hidden')) hidden.classList.remove('toggle-hidden');
    for (const d of sol.querySelectorAll('details')) d.open = true;
  }
  for (const d of document.querySelectorAll('details.solution')) d.open = true;
  // The printed contents list's heading is no section of the page: keep it out of the outline.
  for (const h of document.querySelectorAll('#jb-print-toc h2')) {
    const p = document.createElement('p');
    p.className = 'pdf-contents-title';
    p.textContent = h.textContent.trim();
    h.replaceWith(p);
  }
  // sphinx-book-theme prints the title without the chapter number: use the page's own title.
  const printTitle = document.querySelector('#jb-print-docs-body > h1');
  if (printTitle && title) printTitle.textContent = title;
  // No emoji font on a bare Debian: the execution table's status marks as plain check marks.
  const marks = {'\u2705': '\u2713', '\u274c': '\u2717', '\u2714\ufe0f': '\u2714'};
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (/[\u2705\u274c]|\u2714\ufe0f/.test(node.data)) {
      node.data = node.data.replace(/\u2705|\u274c|\u2714\ufe0f/g, (m) => marks[m]);
    }
  }
  let inert = 0;
  const here = location.origin + location.pathname;
  for (const a of document.querySelectorAll('a[href]')) {
    const url = new URL(a.getAttribute('href'), location.href);
    if (url.origin !== location.origin) continue;          // another site: a real link
    if (url.origin + url.pathname === here && url.hash) {  // this page: keep the anchor
      a.setAttribute('href', url.hash);
      continue;
    }
    const page = tocPages[url.pathname];
    if (url.pathname in docIndex) {                        // another page of the book: a PDF link
      a.setAttribute('href', pageLink + docIndex[url.pathname] + '/' + url.hash.slice(1));
    } else {                                               // not printed (index, sources): text
      a.removeAttribute('href');
      a.classList.add('pdf-inert');
      inert += 1;
    }
    if (page && !url.hash && a.closest('.toctree-wrapper')) {
      const span = document.createElement('span');
      span.className = 'pdf-toc-page';
      span.textContent = String(page);
      a.parentElement.appendChild(span);
    }
  }
  return inert;
}
"""
# The headings chromium puts in a page's outline (the visible ones, in order), as the page writes them.
HEADINGS_JS = """
() => Array.from(document.querySelectorAll('h1, h2, h3, h4, h5, h6, [role="heading"]'))
  .filter(h => h.getClientRects().length > 0)
  .map(h => { const c = h.cloneNode(true);
              for (const a of c.querySelectorAll('a.headerlink')) a.remove();
              return c.textContent.replace(/\\s+/g, ' ').trim(); })
"""
SCALE = 0.8  # the screen layout's 16px text is 9.6pt on paper: closer to a printed book


def die(message: str) -> None:
    print(f"tools/pdf.py: {message}", file=sys.stderr)
    raise SystemExit(1)


def _quiet(page) -> None:
    """Wait for the network to go quiet; a page that keeps a request open is printed anyway, once
    its images and fonts have loaded (checked below), and the slow request is reported."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_load_state("networkidle", timeout=TIMEOUT_MS)
    except PlaywrightTimeout:
        print(f"tools/pdf.py: {page.url}: the network did not go quiet in {TIMEOUT_MS // 1000} s; "
              "printing once its images and fonts have loaded", file=sys.stderr)


class Printer:
    """One chromium, one context that blocks (and counts) every request to another host."""

    def __init__(self, browser):
        self.remote: list[str] = []
        self.local = 0
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1100, "height": 1400},
                                           service_workers="block")
        self.context.route("**/*", self._route)

    def _route(self, route):
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about") or parts.hostname in LOCAL_HOSTS:
            self.local += 1
            route.continue_()
        else:
            self.remote.append(url)
            route.abort("blockedbyclient")

    def print_page(self, url: str, out: Path, first_page: int, toc_pages: dict[str, int],
                   doc_index: dict[str, int]) -> tuple[str, list[str]]:
        """Print one page to `out`, numbered from `first_page`; return its title and headings.

        `doc_index` maps the path of each page of the toc (``/chapters/x.html``) to its index.
        """
        page = self.context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"{url}: {exc}"))
        try:
            page.goto(url, wait_until="load", timeout=TIMEOUT_MS)
            _quiet(page)
            if page.locator('script[type="application/vnd.jupyter.widget-state+json"]').count():
                page.wait_for_selector(".jupyter-widgets", timeout=TIMEOUT_MS)
                _quiet(page)
            title = page.title().split("\u2014")[0].strip() or url
            page.evaluate(PREPARE_JS, [title, toc_pages, doc_index, PAGE_LINK])
            page.add_style_tag(content=PRINT_CSS)
            page.add_style_tag(content=PAGE_CSS % {"title": _css_string(title), "first": first_page})
            self._wait_for_math(page)
            page.wait_for_function(
                """() => Array.from(document.images).every(i => i.complete)
                      && document.fonts.status === 'loaded'""", timeout=TIMEOUT_MS)
            bad = page.evaluate(
                """() => Array.from(document.images)
                     .filter(i => i.getAttribute('src') && i.naturalWidth === 0)
                     .map(i => i.getAttribute('src').slice(0, 80))""")
            if bad:
                self.errors.append(f"{url}: images that did not load: {bad}")
            errors = page.locator("mjx-merror").all_inner_texts()
            if errors:
                self.errors.append(f"{url}: TeX errors {errors}")
            page.emulate_media(media="print")
            headings = page.evaluate(HEADINGS_JS)
            page.pdf(path=str(out), prefer_css_page_size=True, print_background=True,
                     scale=SCALE, tagged=True, outline=True)
            return title, headings
        finally:
            page.close()

    @staticmethod
    def _wait_for_math(page) -> None:
        if page.evaluate("() => !!(window.MathJax && MathJax.startup)") or \
                page.locator("div.math, span.math").count():
            page.wait_for_function(
                "() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                timeout=TIMEOUT_MS)
            page.evaluate("() => MathJax.startup.promise")
            page.wait_for_load_state("networkidle", timeout=TIMEOUT_MS)


def _css_string(text: str) -> str:
    """`text` inside a CSS double-quoted string."""
    return "".join(c if c.isalnum() or c in " .,:;-()'" else f"\\{ord(c):x} " for c in text)


def page_count(pdf: Path) -> int:
    from pypdf import PdfReader

    return len(PdfReader(pdf).pages)


def _squash(text: str) -> str:
    return "".join(text.split())


def _outline(reader, headings: list[str]) -> list[tuple[str, int, float | None, list]]:
    """A page's outline as a tree of (title, page index, top, children), titled by `headings`.

    chromium builds the outline from the visible headings, in order, but writes a heading's text
    badly where it wraps (a lost space, or its number and words twice): the page's own text of the
    headings (HEADINGS_JS, same order) replaces it, one to one when the counts agree, else wherever
    the two agree but for white space.
    """
    flat: list = []

    def walk(items):
        for item in items:
            if isinstance(item, list):
                walk(item)
            else:
                flat.append(item)

    outline = reader.outline  # a new list of new items on every access
    walk(outline)
    one_to_one = len(flat) == len(headings)
    position = {id(item): i for i, item in enumerate(flat)}

    def tree(items):
        out = []
        for k, item in enumerate(items):
            if isinstance(item, list):
                continue
            children = items[k + 1] if k + 1 < len(items) and isinstance(items[k + 1], list) else []
            title = " ".join(str(item.title).split())
            if one_to_one:
                title = headings[position[id(item)]]
            else:
                title = next((h for h in headings if _squash(h) == _squash(title)), title)
            out.append((title, reader.get_destination_page_number(item), item.get("/Top"), tree(children)))
        return out

    return tree(outline)


def _explicit(page_ref, dest) -> "ArrayObject":
    """A destination array on `page_ref` at the position of `dest` (a pypdf Destination)."""
    from pypdf.generic import ArrayObject, NameObject

    return ArrayObject([page_ref, NameObject("/XYZ"), *dest.dest_array[2:]]) \
        if dest.typ == "/XYZ" else ArrayObject([page_ref, *dest.dest_array[1:]])


def join(parts: list[Path], titles: list[str], headings: list[list[str]], out: Path) -> dict:
    """Join the per-page PDFs into `out` with an outline and every book link resolved (pypdf).

    Returns counts for the report: outline entries, links within a page, links between pages.
    """
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import ArrayObject, Fit, NameObject

    readers = [PdfReader(part) for part in parts]
    writer = PdfWriter()
    firsts: list[int] = []
    within = 0
    for reader in readers:
        # A link within the page names a destination of that page: make it explicit (the names
        # repeat from page to page, e.g. every chapter has an #overview, so they cannot be merged).
        named = reader.named_destinations
        for page in reader.pages:
            for annot in page.get("/Annots", []) or []:
                annot = annot.get_object()
                dest = annot.get("/Dest")
                if annot.get("/Subtype") == "/Link" and isinstance(dest, str):
                    if dest not in named:
                        raise ValueError(f"a link to #{dest[1:]} that its page does not define")
                    target = named[dest]
                    number = reader.get_destination_page_number(target)
                    annot[NameObject("/Dest")] = _explicit(reader.pages[number].indirect_reference, target)
                    within += 1
        firsts.append(len(writer.pages))
        writer.append(reader, import_outline=False)
    # The names pypdf merged are not used by any link any more (and repeat across pages): drop them.
    names = writer.root_object.get("/Names")
    if names is not None and "/Dests" in names.get_object():
        del names.get_object()[NameObject("/Dests")]

    # Links to other pages of the book: to the anchor's position there, or to the page's start.
    between = 0
    for page in writer.pages:
        for annot in page.get("/Annots", []) or []:
            annot = annot.get_object()
            action = annot.get("/A")
            uri = str(action.get_object().get("/URI", "")) if action is not None else ""
            if not uri.startswith(PAGE_LINK):
                continue
            index, _, anchor = uri[len(PAGE_LINK):].partition("/")
            doc = int(index)
            target = readers[doc].named_destinations.get("/" + unquote(anchor)) if anchor else None
            if target is not None:
                number = firsts[doc] + readers[doc].get_destination_page_number(target)
                dest = _explicit(writer.pages[number].indirect_reference, target)
            else:
                dest = ArrayObject([writer.pages[firsts[doc]].indirect_reference, NameObject("/Fit")])
            del annot[NameObject("/A")]
            annot[NameObject("/Dest")] = dest
            between += 1

    # The outline: each toc page's title at its first page, its headings below it.
    def add(items, parent, first):
        for title, number, top, children in items:
            fit = Fit.xyz(top=top) if top is not None else Fit.fit()
            node = writer.add_outline_item(title=title, page_number=first + number, parent=parent, fit=fit)
            add(children, node, first)

    for reader, title, heads, first in zip(readers, titles, headings, firsts):
        items = _outline(reader, heads)
        # chromium's outline starts with the page's h1, the page's title: the toc entry itself.
        if items and _squash(items[0][0]) in (_squash(title), _squash(title.split(" ", 1)[-1])):
            items = items[0][3] + items[1:]
        node = writer.add_outline_item(title=title, page_number=first, fit=Fit.fit())
        add(items, node, first)
    writer.page_mode = "/UseOutlines"
    tmp = out.with_suffix(".pdf.part")
    with open(tmp, "wb") as fh:
        writer.write(fh)
    tmp.replace(out)
    reader = PdfReader(out)

    def count(items):
        return sum(count(i) if isinstance(i, list) else 1 for i in items)

    entries = count(reader.outline)
    return {"outline_entries": entries, "links_within_pages": within, "links_between_pages": between}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--html", type=Path, default=DEFAULT_HTML, help="the built HTML book (%(default)s)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the PDF to write (%(default)s)")
    ap.add_argument("--toc", type=Path, default=ROOT / "_toc.yml", help="page order (%(default)s)")
    args = ap.parse_args(argv)
    start = time.monotonic()

    html = args.html.resolve()
    if not (html / "index.html").is_file():
        die(f"{html} has no index.html: build the book first (`make book`)")
    if not CHROMIUM.is_file():
        die(f"{CHROMIUM} is missing: `apt-get install chromium` (or set CHROMIUM=/path/to/chromium)")
    try:
        import pypdf  # noqa: F401
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        die(f"the {exc.name} package is missing: run `make venv` (it is pinned in requirements.txt)")

    docs = toc_pages(args.toc)
    missing = [d for d in docs if not (html / f"{d}.html").is_file()]
    if missing:
        die(f"pages of {args.toc.name} missing from {html}: {', '.join(missing)} (rebuild: `make book`)")

    rows = []
    with serve(html) as server:
        with tempfile.TemporaryDirectory(prefix="bnbook-pdf-") as tmp, sync_playwright() as pw:
            # Never `playwright install` (its download is unavailable here): the system chromium.
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                printer = Printer(browser)
                parts = [Path(tmp) / f"{i:03d}.pdf" for i in range(len(docs))]
                urls = [f"{server}/{doc}.html" for doc in docs]
                doc_index = {f"/{doc}.html": i for i, doc in enumerate(docs)}
                counts: list[int] = []
                headings: list[list[str]] = []
                for i in range(len(docs)):
                    title, heads = printer.print_page(urls[i], parts[i], 1 + sum(counts), {}, doc_index)
                    counts.append(page_count(parts[i]))
                    rows.append((docs[i], title))
                    headings.append(heads)
                # Now that every page's first page number is known, print the root page again with
                # them in its list of contents (when that changes its length, print it as it was).
                starts = {f"/{doc}.html": 1 + sum(counts[:i]) for i, doc in enumerate(docs)}
                again = Path(tmp) / "root.pdf"
                printer.print_page(urls[0], again, 1, starts, doc_index)
                if page_count(again) == counts[0]:
                    again.replace(parts[0])
                printer.context.close()
            finally:
                browser.close()
            if printer.remote:
                die("pages asked for other hosts (blocked; the book must work offline):\n  "
                    + "\n  ".join(sorted(set(printer.remote))))
            if printer.errors:
                die("problems while printing:\n  " + "\n  ".join(printer.errors))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            try:
                links = join(parts, [title for _, title in rows], headings, args.out)
            except ValueError as exc:
                die(f"a link of the book cannot be resolved in the PDF: {exc}")

    total = page_count(args.out)
    width = max(len(doc) for doc, _ in rows)
    first = 1
    for (doc, title), n in zip(rows, counts):
        print(f"  {doc:<{width}}  pp. {first:>3}-{first + n - 1:<3} ({n:>2})  {title}")
        first += n
    seconds = time.monotonic() - start
    # What was printed, for tests/book/test_pdf.py: the page ranges and the requests made.
    report = {
        "pages": [{"doc": doc, "title": title, "first": 1 + sum(counts[:i]), "count": counts[i]}
                  for i, (doc, title) in enumerate(rows)],
        "total_pages": total,
        "pdf_bytes": args.out.stat().st_size,
        **links,
        "local_requests": printer.local,
        "remote_requests": sorted(set(printer.remote)),
        "seconds": round(seconds, 1),
    }
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    size = args.out.stat().st_size / 2**20
    print(f"tools/pdf.py: {args.out} — {total} pages, {size:.1f} MiB, "
          f"{len(rows)} toc pages, {links['outline_entries']} outline entries, "
          f"{links['links_within_pages'] + links['links_between_pages']} links within the book, {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
