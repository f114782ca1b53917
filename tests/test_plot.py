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


def test_bad_layer_raises(part):
    with pytest.raises(ValueError, match="layer must be"):
        plot.plot_partition(part, layer=7)
