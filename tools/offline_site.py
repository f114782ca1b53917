"""The built book as a browser sees it, offline: shared by tools/pdf.py and the browser tests.

- ``toc_pages``: the book's documents in reading order, from ``_toc.yml`` (jb-book format);
- ``serve``: a folder over HTTP on 127.0.0.1 (a free port, a background thread);
- ``CHROMIUM`` and ``CHROMIUM_ARGS``: Debian's chromium (``$CHROMIUM`` to override) and its
  headless flags, for Playwright's ``executable_path`` (``playwright install`` cannot download
  here); ``LOCAL_HOSTS``: the only hosts a page of the book may ask for.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def toc_pages(toc_file: Path) -> list[str]:
    """The documents of a jb-book ``_toc.yml`` in reading order (root, then parts, chapters and
    their sections), without suffix, e.g. ``chapters/01_cpa_splines``."""
    import yaml

    toc = yaml.safe_load(Path(toc_file).read_text(encoding="utf-8"))
    pages = [toc["root"]]

    def add(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            add(entry.get("sections"))
            add(entry.get("chapters"))

    for part in toc.get("parts", []):
        add(part.get("chapters"))
    add(toc.get("chapters"))
    return [re.sub(r"\.(md|ipynb)$", "", p) for p in pages]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # A page asks for about 50 files at once. socketserver's default backlog of 5 lets connections
    # be refused while the serving thread waits for the GIL, and the browser retries them only
    # after seconds of back-off: a page then took over a minute to go quiet, now and then.
    request_queue_size = 128


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1; yields the base URL (``http://127.0.0.1:<port>``)."""
    httpd = _Server(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
