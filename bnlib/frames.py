"""Frame functions: one ``draw(ax, **params)`` per exploration of the book.

A frame function draws one state of an exploration on a matplotlib axes and returns what it
computed. :func:`bnlib.widgets.live` redraws it when a control moves (with a kernel);
:func:`bnlib.widgets.player` calls it on a list of parameter settings for the static book.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from torch import nn

from .data import gaussian_mixture
from .geometry import Ellipse
from .nets import MLP
from .partition import Partition, partition
from .plot import EARLIER_COLOR, LAYER_COLOR, OKABE_ITO, plot_partition

__all__ = ["BN_EXPLORER_BOX", "UNIT_COLOR", "explorer_data", "bn_explorer_frame", "bn_explorer_legend"]

BN_EXPLORER_BOX = (-4.0, 6.0, -4.0, 5.0)
"""The fixed window of :func:`bn_explorer_frame`: moving the data moves it inside this box."""

UNIT_COLOR = OKABE_ITO["reddish purple"]
"""Colour of the one unit whose gamma and beta the explorer sets."""


def explorer_data(center_x: float = 1.5, center_y: float = 1.0, stretch: float = 1.0, n: int = 200) -> np.ndarray:
    """The explorer's data: a fixed elongated cluster (std 0.6 x 0.2, tilted), moved and stretched.

    Examples
    --------
    >>> X = explorer_data(0.0, 0.0, 2.0)
    >>> bool(np.allclose(X.mean(0), 0.0)), X.shape
    (True, (200, 2))
    """
    if not (np.isfinite(stretch) and stretch > 0):
        raise ValueError(f"stretch must be a finite number > 0; got {stretch!r}")
    base, _ = gaussian_mixture(n, centers=[(0.0, 0.0)], std=(0.6, 0.2), angle=0.5, seed=0)
    base = base - base.mean(0)  # exactly centred, so (center_x, center_y) is the data's mean
    return np.array([center_x, center_y]) + stretch * base


def bn_explorer_frame(
    ax,
    *,
    center_x: float = 1.5,
    center_y: float = 1.0,
    stretch: float = 1.0,
    batchnorm: bool = True,
    layer: int = 1,
    unit: int = 0,
    gamma: float = 1.0,
    beta: float = 0.0,
    seed: int = 0,
    depth: int = 4,
    width: int = 6,
    legend: bool = True,
) -> Partition:
    """Frame function of chapter 2: a random network's partition, with or without BN, over movable data.

    Draws the partition of ``MLP([2] + [width] * depth, batchnorm=batchnorm, seed=seed)`` made
    by layers 1..``layer`` (layer ``layer`` in blue, earlier layers in gray), the data (black)
    and its 95 % ellipse (dashed). With BN, the statistics come from the data, and unit ``unit``
    of layer ``layer`` gets ``gamma`` and ``beta``; its folded hyperplane is drawn in purple
    (:data:`UNIT_COLOR`). Without BN, ``gamma`` and ``beta`` do nothing (the title says so).
    ``legend`` puts :func:`bn_explorer_legend` under the axes. Returns the partition.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> part = bn_explorer_frame(ax, layer=2, unit=3, beta=1.0)
    >>> part.depth, ax.get_xlim() == BN_EXPLORER_BOX[:2]
    (4, True)
    >>> plt.close(fig)
    """
    depth, width = int(depth), int(width)
    if not 1 <= int(layer) <= depth:
        raise ValueError(f"layer must be between 1 and {depth}; got {layer!r}")
    if not 0 <= int(unit) < width:
        raise ValueError(f"unit must be between 0 and {width - 1}; got {unit!r}")
    if not (np.isfinite(gamma) and np.isfinite(beta)) or gamma == 0:
        raise ValueError(f"gamma must be finite and non-zero and beta finite; got gamma={gamma!r}, beta={beta!r}")
    layer, unit = int(layer), int(unit)
    X = explorer_data(center_x, center_y, stretch)
    net = MLP([2] + [width] * depth, batchnorm=bool(batchnorm), seed=int(seed))
    if batchnorm:
        bn = [m for m in net if isinstance(m, nn.BatchNorm1d)][layer - 1]
        with torch.no_grad():
            bn.weight[unit] = float(gamma)
            bn.bias[unit] = float(beta)
    part = partition(net, BN_EXPLORER_BOX, batch=X if batchnorm else None)
    plot_partition(part, ax, layer=layer, data=X, seed=int(seed))
    seg = part.boundaries(layer)
    mine = seg.points[seg.unit == unit]
    if len(mine):
        ax.add_collection(LineCollection(mine, colors=UNIT_COLOR, linewidths=2.6, zorder=3))
    ellipse = Ellipse.from_data(X)
    ax.plot(*ellipse.polygon().T, color="black", lw=1.0, ls="--", zorder=5)
    earlier = "layer 1" if layer == 2 else f"layers 1-{layer - 1}"
    shown = "layer 1" if layer == 1 else f"layer {layer} ({earlier} gray)"
    knobs = f"unit {unit}: $\\gamma$={gamma:g}, $\\beta$={beta:g}" if batchnorm else f"unit {unit} ($\\gamma$, $\\beta$ unused)"
    ax.set_title(
        f"{'with BN' if batchnorm else 'without BN'}, {shown}, seed {seed}\n"
        f"{knobs}; {len(part.regions(layer))} regions",
        fontsize=9,
    )
    if legend:
        ax.legend(handles=bn_explorer_legend(), loc="upper center", bbox_to_anchor=(0.5, -0.07),
                  ncol=2, fontsize=7, frameon=False)
    return part


def bn_explorer_legend() -> list:
    """Legend entries of :func:`bn_explorer_frame`."""
    return [
        Line2D([], [], color=LAYER_COLOR, lw=1.3, label="layer's folded hyperplanes"),
        Line2D([], [], color=EARLIER_COLOR, lw=0.7, label="earlier layers"),
        Line2D([], [], color=UNIT_COLOR, lw=2.6, label="the unit set by $\\gamma$, $\\beta$"),
        Line2D([], [], color="black", lw=1.0, ls="--", label="data's 95 % ellipse"),
        Line2D([], [], color="black", marker="o", ls="", ms=3, label="data"),
    ]
