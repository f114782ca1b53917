"""What the chapters use to put computed numbers into their text.

A chapter computes a number in a code cell and writes it into a sentence as ``{eval}`name```.
:func:`glue` makes that work wherever the chapter is read:

- in the built book, myst-nb's glue records the value in the cell's outputs, and the book's
  ``eval`` role (``tools/eval_glue.py``) pastes the glued text where the sentence names it;
- in JupyterLab, jupyterlab-myst evaluates ``{eval}`name``` in the kernel when the markdown cell
  is rendered, so :func:`glue` also binds ``name`` in the notebook's namespace, to a
  :class:`Text` that shows without quotes;
- in a bare Python (Colab without myst-nb, a script), the value is bound, and nothing else
  happens.

A sentence must come after the cell that glues its numbers, so that JupyterLab has the value when
it renders the sentence (tests/book/test_chapter_outputs.py checks the order).
"""

from __future__ import annotations

__all__ = ["Text", "glue"]


class Text(str):
    """A string that displays as itself (``repr`` without quotes), for text put into a sentence.

    Examples
    --------
    >>> Text("0.83 [0.79, 0.86]")
    0.83 [0.79, 0.86]
    """

    def __repr__(self) -> str:
        return str(self)


def glue(name: str, value, display: bool = True):
    """Glue ``value`` under ``name`` for the book and bind ``name`` in the notebook.

    A string or a number is glued as its :class:`Text` (``str(value)``: a NumPy float reads
    ``0.5``, not ``np.float64(0.5)``); anything else as it is. Only a ``name`` that is a Python
    identifier is bound in the notebook (``{eval}`name``` evaluates it in JupyterLab; the book's
    text uses no other, tests/book/test_chapter_outputs.py checks). ``display`` shows the value in
    the cell's output as well, as myst-nb's ``glue`` does. Returns None, as myst-nb's ``glue`` does,
    so that a cell that ends with a ``glue`` call shows nothing more.

    Raises ``ValueError`` for a name that is not a non-empty string.

    Examples
    --------
    >>> import numpy as np
    >>> glue("ch0_example", np.float64(0.5), display=False) is None
    True
    >>> glue("", 1)
    Traceback (most recent call last):
    ...
    ValueError: glue: the name must be a non-empty string, not ''
    """
    if not (isinstance(name, str) and name):
        raise ValueError(f"glue: the name must be a non-empty string, not {name!r}")
    import numbers

    text = Text(value) if isinstance(value, (str, numbers.Number)) else value
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        shell = None
    if shell is not None and name.isidentifier():
        shell.user_ns[name] = text
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # Colab or a bare Python: no book text to put the value in
        if display and shell is not None:
            from IPython.display import display as show

            show(text)
        return None
    myst_glue(name, text, display=display)
    return None
