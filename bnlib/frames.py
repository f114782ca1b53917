"""Frame functions: one ``draw(ax, **params)`` per exploration of the book.

A frame function draws one state of an exploration on a matplotlib axes and returns what it
computed. :func:`bnlib.widgets.live` redraws it when a control moves (with a kernel);
:func:`bnlib.widgets.player` calls it on a list of parameter settings for the static book.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from torch import nn

from ._validation import check_int, check_points, check_seed
from .data import gaussian_mixture
from .density import Ellipse
from .nets import MLP
from .partition import Partition, partition
from .plot import ARM_STYLES, DECISION_COLOR, EARLIER_COLOR, LAYER_COLOR, OKABE_ITO, plot_partition
from .widgets import BACKGROUND, sweep

__all__ = [
    "random_partition_frame",
    "RANDOM_PARTITION_FRAMES",
    "BN_EXPLORER_FRAMES",
    "BN_EXPLORER_BOX",
    "UNIT_COLOR",
    "explorer_data",
    "bn_explorer_frame",
    "bn_explorer_legend",
    "training_snapshot_frame",
    "training_pair_frame",
    "batch_band_frame",
]

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
        bn = net[3 * (layer - 1) + 1]  # MLP's hidden layer l is Linear, BatchNorm1d, activation
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


def random_partition_frame(
    ax,
    *,
    depth: int = 3,
    width: int = 6,
    layer: int | None = None,
    seed: int = 0,
    negative_slope: float = 0.1,
    box=(-3.0, 3.0, -3.0, 3.0),
):
    """Frame function of chapter 1: the exact partition of a random leaky-ReLU network.

    Draws the partition of ``MLP([2] + [width] * depth)`` up to ``layer`` (the last hidden
    layer if None, clipped to ``depth``), and returns the :class:`Partition`.
    """
    net = MLP([2] + [int(width)] * int(depth), negative_slope=negative_slope, seed=int(seed))
    part = partition(net, box)
    shown = part.depth if layer is None else max(1, min(int(layer), part.depth))
    n_shown = len(part.regions(shown))
    plot_partition(part, ax, layer=shown, seed=seed)
    ax.set_title(
        f"depth {depth}, width {width}, slope {negative_slope:g}, seed {seed}\n"
        f"layers 1-{shown}: {n_shown} regions",
        fontsize=9,
    )
    return part


RANDOM_PARTITION_FRAMES = sweep(  # vary one parameter at a time
    dict(depth=3, width=6, layer=None, seed=0, negative_slope=0.1),
    depth=[1, 2, 3, 4, 5, 6], width=[2, 4, 8, 16, 24], layer=[1, 2, 3], seed=[1, 2, 3, 4],
    negative_slope=[0.0, 0.25, 0.5],
)
"""The states chapter 1's player shows with :func:`random_partition_frame` (the tests draw each)."""


def _bn_explorer_frames() -> list[dict]:
    base = dict(center_x=1.5, center_y=1.0, stretch=1.0, batchnorm=True, layer=2, unit=0, gamma=1.0, beta=0.0,
                seed=0)
    frames = [dict(base, batchnorm=False), base]
    for bn in (False, True):  # move and stretch the data, without and with BN
        frames += [dict(base, batchnorm=bn, center_x=-1.5, center_y=2.5),
                   dict(base, batchnorm=bn, center_x=3.5, center_y=-2.0),
                   dict(base, batchnorm=bn, stretch=0.4)]
    frames += [dict(base, stretch=2.5)]
    frames += [dict(base, layer=1, beta=b) for b in (0.0, 1.0, 2.0, -1.0)]
    frames += [dict(base, layer=1, beta=1.0, gamma=0.5)]
    frames += [dict(base, layer=3), dict(base, layer=4), dict(base, layer=4, batchnorm=False)]
    return frames


BN_EXPLORER_FRAMES = _bn_explorer_frames()
"""The states chapter 2's player shows with :func:`bn_explorer_frame`: the data moves and stretches
(without and with BN), then beta and gamma of one unit change (the tests draw each)."""


# ----------------------------------------------------------------------------------------
# chapters 3 and 4


