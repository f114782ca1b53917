"""The book's one look: regions, folded hyperplanes by layer, data, decision boundary.

Colours come from the Okabe-Ito palette (safe for the common colour-vision deficiencies)
and mean the same thing in every chapter: the current layer's folded hyperplanes are
blue, earlier layers' are gray, the decision boundary is vermillion, data is black (or
one Okabe-Ito colour per class). Figures have a white background so they stay readable
in the book's dark mode.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.lines import Line2D

from .partition import Partition

__all__ = [
    "OKABE_ITO",
    "LAYER_COLOR",
    "EARLIER_COLOR",
    "DECISION_COLOR",
    "CLASS_COLORS",
    "ARM_STYLES",
    "arm_styles",
    "use_style",
    "plot_partition",
    "plot_layers",
    "legend_handles",
]

OKABE_ITO = {
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
    "black": "#000000",
}
LAYER_COLOR = OKABE_ITO["blue"]
EARLIER_COLOR = "#8c8c8c"
DECISION_COLOR = OKABE_ITO["vermillion"]
CLASS_COLORS = [OKABE_ITO[c] for c in ("orange", "sky blue", "green", "reddish purple", "yellow", "blue")]
ARM_STYLES = {
    "plain": {"color": OKABE_ITO["orange"], "label": "no BN", "linestyle": "-"},
    "bn": {"color": OKABE_ITO["green"], "label": "BN", "linestyle": "--"},
    "bn_init": {"color": OKABE_ITO["blue"], "label": "BN as init only", "linestyle": "-"},
    "lsuv": {"color": OKABE_ITO["reddish purple"], "label": "LSUV", "linestyle": ":"},
    "dropout": {"color": OKABE_ITO["reddish purple"], "label": "dropout", "linestyle": "-."},
    "noise": {"color": OKABE_ITO["blue"], "label": "BN's noise, no BN", "linestyle": ":"},
}
"""Every arm of the book's experiments: its colour, label and line style, the same in every chapter.

Orange is always the network without BN and green the network with BN. Arms that never share a
figure may share a colour (LSUV in chapter 3 and dropout in chapter 4).
"""


def arm_styles(arms, **labels) -> dict[str, dict]:
    """The styles of ``arms`` (keys of :data:`ARM_STYLES`), with labels renamed as ``labels`` says.

    Examples
    --------
    >>> arm_styles(["plain", "bn"], bn="BN throughout")["bn"]["label"]
    'BN throughout'
    """
    out = {}
    for arm in arms:
        if arm not in ARM_STYLES:
            raise ValueError(f"The 'arms' parameter of arm_styles must hold arms of {tuple(ARM_STYLES)}; got {arm!r}.")
        out[arm] = dict(ARM_STYLES[arm], label=labels.get(arm, ARM_STYLES[arm]["label"]))
    return out


_TINTS = ["#fbeacc", "#dcedf9", "#cfeee4", "#f3e1ec", "#fbf8d4", "#e6eef6", "#efefef", "#f7dccc"]


def use_style() -> None:
    """Set matplotlib defaults for the book: white background, readable sizes."""
    mpl.rcParams.update(
        {
            "figure.facecolor": "white",
            "axes.facecolor": "white",
            "savefig.facecolor": "white",
            "figure.dpi": 100,
            "font.size": 10,
            "axes.titlesize": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "animation.embed_limit": 50.0,
        }
    )


def _segments(ax, points: np.ndarray, color, lw: float, zorder: float, label=None):
    if len(points):
        ax.add_collection(LineCollection(points, colors=color, linewidths=lw, zorder=zorder, label=label))


def plot_partition(
    part: Partition,
    ax=None,
    *,
    layer: int | None = None,
    data=None,
    labels=None,
    decision: bool = False,
    fill: bool = True,
    seed: int = 0,
    title: str | None = None,
):
    """Draw a partition in the book's look.

    Parameters
    ----------
    part
        A :class:`bnlib.partition.Partition`.
    ax
        Matplotlib axes (a new figure if None).
    layer
        Draw the partition made by hidden layers ``1..layer``: layer ``layer``'s folded
        hyperplanes in blue, earlier layers' in gray. None means the last hidden layer.
    data, labels
        Points (n, 2) drawn on top; black, or coloured by integer ``labels``.
    decision
        Also draw the decision boundary (the model must end with an output Linear).
    fill
        Fill each region with a light tint (tints drawn at random, seeded by ``seed``).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from bnlib import MLP, partition
    >>> part = partition(MLP([2, 6, 6], seed=0), (-2, 2, -2, 2))
    >>> ax = plot_partition(part, layer=2)
    >>> len(ax.collections) >= 2
    True
    >>> plt.close("all")
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    layer = part.depth if layer is None else part._check_layer(layer)
    xmin, xmax, ymin, ymax = part.box
    if fill:
        polys = part.regions(layer)
        tints = np.random.default_rng(seed).integers(0, len(_TINTS), len(polys))
        ax.add_collection(
            PolyCollection(polys, facecolors=[_TINTS[t] for t in tints], edgecolors="none", zorder=0)
        )
    seg = part.boundaries()
    _segments(ax, seg.points[seg.layer < layer], EARLIER_COLOR, 0.7, 1)
    _segments(ax, seg.points[seg.layer == layer], LAYER_COLOR, 1.3, 2)
    if decision:
        _segments(ax, part.decision_boundary(), DECISION_COLOR, 2.4, 3)
    if data is not None:
        X = np.asarray(data, dtype=np.float64)
        if labels is None:
            ax.scatter(X[:, 0], X[:, 1], s=7, c="black", zorder=4, linewidths=0)
        else:
            colors = np.array(CLASS_COLORS)[np.asarray(labels) % len(CLASS_COLORS)]
            ax.scatter(X[:, 0], X[:, 1], s=12, c=colors, edgecolors="black", linewidths=0.4, zorder=4)
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=8)
    if title is not None:
        ax.set_title(title)
    return ax


def plot_layers(part: Partition, axes: Sequence | None = None, *, data=None, labels=None, **kwargs):
    """One panel per hidden layer, as in the paper's Figure 1: panel l shows layers 1..l.

    Returns the axes. Extra keyword arguments go to :func:`plot_partition`.
    """
    if axes is None:
        _, axes = plt.subplots(1, part.depth, figsize=(2.6 * part.depth, 2.8))
    axes = np.atleast_1d(axes)
    if len(axes) != part.depth:
        raise ValueError(f"need one axis per hidden layer ({part.depth}); got {len(axes)}")
    for layer, ax in enumerate(axes, start=1):
        plot_partition(part, ax, layer=layer, data=data, labels=labels, title=f"layer {layer}", **kwargs)
    return axes


def legend_handles(decision: bool = False, data: bool = True) -> list:
    """Legend entries for the book's colours (pass to ``fig.legend(handles=...)``)."""
    handles = [
        Line2D([], [], color=LAYER_COLOR, lw=1.3, label="this layer's folded hyperplanes"),
        Line2D([], [], color=EARLIER_COLOR, lw=0.7, label="earlier layers"),
    ]
    if decision:
        handles.append(Line2D([], [], color=DECISION_COLOR, lw=2.4, label="decision boundary"))
    if data:
        handles.append(Line2D([], [], color="black", marker="o", ls="", ms=3, label="data"))
    return handles
