"""Sphinx extension: the ``{eval}`name``` role pastes the value a chapter glued under ``name``.

The chapters write computed numbers into sentences as ``{eval}`name``` (see ``bnlib/book.py``).
JupyterLab's MyST renderer (jupyterlab-myst) evaluates such a role in the running kernel, where
``bnlib.book.glue`` bound ``name``. myst-nb would evaluate it only in its "inline" execution
mode, which the book does not use (it executes every notebook with nbclient, `execute_notebooks:
force`); so in the built book ``{eval}`` is myst-nb's ``{glue:text}``: the text glued under
``name`` by the cell that computed it, which is what the kernel holds too.
"""

from __future__ import annotations


def setup(app):
    app.setup_extension("myst_nb")  # its roles first, so that ours replaces its "eval"
    from myst_nb.ext.glue.roles import PasteTextRole

    app.add_role("eval", PasteTextRole(), override=True)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
