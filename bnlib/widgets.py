"""Live widgets and kernel-free players, both made from one frame function.

A frame function ``draw(ax, **params)`` draws one state of an exploration. :func:`live`
calls it whenever a control moves (needs a running kernel); :func:`player` calls it over
a list of parameter settings and stitches the frames into matplotlib's JavaScript player,
which keeps working in the static HTML book where no kernel runs. Live and static cannot
drift apart because they share the frame function, and the frame function is testable on
its own.
"""

from __future__ import annotations

import hashlib
import re
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation

__all__ = ["BACKGROUND", "LiveFigure", "live", "player", "player_html", "sweep"]

# Plain triangles and bars: every font has them (the media-control symbols U+23EE/U+23ED do
# not render in a bare headless chromium).
_ICONS = {
    "fa-minus": "&#8722;",
    "fa-fast-backward": "&#124;&#9664;&#9664;",
    "fa-step-backward": "&#124;&#9664;",
    "fa-play fa-flip-horizontal": "&#9664;",
    "fa-pause": "&#124;&#124;",
    "fa-play": "&#9654;",
    "fa-step-forward": "&#9654;&#124;",
    "fa-fast-forward": "&#9654;&#9654;&#124;",
    "fa-plus": "+",
}


def _offline(html: str, alt: str) -> str:
    """Make matplotlib's jshtml self-contained and deterministic.

    The FontAwesome stylesheet comes from a CDN: drop it and draw the buttons with plain
    Unicode symbols. Replace the random element id by a hash of the frames, so the same
    frames give the same HTML, give the image an alt text and the frame slider a name.
    """
    html = re.sub(r'<link rel="stylesheet"\s+href="https://[^"]*font-awesome[^"]*">', "", html)
    for cls, symbol in _ICONS.items():
        html = html.replace(f'<i class="fa {cls}"></i>', f'<span aria-hidden="true">{symbol}</span>')
    match = re.search(r'id="_anim_img([0-9a-f]+)"', html)
    if match:
        digest = hashlib.sha1(html.replace(match.group(1), "").encode()).hexdigest()[:16]
        html = html.replace(match.group(1), digest)
    alt = alt.replace('"', "&quot;")
    html = re.sub(r'<img id="(_anim_img[0-9a-f]+)">', rf'<img id="\1" alt="{alt}">', html)
    # The frame slider has no <label>: name it for screen readers (axe rule "label").
    return re.sub(r'<input id="(_anim_slider[0-9a-f]+)" type="range"',
                  r'<input id="\1" type="range" aria-label="frame"', html)


def player_html(
    draw: Callable,
    frames: Sequence[dict],
    *,
    figsize=(4.5, 4.5),
    nrows: int = 1,
    ncols: int = 1,
    interval: int = 700,
    dpi: int = 80,
    alt: str = "animation frame",
) -> str:
    """HTML of a kernel-free player: ``draw`` called on each parameter dict of ``frames``.

    With ``nrows * ncols > 1`` the frame function receives the array of axes instead of one.
    """
    if len(frames) == 0:
        raise ValueError("a player needs at least one frame (a list of parameter dicts)")
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, dpi=dpi)
    flat = np.atleast_1d(axes).ravel()

    def update(i):
        for ax in flat:
            ax.clear()
        draw(axes, **frames[i])
        return []

    anim = FuncAnimation(fig, update, frames=len(frames), interval=interval, blit=False)
    try:
        html = anim.to_jshtml(default_mode="once")
    finally:
        plt.close(fig)
    return _offline(html, alt)


def player(draw: Callable, frames: Sequence[dict], **kwargs):
    """A kernel-free player (an ``IPython.display.HTML``); see :func:`player_html`.

    Examples
    --------
    >>> from bnlib.frames import random_partition_frame
    >>> frames = sweep(dict(depth=1, width=4), depth=[1, 2])
    >>> html = player(random_partition_frame, frames).data
    >>> "https://" in html, html.count('type="range"')
    (False, 1)
    """
    from IPython.display import HTML

    return HTML(player_html(draw, frames, **kwargs))


