"""Sphinx extension: accessibility repairs of HTML that Sphinx and its extensions generate.

- docutils writes the bibliography as ``<div role="list" class="citation-list">`` whose entries
  have the role ``doc-biblioentry``, not ``listitem``: screen readers are told about a list with no
  items (axe: aria-required-children, critical). The list role is dropped; each entry keeps its
  own role.
"""

from __future__ import annotations

from sphinx.application import Sphinx


def _repair(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    body = context.get("body")
    if body:
        context["body"] = body.replace('<div role="list" class="citation-list">',
                                       '<div class="citation-list">')


def setup(app: Sphinx) -> dict:
    app.connect("html-page-context", _repair)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
