"""Sphinx extension: accessibility repairs of HTML that Sphinx and its extensions generate.

- docutils writes the bibliography as ``<div role="list" class="citation-list">`` whose entries
  have the role ``doc-biblioentry``, not ``listitem``: screen readers are told about a list with no
  items (axe: aria-required-children, critical). The list role is dropped; each entry keeps its
  own role.
- myst-nb's execution report marks each notebook with an emoji (a check mark or a cross), which
  prints as an empty box where no emoji font is installed (this machine's chromium, so the PDF)
  and is read out as "check mark button": it is replaced by the words.
"""

from __future__ import annotations

from sphinx.application import Sphinx


def _repair(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    body = context.get("body")
    if body:
        body = body.replace('<div role="list" class="citation-list">', '<div class="citation-list">')
        body = body.replace("<td><p>\u2705</p></td>", "<td><p>succeeded</p></td>")
        body = body.replace("<td><p>\u274c</p></td>", "<td><p>failed</p></td>")
        context["body"] = body


def setup(app: Sphinx) -> dict:
    app.connect("html-page-context", _repair)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
