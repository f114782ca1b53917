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
    "MODE_PAIR_BATCH_SIZES",
    "MODE_PAIR_MOMENTA",
    "MODE_PAIR_STEPS",
    "MODE_PAIR_FRAMES",
    "mode_pair_frame",
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


# ----------------------------------------------------------------------------------------
# chapter 5

MODE_PAIR_BATCH_SIZES = (4, 16, 64)
"""The batch sizes of chapter 5's training runs behind :func:`mode_pair_frame`."""
MODE_PAIR_MOMENTA = (0.01, 0.1, 0.5)
"""The momenta of the running statistics :func:`mode_pair_frame` can show."""
MODE_PAIR_STEPS = (0, 20, 50, 100, 300)
"""The training steps at which chapter 5 keeps the weights for :func:`mode_pair_frame`."""
MODE_PAIR_FRAMES = sweep(dict(batch_size=16, momentum=0.1, step=300), step=list(MODE_PAIR_STEPS),
                         batch_size=[4, 64], momentum=[0.01, 0.5])
"""The states chapter 5's player shows: training step by step (N = 16, momentum 0.1), then the batch
size, then the momentum (the tests draw each)."""


def mode_pair_frame(
    axes,
    *,
    runs: Mapping,
    X,
    y,
    box,
    batch_size: int = 16,
    momentum: float | None = 0.1,
    step: int = 300,
    seed: int = 0,
) -> dict:
    """Frame function of chapter 5: one BN network in training mode (left) and in evaluation mode (right).

    Left: the exact partition of the network after ``step`` steps with the statistics of one
    mini-batch of ``batch_size`` training points (drawn with a generator seeded by ``seed``), as BN
    computes them in training mode. Right: the same weights with the running statistics that
    torch would hold with ``momentum``, as used at test time; the left panel's decision boundary is
    drawn there too, dashed, and the title says how far the two decision boundaries lie apart
    (:func:`bnlib.geometry.boundary_displacement`, in units of the RMS radius of ``X``). Nothing is
    trained here: the chapter records the runs once
    (:func:`bnlib.experiments.ch5_real.record_run`) and binds them with :func:`functools.partial`.

    Parameters
    ----------
    axes
        Two matplotlib axes, or one (it is then split into two side by side, for
        :func:`bnlib.widgets.live`).
    runs
        Mapping ``batch_size -> RecordedRun`` (anything with ``snapshots`` and
        ``network(step, momentum)``).
    X, y
        Training points (n, 2) and labels (n,): drawn, and the population of the mini-batch.
    box
        The window ``(xmin, xmax, ymin, ymax)``.
    batch_size, momentum, step
        The state: a key of ``runs``, a momentum in [0, 1] (None: cumulative average), a recorded step.
    seed
        Seeds the mini-batch of the left panel.

    Returns
    -------
    dict
        ``train`` and ``eval`` (the two :class:`bnlib.Partition`) and ``shift`` (the distance between
        their decision boundaries in RMS radii; NaN if one of them has none in the box).

    Raises
    ------
    ValueError
        If ``batch_size`` is not a key of ``runs``, ``step`` not a recorded step, or ``axes`` not one or
        two axes.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from bnlib import data
    >>> from bnlib.experiments.ch5_real import record_run
    >>> X, y = data.moons(64, seed=0)
    >>> runs = {8: record_run(X, y, widths=[2, 4], n_classes=1, batch_size=8, steps=3, seed=0, at=[0, 3])}
    >>> fig, axes = plt.subplots(1, 2)
    >>> out = mode_pair_frame(axes, runs=runs, X=X, y=y, box=(-2, 3, -2, 2), batch_size=8, step=3)
    >>> sorted(out), axes[0].get_title().splitlines()[0]
    (['eval', 'shift', 'train'], 'training mode, step 3')
    >>> plt.close(fig)
    """
    from .geometry import boundary_displacement, rms_radius

    func = "mode_pair_frame"
    if batch_size not in runs:
        raise ValueError(f"The 'batch_size' parameter of {func} must be one of the recorded runs "
                         f"{sorted(runs)}; got {batch_size!r}.")
    run = runs[batch_size]
    if step not in run.snapshots:
        raise ValueError(f"The 'step' parameter of {func} must be a recorded step, one of "
                         f"{sorted(run.snapshots)}; got {step!r}.")
    X = check_points(X, 2, "X", func, at_least=2)
    seed = check_seed(seed, "seed", func)
    flat = list(np.atleast_1d(axes).ravel())
    if len(flat) == 1:  # one axes (a live widget's): split it into two panels
        fig, spec = flat[0].figure, flat[0].get_subplotspec()
        flat[0].remove()
        flat = [fig.add_subplot(s) for s in spec.subgridspec(1, 2)]
        fig.set_size_inches(max(fig.get_size_inches()[0], 8.4), fig.get_size_inches()[1])
    if len(flat) != 2:
        raise ValueError(f"The 'axes' parameter of {func} must be one or two axes; got {len(flat)}.")
    net = run.network(step, momentum)
    B = X[np.random.default_rng(seed).choice(len(X), batch_size, replace=False)]
    train = partition(net, box, batch=B)
    evaluation = partition(net, box)
    a, b = train.decision_boundary(), evaluation.decision_boundary()
    shift = boundary_displacement(a, b) / rms_radius(X) if len(a) and len(b) else float("nan")
    plot_partition(train, flat[0], data=X, labels=y, decision=True)
    flat[0].set_title(f"training mode, step {step}\nstatistics of one batch of N = {batch_size}", fontsize=9)
    plot_partition(evaluation, flat[1], data=X, labels=y, decision=True)
    if len(a):
        flat[1].add_collection(LineCollection(a, colors="black", linewidths=1.2, linestyles="--", zorder=3.5))
    name = "cumulative average" if momentum is None else f"momentum {momentum:g}"
    flat[1].set_title(f"evaluation mode: running statistics, {name}\ndecision boundaries "
                      f"{shift:.2f} radii apart (dashed: left's)", fontsize=9)
    return {"train": train, "eval": evaluation, "shift": float(shift)}
