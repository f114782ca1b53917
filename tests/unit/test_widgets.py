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
    live = widgets.LiveFigure(random_partition_frame, figsize=figsize, palette=False)
    states = [dict(depth=2, width=4, seed=s) for s in (0, 1, 2)] + [dict(depth=3, width=4, seed=0)]
    for values in states:
        mine = _pixels(live.render(**values))
        # A full draw of the state in a figure of its own: the same picture, pixel for pixel but
        # for antialiasing where the frame's artists meet the axes' spines.
        fresh = _pixels(widgets.LiveFigure(random_partition_frame, figsize=figsize, palette=False).render(**values))
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


class _Loop:
    """A stand-in for the kernel's event loop: keeps the callbacks, runs them on demand."""

    def __init__(self):
        self.callbacks = []

    def call_later(self, delay, fn, *args):
        self.callbacks.append((fn, args))

    def run(self):
        while self.callbacks:
            fn, args = self.callbacks.pop(0)
            fn(*args)


def test_live_draws_the_next_steps_while_idle_after_a_move(monkeypatch):
    loop = _Loop()
    monkeypatch.setattr(widgets, "_kernel_loop", lambda: loop)
    depth = ipywidgets.IntSlider(value=2, min=1, max=4)
    seed = ipywidgets.Dropdown(options=[0, 1, 2], value=0)
    w = widgets.live(random_partition_frame, figsize=(3, 3), depth=depth, seed=seed)
    fig = w.live_figure
    loop.run()  # the widget was made: the first state's neighbours
    assert all(fig.cached(depth=d, seed=s) for d, s in [(3, 0), (1, 0), (2, 1)]) and w.prefetch.rendered == 3
    depth.value = 3
    loop.run()
    # the neighbours of (3, 0): depth 4 then 2 (the direction moved first), seed 1 (seed -1 does not exist)
    assert all(fig.cached(depth=d, seed=s) for d, s in [(4, 0), (2, 0), (3, 1)])
    assert w.prefetch.rendered == 5  # (2, 0) was on screen before: already kept
    # the next step is served from the cache, and it is the picture of that state
    drawn = fig.full_draws, w.prefetch.rendered
    depth.value = 4
    assert (fig.full_draws, w.prefetch.rendered) == drawn and w.image.value == widgets._img_tag(
        fig.render(depth=4, seed=0), w.image.value.split('alt="')[1].split('"')[0])
    fresh = _pixels(widgets.LiveFigure(random_partition_frame, figsize=(3, 3)).render(depth=4, seed=0))
    shown = _pixels(fig.render(depth=4, seed=0))
    assert shown.shape == fresh.shape and abs(shown - fresh).mean() < 0.5


def test_a_new_move_cancels_what_is_left_to_draw_ahead(monkeypatch):
    loop = _Loop()
    monkeypatch.setattr(widgets, "_kernel_loop", lambda: loop)
    depth = ipywidgets.IntSlider(value=2, min=1, max=4)
    width = ipywidgets.IntSlider(value=4, min=2, max=8, step=2)
    w = widgets.live(random_partition_frame, figsize=(3, 3), depth=depth, width=width)
    loop.callbacks.clear()  # (the first state's neighbours: not drawn here)
    depth.value = 3
    fn, args = loop.callbacks.pop(0)
    width.value = 6  # before anything was drawn ahead for depth 3
    fn(*args)  # the stale queue does nothing
    assert w.prefetch.rendered == 0
    loop.run()
    assert w.live_figure.cached(depth=3, width=8) and not w.live_figure.cached(depth=4, width=4)


def test_live_outside_a_kernel_draws_nothing_ahead():
    w = widgets.live(random_partition_frame, figsize=(3, 3), depth=ipywidgets.IntSlider(value=2, min=1, max=4))
    assert w.prefetch is None


def test_steps_of_each_kind_of_control():
    assert widgets._steps(ipywidgets.IntSlider(value=4, min=0, max=4), 4) == [3]
    assert widgets._steps(ipywidgets.SelectionSlider(options=[2, 4, 8], value=4), 4) == [8, 2]
    assert widgets._steps(ipywidgets.Dropdown(options=[("a", "x"), ("b", "y")], value="x"), "x") == ["y"]
    assert widgets._steps(ipywidgets.Checkbox(value=True), True) == [False]
    assert widgets._steps(ipywidgets.Text(value="t"), "t") == []


def _two_panels(axes, *, k):
    for i, ax in enumerate(axes):
        ax.plot([0, 1], [0, k * (i + 1)], color="C0")
        ax.set(xlim=(0, 1), ylim=(0, 10), title=f"panel {i}, k = {k}")


def test_live_figure_with_panels_redraws_each_in_place():
    live = widgets.LiveFigure(_two_panels, figsize=(6, 3), ncols=2, palette=False)
    for k in (1, 3, 5):
        mine = _pixels(live.render(k=k))
        fresh = _pixels(widgets.LiveFigure(_two_panels, figsize=(6, 3), ncols=2, palette=False).render(k=k))
        assert mine.shape == fresh.shape and abs(mine - fresh).mean() < 0.5, k
    assert live.full_draws == 1 and len(live.axes) == 2
    with pytest.raises(ValueError, match="ncols"):
        widgets.LiveFigure(_two_panels, ncols=0)


def test_the_palette_picture_is_the_full_colour_one_to_the_eye():
    values = dict(depth=6, width=16, seed=3)
    full = widgets.LiveFigure(random_partition_frame, palette=False).render(**values)
    small = widgets.LiveFigure(random_partition_frame).render(**values)
    a, b = _pixels(full), _pixels(small)
    assert a.shape == b.shape and abs(a - b).mean() < 3 and abs(a - b).max() < 40
    assert len(small) < len(full) / 2
