"""The shared look: what is drawn matches the partition, in the book's colours."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection, PolyCollection  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

import bnlib  # noqa: E402
from bnlib import plot  # noqa: E402


@pytest.fixture
def part():
    return bnlib.partition(bnlib.MLP([2, 5, 5, 5], n_classes=1, seed=2), (-2, 2, -2, 2))


def test_regions_and_boundaries_of_a_layer(part):
    fig, ax = plt.subplots()
    plot.plot_partition(part, ax, layer=2, decision=True, data=np.zeros((3, 2)))
    polys = [c for c in ax.collections if isinstance(c, PolyCollection) and not isinstance(c, LineCollection)]
    assert len(polys[0].get_paths()) == len(part.regions(2))
    lines = {tuple(np.round(c.get_colors()[0], 3)): len(c.get_segments()) for c in ax.collections if isinstance(c, LineCollection)}
    seg = part.boundaries()
    assert lines[tuple(np.round(to_rgba(plot.LAYER_COLOR), 3))] == int((seg.layer == 2).sum())
    assert lines[tuple(np.round(to_rgba(plot.EARLIER_COLOR), 3))] == int((seg.layer == 1).sum())
    if len(part.decision_boundary()):
        assert lines[tuple(np.round(to_rgba(plot.DECISION_COLOR), 3))] == len(part.decision_boundary())
    assert ax.get_xlim() == (-2, 2) and ax.get_ylim() == (-2, 2)
    plt.close(fig)


def test_plot_layers_draws_one_panel_per_layer(part):
    axes = plot.plot_layers(part)
    assert [ax.get_title() for ax in axes] == ["layer 1", "layer 2", "layer 3"]
    with pytest.raises(ValueError, match="one axis per hidden layer"):
        plot.plot_layers(part, axes[:2])
    plt.close("all")


def test_palette_is_okabe_ito_and_background_white():
    plot.use_style()
    assert matplotlib.rcParams["figure.facecolor"] == "white"
    assert set(plot.CLASS_COLORS) <= set(plot.OKABE_ITO.values())
    assert plot.LAYER_COLOR in plot.OKABE_ITO.values() and plot.DECISION_COLOR in plot.OKABE_ITO.values()


# Colour-vision deficiency simulation of Machado, Oliveira & Fernandes (2009), severity 1, applied
# to linear RGB: the published matrices, an oracle independent of how the palette was chosen.
CVD = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                   [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                     [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                   [0.004733, 0.691367, 0.303900]],
    "typical vision": np.eye(3).tolist(),
}


def _lab(linear_rgb):
    """CIE L*a*b* (D65) of a linear sRGB colour."""
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                    [0.0193, 0.1192, 0.9505]]) @ linear_rgb
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


@pytest.mark.parametrize("vision", list(CVD))
def test_colours_drawn_together_stay_distinct_under_colour_blindness(vision):
    # The roles one figure shows at once: current layer, earlier layers, decision boundary, and
    # the classes of the data (at most 5 in a 2-D figure). Each pair must differ by a CIE76
    # colour difference of at least 8 (a just-noticeable difference is about 2.3).
    roles = {"layer": plot.LAYER_COLOR, "earlier layers": plot.EARLIER_COLOR,
             "decision": plot.DECISION_COLOR,
             **{f"class {i}": c for i, c in enumerate(plot.CLASS_COLORS[:5])}}
    seen = {}
    for role, colour in roles.items():
        srgb = np.array(to_rgba(colour)[:3])
        linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
        seen[role] = _lab(np.clip(np.array(CVD[vision]) @ linear, 0, 1))
    names = list(seen)
    close = [(a, b, round(float(np.linalg.norm(seen[a] - seen[b])), 1))
             for i, a in enumerate(names) for b in names[i + 1:]
             if np.linalg.norm(seen[a] - seen[b]) < 8]
    assert not close, f"{vision}: colours too close {close}"


def test_bad_layer_raises(part):
    with pytest.raises(ValueError, match="layer must be"):
        plot.plot_partition(part, layer=7)


# ----------------------------------------------------------------------------------------
# the forest plot: what is drawn is what the frame says


def _forest_frame():
    import pandas as pd

    rng = np.random.default_rng(0)
    pts = [rng.normal(m, 0.05, 10) for m in (0.1, -0.05, 0.02)]
    return pd.DataFrame({"group": ["4", "4", "full"], "label": ["BN", "noise", "BN"],
                         "color": [plot.ARM_STYLES[a]["color"] for a in ("bn", "noise", "bn")],
                         "mean": [p.mean() for p in pts], "lo": [p.min() for p in pts],
                         "hi": [p.max() for p in pts], "open": [False, True, False], "points": pts})


def test_forest_draws_every_interval_mean_and_seed():
    frame = _forest_frame()
    fig, ax = plt.subplots()
    y = plot.forest(ax, frame, group="group", hollow="open", equivalence=0.01)
    # a gap between the groups, the first row on top, one tick per group
    assert y[0] > y[1] > y[2] and (y[1] - y[2]) > (y[0] - y[1])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["4", "full"]
    # per-seed points: one scatter per row, each at that row's height, with the row's values
    dots = [c for c in ax.collections if c.get_offsets().shape[0] == 10]
    assert len(dots) == 3
    for c, (_, row), yi in zip(dots, frame.iterrows(), y):
        xy = np.asarray(c.get_offsets())
        assert np.allclose(np.sort(xy[:, 0]), np.sort(row["points"])) and np.all(np.abs(xy[:, 1] - yi) < 0.3)
    # intervals: a line from lo to hi at the row's height; means: a dot, open where asked
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 2 and ln.get_ydata()[0] == ln.get_ydata()[1]]
    assert sorted((ln.get_xdata()[0], ln.get_xdata()[1]) for ln in lines) == \
        sorted(zip(frame["lo"], frame["hi"]))
    dots = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
    assert [d.get_xdata()[0] for d in dots] == list(frame["mean"])
    assert [d.get_markerfacecolor() == "white" for d in dots] == [False, True, False]
    # the zero line, and one legend entry per label
    assert any(np.allclose(ln.get_xdata(), 0) for ln in ax.get_lines())
    assert [t.get_text() for t in ax.legend().get_texts()] == ["BN", "noise"]
    plt.close(fig)


def test_forest_refuses_a_mean_outside_its_interval():
    frame = _forest_frame()
    frame.loc[0, "mean"] = frame.loc[0, "hi"] + 1
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="inside their intervals"):
        plot.forest(ax, frame)
    with pytest.raises(ValueError, match="no column"):
        plot.forest(ax, frame.drop(columns="color"))
    plt.close(fig)
