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

__all__ = ["live", "player", "player_html", "sweep"]

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


def live(draw: Callable, *, figsize=(4.5, 4.5), **controls):
    """A live ipywidgets exploration: ``draw(ax, **values)`` redrawn when a control moves.

    ``controls`` map parameter names to ipywidgets controls (or to fixed values, wrapped in
    ``ipywidgets.fixed``). Sliders are set not to update while dragging, so one redraw
    happens per move.
    """
    import ipywidgets as w

    for control in controls.values():
        if hasattr(control, "continuous_update"):
            control.continuous_update = False

    def show(**values):
        fig, ax = plt.subplots(figsize=figsize)
        draw(ax, **values)
        plt.show()

    return w.interactive(show, **controls)


def sweep(base: dict, **changes: Sequence) -> list[dict]:
    """Frames that vary one parameter at a time from ``base``.

    Examples
    --------
    >>> sweep(dict(depth=2, seed=0), depth=[1, 3], seed=[5])
    [{'depth': 1, 'seed': 0}, {'depth': 3, 'seed': 0}, {'depth': 2, 'seed': 5}]
    """
    return [dict(base, **{name: value}) for name, values in changes.items() for value in values]