def _arm_label(arm: str, labels) -> str:
    if labels is not None and arm in labels:
        return str(labels[arm])
    return ARM_STYLES[arm]["label"] if arm in ARM_STYLES else str(arm)


def training_snapshot_frame(
    ax,
    *,
    partitions: Mapping,
    X,
    y,
    arm: str = "bn_init",
    epoch: int = 0,
    labels: Mapping | None = None,
) -> Partition:
    """Frame function of chapter 3: one arm's exact partition after ``epoch`` epochs of training.

    Draws the stored partition ``partitions[arm, epoch]`` with the training points (coloured by
    class) and the decision boundary; the title gives the arm, the epoch, the number of regions
    and the training accuracy (by the partition's own forward pass). Nothing is trained or
    partitioned here: the chapter computes the snapshots' partitions once
    (:func:`bnlib.experiments.ch3_initialization.snapshots`, then :func:`bnlib.partition`) and
    binds them with :func:`functools.partial`.

    Parameters
    ----------
    ax
        Matplotlib axes.
    partitions
        Mapping ``(arm, epoch) -> Partition`` of the stored snapshots.
    X, y
        Training points (n, 2) and their integer labels (n,), drawn and scored.
    arm, epoch
        Which snapshot to draw; ``(arm, epoch)`` must be a key of ``partitions``.
    labels
        The arms' names in the title (``{arm: label}``); default the labels of
        :data:`bnlib.plot.ARM_STYLES`.

    Returns
    -------
    Partition
        The partition drawn.

    Raises
    ------
    ValueError
        If ``(arm, epoch)`` is not a stored snapshot, or ``X`` and ``y`` do not match.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from bnlib import MLP, data, partition
    >>> X, y = data.moons(40, seed=0)
    >>> parts = {("plain", 0): partition(MLP([2, 4], n_classes=1, seed=0), (-2, 3, -2, 2))}
    >>> fig, ax = plt.subplots()
    >>> part = training_snapshot_frame(ax, partitions=parts, X=X, y=y, arm="plain", epoch=0)
    >>> ax.get_title().splitlines()[0]
    'no BN, epoch 0'
    >>> plt.close(fig)
    """
    func = "training_snapshot_frame"
    if (arm, epoch) not in partitions:
        raise ValueError(f"The ('arm', 'epoch') parameters of {func} must name a stored snapshot, one of "
                         f"{sorted(partitions, key=str)}; got {(arm, epoch)!r}.")
    part = partitions[arm, epoch]
    X = check_points(X, 2, "X", func)
    y = np.asarray(y)
    if y.shape != (len(X),):
        raise ValueError(f"The 'y' parameter of {func} must hold one label per point of X, shape "
                         f"({len(X)},); got shape {y.shape}.")
    train_accuracy = float((part.predict(X) == y).mean())
    plot_partition(part, ax, data=X, labels=y, decision=True)
    ax.set_title(f"{_arm_label(arm, labels)}, epoch {epoch}\n{part.n_regions} regions, "
                 f"train accuracy {train_accuracy:.2f}", fontsize=9)
    return part


def training_pair_frame(
    axes,
    *,
    partitions: Mapping,
    X,
    y,
    arms: Sequence[str] = ("plain", "bn_init"),
    epoch: int = 0,
    labels: Mapping | None = None,
) -> list[Partition]:
    """Frame function of chapter 3's player: several arms side by side after ``epoch`` epochs.

    Calls :func:`training_snapshot_frame` on each axis of ``axes`` with the matching arm of
    ``arms`` (same ``partitions``, ``X``, ``y``, ``labels``).

    Parameters
    ----------
    axes
        One matplotlib axes per arm (an array from ``plt.subplots`` is fine).
    partitions, X, y, labels
        As in :func:`training_snapshot_frame`.
    arms
        The arms to draw, left to right.
    epoch
        The snapshot's epoch, the same for every arm.

    Returns
    -------
    list of Partition
        The partitions drawn, one per arm.

    Raises
    ------
    ValueError
        If the number of axes is not the number of arms (or as :func:`training_snapshot_frame`).
    """
    flat = np.atleast_1d(axes).ravel()
    arms = list(arms)
    if len(flat) != len(arms):
        raise ValueError(f"The 'axes' parameter of training_pair_frame must hold one axes per arm "
                         f"({len(arms)}: {arms}); got {len(flat)}.")
    return [training_snapshot_frame(ax, partitions=partitions, X=X, y=y, arm=arm, epoch=epoch, labels=labels)
            for ax, arm in zip(flat, arms)]