BACKGROUND = "bnlib-background"
"""The ``gid`` a frame function gives the artists that never depend on its parameters (e.g. the
reference partition under chapter 4's band): a live widget draws them once, in its cached
background, instead of on every move."""


class LiveFigure:
    """One figure that a live widget redraws in place, as PNG bytes.

    Rebuilding a figure per move (``plt.subplots`` + ``plt.show``) lays out and rasterizes the
    axes' ticks, labels and legend frame every time, which costs more than the frame itself. Here
    the figure and its axes are made once; a move removes what the frame function drew, calls it
    again on the same axes, and, while the axes' frame (limits, ticks, labels, position, title
    lines, legend entries) is what it was, draws only the frame's artists and title over a cached
    rendering of the rest (matplotlib's blitting). Artists the frame function marks with the gid
    :data:`BACKGROUND` (they must not depend on its parameters) stay in that cached rendering too.
    A changed frame, and the first one, get a full draw; so does every frame of a frame function
    that reshapes the figure (splits the axes it is given into panels), on a fresh axes. The PNG is
    cropped like the inline backend's (``bbox_inches="tight"``, 0.1 inch pad), and the last few
    states are kept, so going back to a state costs nothing. With ``ncols > 1`` the figure is a row
    of that many panels, made once, and the frame function receives them as an array (as
    :func:`player` gives them); each panel is redrawn in place. With ``palette`` (the default) an
    opaque picture is sent as a 256-colour PNG, which the browser decodes three times faster.

    Examples
    --------
    >>> from bnlib.frames import random_partition_frame
    >>> live = LiveFigure(random_partition_frame, figsize=(3, 3))
    >>> a, b = live.render(depth=2, seed=0), live.render(depth=2, seed=1)
    >>> a[:4] == b"\\x89PNG" and a != b and live.render(depth=2, seed=0) == a
    True
    """

    def __init__(self, draw: Callable, *, figsize=(4.5, 4.5), dpi: float | None = None, cache: int = 32,
                 ncols: int = 1, palette: bool = True):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if not (isinstance(ncols, int) and ncols >= 1):
            raise ValueError(f"LiveFigure: ncols must be a positive integer, not {ncols!r}")
        # A Figure outside pyplot: the inline backend never shows it on its own.
        self.figure = Figure(figsize=figsize, dpi=dpi or plt.rcParams["figure.dpi"])
        FigureCanvasAgg(self.figure)
        self.ncols = ncols
        self.palette = palette
        self._make_axes()
        self.draw = draw
        self.full_draws = 0
        self._frame_key = None
        self._background = None
        self._crop = None
        self._cache: dict = {}
        self._cache_size = cache
        self._reshaped = False

    def _make_axes(self) -> None:
        panels = self.figure.subplots(1, self.ncols, squeeze=False)[0]
        self.axes = list(panels)
        # what the frame function receives: one axes, or the row of panels (as player gives it)
        self.ax = panels[0] if self.ncols == 1 else panels

    def _clear(self) -> None:
        for ax in self.axes:
            for artist in [*ax.collections, *ax.lines, *ax.patches, *ax.texts, *ax.images, *ax.artists, *ax.tables]:
                artist.remove()
            if ax.legend_ is not None:
                ax.legend_.remove()
            for title in (ax.title, ax._left_title, ax._right_title):
                title.set_text("")
            ax.set_prop_cycle(None)  # the colour cycle restarts, as after ax.clear()

    def _dynamic(self) -> list:
        # The legend is not among them: the frame key holds its entries, so a legend that did not
        # change is part of the cached background, and one that did forces a full draw. Nor are
        # the artists the frame function marked as BACKGROUND (the key counts them).
        out = []
        for ax in self.axes:
            out += [a for a in [*ax.collections, *ax.lines, *ax.patches, *ax.texts, *ax.images, *ax.artists,
                                *ax.tables, ax.title, ax._left_title, ax._right_title]
                    if a.get_visible() and a.get_gid() != BACKGROUND]
        return out

    @staticmethod
    def _background_key(ax):
        return tuple(type(a).__name__ for a in [*ax.collections, *ax.lines, *ax.patches, *ax.images]
                     if a.get_gid() == BACKGROUND)

    def _key(self):
        return tuple((ax.get_xlim(), ax.get_ylim(), ax.get_aspect(), tuple(ax.get_position().bounds),
                      tuple(ax.get_xticks()), tuple(ax.get_yticks()), ax.get_xlabel(), ax.get_ylabel(),
                      tuple(t.get_text() for t in ax.get_xticklabels()),
                      tuple(t.get_text() for t in ax.get_yticklabels()),
                      ax.get_title().count("\n"), ax.axison, self._legend_key(ax), self._background_key(ax))
                     for ax in self.axes)

    @staticmethod
    def _legend_key(ax):
        legend = ax.legend_
        if legend is None:
            return None
        return (tuple(t.get_text() for t in legend.get_texts()), legend._loc,
                tuple(legend.get_bbox_to_anchor().bounds), legend._ncols,
                tuple((type(h).__name__, str(h.get_color()) if hasattr(h, "get_color") else "")
                      for h in legend.legend_handles))

    @staticmethod
    def _state(values: dict):
        return tuple(sorted((k, repr(v)) for k, v in values.items()))

    def cached(self, **values) -> bool:
        """Whether the PNG of ``values`` is kept (:meth:`render` returns it at once)."""
        return self._state(values) in self._cache

    def render(self, **values) -> bytes:
        """The PNG of the frame function's drawing of ``values``."""
        key = self._state(values)
        if key in self._cache:
            return self._cache[key]
        if self._reshaped:  # the last frame replaced the axes: start again from the panels
            self.figure.clear()
            self._make_axes()
            self._frame_key, self._background, self._reshaped = None, None, False
        else:
            self._clear()
        self.draw(self.ax, **values)
        canvas = self.figure.canvas
        if self.figure.axes != self.axes:
            # The frame function reshaped the figure (split its axes into panels, say): draw it
            # whole, and give the next frame fresh panels.
            self._reshaped = True
            canvas.draw()
            self._crop = self.figure.get_tightbbox(canvas.get_renderer()).padded(0.1).transformed(
                self.figure.dpi_scale_trans)
            self.full_draws += 1
            return self._store(key, self._png())
        dynamic = self._dynamic()
        frame_key = self._key()
        if frame_key != self._frame_key or self._background is None:
            # Full draw: the rendering without the frame's artists is the background of later moves.
            for artist in dynamic:
                artist.set_visible(False)
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.figure.bbox)
            for artist in dynamic:
                artist.set_visible(True)
            canvas.draw()
            renderer = canvas.get_renderer()
            box = self.figure.get_tightbbox(renderer).padded(0.1)
            self._crop = box.transformed(self.figure.dpi_scale_trans)
            self._frame_key = frame_key
            self.full_draws += 1
        else:
            canvas.restore_region(self._background)
            for ax in self.axes:
                # The spines go with the artists (in z-order), so a fill under them does not cover them.
                mine = [a for a in dynamic if a.axes is ax]  # the titles' axes is theirs too
                for artist in sorted([*mine, *ax.spines.values()], key=lambda a: a.get_zorder()):
                    ax.draw_artist(artist)
        return self._store(key, self._png())

    def _store(self, key, png: bytes) -> bytes:
        if len(self._cache) >= self._cache_size:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = png
        return png

    def _png(self) -> bytes:
        import io

        from PIL import Image

        canvas = self.figure.canvas
        width, height = canvas.get_width_height(physical=True)
        rgba = np.asarray(canvas.buffer_rgba())
        x0, y0, x1, y1 = self._crop.extents
        x0, x1 = max(0, int(np.floor(x0))), min(width, int(np.ceil(x1)))
        top, bottom = max(0, int(np.floor(height - y1))), min(height, int(np.ceil(height - y0)))
        image = Image.fromarray(np.ascontiguousarray(rgba[top:bottom, x0:x1]), "RGBA")
        if self.palette and rgba[..., 3].min() == 255:
            # An opaque picture as a 256-colour palette PNG: a third of the bytes and a third of
            # the browser's decoding time of the full-colour one, for a mean error of about 1.5/255
            # per channel (tests/unit/test_widgets.py) that the eye does not see.
            image = image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE)
        buffer = io.BytesIO()
        image.save(buffer, format="png", compress_level=1)
        return buffer.getvalue()


