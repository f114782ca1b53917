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
    "plot_sampled_boundaries",
    "legend_handles",
    "forest",
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
    "plain_he": {"color": OKABE_ITO["vermillion"], "label": "no BN, He init", "linestyle": ":"},
    "plain_std": {"color": OKABE_ITO["orange"], "label": "no BN, standardised inputs", "linestyle": "--"},
    "bn": {"color": OKABE_ITO["green"], "label": "BN", "linestyle": "--"},
    "bn_precise": {"color": OKABE_ITO["green"], "label": "BN, precise statistics", "linestyle": "-"},
    "bn_init": {"color": OKABE_ITO["blue"], "label": "BN as init only", "linestyle": "-"},
    "bn_center": {"color": OKABE_ITO["sky blue"], "label": "BN centring only (init)", "linestyle": "-."},
    "bn_scale": {"color": OKABE_ITO["black"], "label": "BN scaling only (init)", "linestyle": ":"},
    "lsuv": {"color": OKABE_ITO["reddish purple"], "label": "LSUV", "linestyle": ":"},
    "lsuv_unit": {"color": OKABE_ITO["reddish purple"], "label": "LSUV per unit", "linestyle": "--"},
    "dropout": {"color": OKABE_ITO["reddish purple"], "label": "dropout", "linestyle": "-."},
    "noise": {"color": OKABE_ITO["blue"], "label": "BN's noise, no BN", "linestyle": ":"},
    "layernorm": {"color": OKABE_ITO["reddish purple"], "label": "LayerNorm", "linestyle": "-"},
    "groupnorm": {"color": OKABE_ITO["sky blue"], "label": "GroupNorm", "linestyle": "--"},
}
"""Every arm of the book's experiments: its colour, label and line style, the same in every chapter.

Orange is always a network without BN and green a network with BN; a variant of an arm (a
control, another evaluation) keeps its colour with another line style. Arms that never share a
figure may share a colour (LSUV in chapter 3, dropout in chapter 4 and LayerNorm in chapter 5). The He-initialised
control (chapter 2) is vermillion, the decision boundary's colour: it appears only in figures
of measurements, which draw no decision boundary.
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


def _finish(ax, box, data, labels, title):
    """The data (black, or coloured by class) over the drawing, the box as limits, the book's axes."""
    if data is not None:
        X = np.asarray(data, dtype=np.float64)
        if labels is None:
            ax.scatter(X[:, 0], X[:, 1], s=7, c="black", zorder=4, linewidths=0)
        else:
            colors = np.array(CLASS_COLORS)[np.asarray(labels) % len(CLASS_COLORS)]
            ax.scatter(X[:, 0], X[:, 1], s=12, c=colors, edgecolors="black", linewidths=0.4, zorder=4)
    xmin, xmax, ymin, ymax = box
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=8)
    if title is not None:
        ax.set_title(title)
    return ax


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
    return _finish(ax, (xmin, xmax, ymin, ymax), data, labels, title)


def plot_sampled_boundaries(
    model,
    ax=None,
    *,
    box,
    data=None,
    labels=None,
    decision: bool = True,
    resolution: int = 301,
    title: str | None = None,
):
    """Draw a 2-input network's boundaries by sampling it on a grid: for networks the exact engine refuses.

    Every unit's boundary is the zero level set of its activation's input (the inputs of every
    ``ReLU``/``LeakyReLU`` module, read by forward hooks), traced by ``contour`` on a
    ``resolution`` x ``resolution`` grid of ``box``: the last hidden layer's in blue, earlier
    layers' in gray, the decision boundary (a single output's zero level) in vermillion, as
    :func:`plot_partition` draws an exact partition. Curved boundaries (LayerNorm, GroupNorm)
    come out curved; straight ones are accurate to the grid's spacing. The model is evaluated in
    ``eval()`` mode, in float64, on a copy.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from bnlib import MLP
    >>> ax = plot_sampled_boundaries(MLP([2, 4], n_classes=1, seed=0), box=(-2, 2, -2, 2), resolution=41)
    >>> len(ax.collections) >= 1
    True
    >>> plt.close("all")
    """
    import copy

    import torch
    from torch import nn

    from ._validation import check_box, check_int

    xmin, xmax, ymin, ymax = check_box(box, "box", "plot_sampled_boundaries")
    resolution = check_int(resolution, "resolution", "plot_sampled_boundaries", at_least=3)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    net = copy.deepcopy(model).double().eval()
    acts = [m for m in net.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))]
    gx, gy = np.meshgrid(np.linspace(xmin, xmax, resolution), np.linspace(ymin, ymax, resolution))
    grid = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], axis=1))
    inputs = []
    hooks = [a.register_forward_hook(lambda mod, inp, out: inputs.append(inp[0].numpy())) for a in acts]
    try:
        with torch.no_grad():
            out = net(grid).numpy()
    finally:
        for h in hooks:
            h.remove()
    for i, h in enumerate(inputs):
        color, lw, z = (LAYER_COLOR, 1.3, 2) if i == len(inputs) - 1 else (EARLIER_COLOR, 0.7, 1)
        h = h.reshape(len(grid), -1)
        for k in range(h.shape[1]):
            values = h[:, k].reshape(gx.shape)
            if values.min() < 0 < values.max():
                ax.contour(gx, gy, values, levels=[0.0], colors=[color], linewidths=lw, zorder=z)
    if decision and out.shape[1] == 1 and out.min() < 0 < out.max():
        ax.contour(gx, gy, out[:, 0].reshape(gx.shape), levels=[0.0], colors=[DECISION_COLOR], linewidths=2.4,
                   zorder=3)
    return _finish(ax, (xmin, xmax, ymin, ymax), data, labels, title)


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