def batch_band_frame(
    ax,
    *,
    model: nn.Module,
    X,
    y,
    box,
    batch_size: int,
    seed: int = 0,
    n_batches: int = 20,
    reference: Partition | None = None,
) -> list[np.ndarray]:
    """Frame function of chapter 4: the band a BN network's decision boundary sweeps over mini-batches.

    Draws the partition of ``model`` with the statistics of all of ``X`` (``reference``; its
    lines faded) and the training points, then, in vermillion, the exact decision boundary with
    the statistics of each of ``n_batches`` random mini-batches of ``batch_size`` points of ``X``
    (drawn without replacement, by a generator seeded with ``seed``), as BN computes them in
    training mode.

    Parameters
    ----------
    ax
        Matplotlib axes.
    model
        A trained network with ``BatchNorm1d`` layers and 2-D inputs.
    X, y
        Training points (n, 2), the population the batches are drawn from, and their labels.
    box
        The window ``(xmin, xmax, ymin, ymax)``.
    batch_size
        ``N``, between 2 and ``len(X)`` (``len(X)``: the full batch, every boundary the same).
    seed
        Seeds the draw of the batches.
    n_batches
        How many batches (boundaries) to draw.
    reference
        ``partition(model, box, batch=X)``, computed once by the caller (computed here if None).

    Returns
    -------
    list of ndarray
        The decision boundary's segments (k, 2, 2) for each batch.

    Raises
    ------
    ValueError
        If ``batch_size`` is not an integer between 2 and ``len(X)``, ``n_batches`` not a positive
        integer, ``seed`` negative, or ``X`` not an (n, 2) array of finite numbers.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from bnlib import MLP, data
    >>> X, y = data.moons(32, seed=0)
    >>> net = MLP([2, 4, 4], batchnorm=True, n_classes=1, seed=0)
    >>> fig, ax = plt.subplots()
    >>> segs = batch_band_frame(ax, model=net, X=X, y=y, box=(-2, 3, -2, 2), batch_size=8, n_batches=3)
    >>> len(segs), ax.get_title()
    (3, 'batches of N = 8')
    >>> plt.close(fig)
    """
    func = "batch_band_frame"
    X = check_points(X, 2, "X", func, at_least=2)
    batch_size = check_int(batch_size, "batch_size", func, at_least=2, at_most=len(X))
    n_batches = check_int(n_batches, "n_batches", func, at_least=1)
    seed = check_seed(seed, "seed", func)
    if reference is None:
        reference = partition(model, box, batch=X)
    plot_partition(reference, ax, data=X, labels=y, decision=False)
    for c in ax.collections:  # fade the partition's lines so the band stands out
        if isinstance(c, LineCollection):
            c.set_alpha(0.35)
    for artist in [*ax.collections, *ax.lines, *ax.patches]:
        if artist.get_zorder() < 3:  # under the band (the data, drawn over it, is not)
            artist.set_gid(BACKGROUND)  # the same for every batch size and seed: a live widget draws it once
    rng = np.random.default_rng(seed)
    boundaries = []
    for _ in range(n_batches):
        B = X[rng.choice(len(X), batch_size, replace=False)]
        seg = partition(model, box, batch=B).decision_boundary()
        # One collection per batch, not a line per segment: a thousand Line2D per frame made a live
        # widget's redraw take seconds. Caps and joins as Line2D's, so the picture is the same.
        ax.add_collection(LineCollection(seg, colors=DECISION_COLOR, linewidths=1.4, alpha=0.6, zorder=3,
                                         capstyle="projecting", joinstyle="round"), autolim=False)
        boundaries.append(seg)
    ax.set_title(f"batches of N = {batch_size}", fontsize=10)
    return boundaries