def _img_tag(png: bytes, alt: str) -> str:
    import base64
    from html import escape

    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _kernel_loop():
    """The running kernel's event loop (a tornado IOLoop), or None outside a Jupyter kernel."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        return None
    return getattr(getattr(get_ipython(), "kernel", None), "io_loop", None)


def _steps(control, value) -> list:
    """The values one step away from ``value`` on ``control`` (the next one first), as the control's
    arrow keys would set them: the neighbouring option of a selection, ``value +- step`` of a
    slider within its range, the other state of a checkbox. Empty for anything else."""
    options = getattr(control, "_options_values", None)
    if options is not None:
        try:
            i = list(options).index(value)
        except ValueError:
            return []
        return [options[j] for j in (i + 1, i - 1) if 0 <= j < len(options)]
    if isinstance(value, bool):
        return [not value]
    step, low, high = (getattr(control, k, None) for k in ("step", "min", "max"))
    if step is None or low is None or high is None or isinstance(value, (tuple, list)):
        return []
    return [v for v in (value + step, value - step) if low <= v <= high]


def _forward(control, old, new) -> bool:
    """Whether a control moved up (to a later option, a larger value)."""
    options = getattr(control, "_options_values", None)
    try:
        if options is not None:
            return list(options).index(new) >= list(options).index(old)
        return bool(new >= old)
    except (ValueError, TypeError):
        return True


class _Prefetch:
    """Draws, while the kernel is idle, the states one step away from the one on screen.

    A reader steps a control and looks; meanwhile the kernel's event loop renders the neighbouring
    states into the :class:`LiveFigure`'s cache, one per callback, so that the next step finds its
    picture ready. The neighbours of the control just moved come first (in the direction it moved),
    then those of the other controls. It runs in the kernel's own thread, between messages: a
    reader's move or a cell waits at most for the one rendering under way, and nothing runs beside
    the reader's code: the frame functions draw with their own seeded generators (bnlib's networks
    restore torch's global generator, ``fork_rng``), so the numbers of later cells are the same
    with or without it. A new move cancels what is left. It starts when the widget is made (the
    first state's neighbours) and after each move.
    """

    def __init__(self, figure: LiveFigure, loop, delay: float = 0.02):
        self.figure, self.loop, self.delay = figure, loop, delay
        self.generation = 0
        self.rendered = 0  # states drawn ahead, for the tests and benchmarks/widgets.py

    def schedule(self, state: dict, shown: dict, moved: str | None = None, forward: bool = True) -> None:
        self.generation += 1
        order = ([moved] if moved in shown else []) + [name for name in shown if name != moved]
        queue = []
        for name in order:
            nxt = _steps(shown[name], state[name])
            if name == moved and not forward:
                nxt = nxt[::-1]
            queue += [dict(state, **{name: v}) for v in nxt]
        self.loop.call_later(self.delay, self._next, self.generation, queue)

    def _next(self, generation: int, queue: list) -> None:
        while queue and generation == self.generation:
            values = queue.pop(0)
            if self.figure.cached(**values):
                continue
            try:
                self.figure.render(**values)
                self.rendered += 1
            except Exception:  # noqa: BLE001 - a state the reader cannot reach (or a bad one): skip it
                pass
            self.loop.call_later(self.delay, self._next, generation, queue)
            return


def live(draw: Callable, *, figsize=(4.5, 4.5), alt: str | None = None, prefetch: bool = True, ncols: int = 1,
         **controls):
    """A live ipywidgets exploration: ``draw(ax, **values)`` redrawn when a control moves.

    ``controls`` map parameter names to ipywidgets controls (sliders, dropdowns, checkboxes) or
    to fixed values wrapped in ``ipywidgets.fixed``. Sliders are set not to update while
    dragging, so one redraw happens per move. The figure is made once and redrawn in place
    (:class:`LiveFigure`), and each move sends only its PNG, as an ``<img>`` in an
    ``ipywidgets.HTML`` (one comm message; no output area cleared and filled again, which is what
    made the browser lag behind the kernel; an HTML image rather than an ``ipywidgets.Image``
    because it can carry an alt text). The widget is a ``VBox`` (the controls, then the image)
    with the class ``bnbook-live``; ``alt`` is the picture's text for screen readers. With
    ``ncols > 1`` the frame function receives a row of that many axes, as :func:`player` gives it.

    With ``prefetch`` (the default), after each of the reader's moves the kernel draws the states
    one step away while it is idle (:class:`_Prefetch`), so that the next step's picture is
    usually ready when the reader asks for it; the widget's ``prefetch`` attribute is that helper
    (None outside a Jupyter kernel, where nothing is drawn ahead).

    Raises ``ValueError`` for a control that is neither a widget with a value nor ``fixed``.

    Examples
    --------
    >>> import ipywidgets
    >>> from bnlib.frames import random_partition_frame
    >>> w = live(random_partition_frame, depth=ipywidgets.IntSlider(value=2, min=1, max=4),
    ...          seed=ipywidgets.fixed(0))
    >>> before = w.image.value
    >>> w.children[0].value = 3
    >>> w.image.value.startswith('<img alt="') and w.image.value != before
    True
    """
    import ipywidgets as w

    fixed, shown = {}, {}
    for name, control in controls.items():
        if isinstance(control, w.fixed):
            fixed[name] = control.value
        elif isinstance(control, w.ValueWidget):
            shown[name] = control
        else:
            raise ValueError(f"live: the control for {name!r} is a {type(control).__name__}; give an "
                             "ipywidgets control (IntSlider, Dropdown, Checkbox, ...) or ipywidgets.fixed(value)")
    for name, control in shown.items():
        if hasattr(control, "continuous_update"):
            control.continuous_update = False
        if hasattr(control, "description") and not control.description:
            control.description = name  # as ipywidgets.interact labels its controls
    figure = LiveFigure(draw, figsize=figsize, ncols=ncols)
    label = alt or f"{getattr(draw, '__name__', 'frame')} for the chosen {', '.join(shown) or 'values'}"
    image = w.HTML()
    loop = _kernel_loop() if prefetch else None
    ahead = _Prefetch(figure, loop) if loop is not None else None

    def update(change=None):
        state = {name: c.value for name, c in shown.items()}
        png = figure.render(**fixed, **state)
        image.value = _img_tag(png, label)
        if ahead is not None and change is not None:  # a reader's move: draw the next steps meanwhile
            moved = next((n for n, c in shown.items() if c is change["owner"]), None)
            ahead.schedule({**fixed, **state}, shown, moved, _forward(change["owner"], change["old"], change["new"]))

    for control in shown.values():
        control.observe(update, names="value")
    update()
    if ahead is not None:  # the first step too: draw the neighbours of the first state while idle
        ahead.schedule({**fixed, **{name: c.value for name, c in shown.items()}}, shown)
    box = w.VBox([*shown.values(), image])
    box.add_class("bnbook-live")
    box.image = image
    box.live_figure = figure  # for benchmarks/widgets.py and the tests
    box.prefetch = ahead  # None outside a kernel (or with prefetch=False)
    return box


def sweep(base: dict, **changes: Sequence) -> list[dict]:
    """Frames that vary one parameter at a time from ``base``.

    Examples
    --------
    >>> sweep(dict(depth=2, seed=0), depth=[1, 3], seed=[5])
    [{'depth': 1, 'seed': 0}, {'depth': 3, 'seed': 0}, {'depth': 2, 'seed': 5}]
    """
    return [dict(base, **{name: value}) for name, values in changes.items() for value in values]
