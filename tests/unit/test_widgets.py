"""Widgets: the frame function draws every state; the kernel-free player is offline.

That the player is the same across runs and thread counts is checked in
tests/book/test_player_reproducible.py (three fresh interpreters, about 30 s: too slow for here).
"""

import re

import ipywidgets
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import pytest  # noqa: E402

from bnlib import widgets  # noqa: E402
from bnlib.frames import random_partition_frame  # noqa: E402


@pytest.mark.parametrize("depth", [1, 3, 6])
@pytest.mark.parametrize("layer", [None, 1, 9])
def test_frame_draws_every_state(depth, layer):
    fig, ax = plt.subplots()
    part = random_partition_frame(ax, depth=depth, width=5, layer=layer, seed=depth, negative_slope=0.0)
    assert part.depth == depth
    # the regions drawn are those of the layers shown, and the title says how many
    shown = depth if layer is None else min(layer, depth)
    assert f"{len(part.regions(shown))} regions" in ax.get_title()
    assert len(ax.collections) >= 1
    plt.close(fig)


def test_player_is_offline_accessible_and_has_one_frame_per_state():
    frames = widgets.sweep(dict(depth=2, width=4), depth=[1, 2, 3])
    html = widgets.player_html(random_partition_frame, frames, alt="partition of a random network")
    assert "https://" not in html and "http://" not in html  # no CDN (FontAwesome removed)
    assert 'class="fa' not in html  # no icon font left to load
    assert html.count("data:image/png;base64") == len(frames)
    assert 'alt="partition of a random network"' in html
    assert 'type="range"' in html
    # Every control has an accessible name: an aria-label, a <label for=...>, or a title.
    controls = re.findall(r"<(input|button)\b([^>]*)>", html)
    labelled = set(re.findall(r'<label for="([^"]+)"', html))
    for tag, attrs in controls:
        named = re.search(r'\b(aria-label|title)="[^"]+"', attrs)
        ident = re.search(r'\bid="([^"]+)"', attrs)
        assert named or (ident and ident.group(1) in labelled), f"unnamed <{tag}{attrs}>"
    assert len(controls) >= 10  # slider, 3 loop modes, 8 buttons


def test_player_rejects_no_frames():
    with pytest.raises(ValueError, match="at least one frame"):
        widgets.player_html(random_partition_frame, [])


def test_sweep_varies_one_parameter_at_a_time():
    frames = widgets.sweep(dict(a=1, b=2), a=[5, 6], b=[7])
    assert frames == [dict(a=5, b=2), dict(a=6, b=2), dict(a=1, b=7)]


def test_live_widget_has_the_controls_and_redraws():
    w = widgets.live(
        random_partition_frame,
        depth=ipywidgets.IntSlider(value=2, min=1, max=4),
        width=ipywidgets.IntSlider(value=4, min=2, max=8),
        seed=ipywidgets.fixed(0),
    )
    names = {c.description for c in w.children if hasattr(c, "description")}
    assert {"depth", "width"} <= names
    slider = next(c for c in w.children if getattr(c, "description", "") == "depth")
    assert slider.continuous_update is False
    slider.value = 3  # triggers a redraw through the frame function; must not raise
    plt.close("all")


def _pixels(png: bytes):
    import io

    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("RGB"), dtype=float)


def _saved(draw, figsize, values):
    """The oracle: a new figure per state, saved as the inline backend saves it (tight, 0.1 in pad)."""
    import io

    fig, ax = plt.subplots(figsize=figsize)
    draw(ax, **values)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)
    return buffer.getvalue()


def test_live_figure_redraws_in_place_as_a_new_figure_would():
    figsize = (3.5, 3.5)
    live = widgets.LiveFigure(random_partition_frame, figsize=figsize)
    states = [dict(depth=2, width=4, seed=s) for s in (0, 1, 2)] + [dict(depth=3, width=4, seed=0)]
    for values in states:
        mine = _pixels(live.render(**values))
        # A full draw of the state in a figure of its own: the same picture, pixel for pixel but
        # for antialiasing where the frame's artists meet the axes' spines.
        fresh = _pixels(widgets.LiveFigure(random_partition_frame, figsize=figsize).render(**values))
        assert mine.shape == fresh.shape and abs(mine - fresh).mean() < 0.5, values
        # and the size of the picture the inline backend showed (a new figure per move, saved tight)
        saved = _pixels(_saved(random_partition_frame, figsize, values))
        assert abs(mine.shape[0] - saved.shape[0]) <= 8 and abs(mine.shape[1] - saved.shape[1]) <= 8
    assert live.full_draws == 1, "the axes did not change, yet the figure was drawn in full again"
    first = live.render(**states[0])
    assert first == live.render(**states[0]) and first != live.render(**states[1])  # cached, and distinct


def test_live_shows_a_png_per_move():
    w = widgets.live(random_partition_frame, depth=ipywidgets.IntSlider(value=2, min=1, max=4),
                     seed=ipywidgets.fixed(0))
    slider = next(c for c in w.children if getattr(c, "description", "") == "depth")
    slider.value = 3
    assert w.live_figure.full_draws >= 1
    assert plt.get_fignums() == []  # the widget's figure is not a pyplot figure (never shown twice)


def test_live_figure_redraws_a_frame_function_that_splits_its_axes():
    # chapter 5's mode_pair_frame turns the one axes it is given into two panels: every move
    # must still render (a full draw on a fresh axes), and a state must render the same each time
    from matplotlib.figure import Figure

    from bnlib.widgets import LiveFigure

    def split(ax, *, shift):
        fig, spec = ax.figure, ax.get_subplotspec()
        ax.remove()
        left, right = (fig.add_subplot(s) for s in spec.subgridspec(1, 2))
        left.plot([0, 1], [0, shift])
        right.plot([0, 1], [shift, 0])

    live = LiveFigure(split, figsize=(4, 2))
    a, b = live.render(shift=1.0), live.render(shift=2.0)
    assert a[:4] == b"\x89PNG" and b[:4] == b"\x89PNG" and a != b
    live._cache.clear()
    assert live.render(shift=1.0) == a
    assert len(live.figure.axes) == 2 and isinstance(live.figure, Figure)