def forest(
    ax,
    frame,
    *,
    group: str | None = None,
    label: str = "label",
    color: str = "color",
    hollow: str | None = None,
    points: str | None = "points",
    equivalence: float | None = None,
    seed: int = 0,
):
    """A forest plot: one row per comparison, its mean, its interval and its per-seed values.

    Rows are drawn from top to bottom in the order of ``frame`` (a ``DataFrame`` with columns
    ``mean``, ``lo``, ``hi``, and ``label`` and ``color`` for each row): the interval as a line,
    the mean as a dot (an open circle where the ``hollow`` column is true), and each seed's value
    from the ``points`` column (an array per row; None: no points) as a small dot scattered a
    little up and down (seeded), so a failed seed stands out. A vertical line marks 0, and a gray
    band ``[-equivalence, equivalence]`` the equivalence margin if given. With ``group`` (a
    column), consecutive rows of one group are drawn together, a gap separates groups, and the
    y axis names the groups; the rows' labels then go to the legend (one entry per label:
    ``ax.legend()``). Without it, the y axis names each row.

    Returns the y position of every row (top row highest).

    Examples
    --------
    >>> import pandas as pd
    >>> fig, ax = plt.subplots()
    >>> f = pd.DataFrame({"mean": [0.1, -0.2], "lo": [0.0, -0.3], "hi": [0.2, -0.1], "label": ["a", "b"],
    ...                   "color": ["C0", "C1"], "points": [np.array([0.0, 0.2]), np.array([-0.3, -0.1])]})
    >>> forest(ax, f).tolist(), [t.get_text() for t in ax.get_yticklabels()]
    ([1.0, 0.0], ['a', 'b'])
    >>> plt.close(fig)
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"The 'frame' parameter of forest must be a DataFrame; got {type(frame).__name__}.")
    needed = ["mean", "lo", "hi", label, color] + ([group] if group else []) + ([points] if points else []) \
        + ([hollow] if hollow else [])
    missing = [k for k in needed if k not in frame.columns]
    if missing:
        raise ValueError(f"The 'frame' given to forest has no column {missing[0]!r}; its columns are "
                         f"{sorted(map(str, frame.columns))}.")
    if len(frame) == 0:
        raise ValueError("The 'frame' given to forest has no rows.")
    lo, mean, hi = (frame[k].to_numpy(dtype=float) for k in ("lo", "mean", "hi"))
    if not (np.all(np.isfinite(mean)) and np.all(lo <= mean + 1e-12) and np.all(mean <= hi + 1e-12)):
        raise ValueError("forest needs finite means inside their intervals (lo <= mean <= hi).")
    # positions: one unit per row, half a unit more between groups; the first row on top
    keys = frame[group].tolist() if group else [None] * len(frame)
    gaps = np.r_[0.0, [0.6 if a != b else 0.0 for a, b in zip(keys[:-1], keys[1:])]]
    y = -(np.arange(len(frame)) + np.cumsum(gaps))
    y = y - y.min()
    rng = np.random.default_rng(seed)
    if equivalence is not None:
        ax.axvspan(-equivalence, equivalence, color="#e6e6e6", lw=0, zorder=0)
    ax.axvline(0.0, color="black", lw=0.8, zorder=1)
    seen = set()
    for i in range(len(frame)):
        c, name = frame[color].iloc[i], str(frame[label].iloc[i])
        if points and frame[points].iloc[i] is not None:
            v = np.asarray(frame[points].iloc[i], dtype=float).ravel()
            v = v[np.isfinite(v)]
            ax.scatter(v, y[i] + rng.uniform(-0.22, 0.22, len(v)), s=7, color=c, alpha=0.45, lw=0, zorder=2)
        ax.plot([lo[i], hi[i]], [y[i], y[i]], color=c, lw=2.2, solid_capstyle="butt", zorder=3)
        open_dot = bool(frame[hollow].iloc[i]) if hollow else False
        first = group is not None and name not in seen
        seen.add(name)
        ax.plot([mean[i]], [y[i]], "o", ms=5, color=c, mfc="white" if open_dot else c, mew=1.4, zorder=4,
                label=name if first else None)
    if group:
        ticks = {}
        for key, pos in zip(keys, y):
            ticks.setdefault(key, []).append(pos)
        ax.set_yticks([np.mean(v) for v in ticks.values()], [str(k) for k in ticks])
    else:
        ax.set_yticks(y, frame[label].astype(str).tolist())
    ax.set_ylim(y.min() - 0.7, y.max() + 0.7)
    return y
