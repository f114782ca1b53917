"""Chapter 2's experiments: what BN does to the partition of random networks.

Each runner is seeded, shows a progress bar, and returns a tidy table (a dict of equal-length
numpy arrays, one row per network and layer or setting); :mod:`bnlib.stats` summarises it and
the chapter draws it.

* :func:`layer_experiment`: exact 2-D partitions with and without BN, measured layer by layer
  (distance from the data to the partition, regions near the data, region density);
* :func:`shift_scale_experiment`: does the partition follow the data when it moves or scales?
* :func:`digits_experiment`: the same questions on 64-dimensional digit images;
* :func:`matched_cells`: layers of two arms with as many regions on the data (to compare
  quantisation errors at a matched number of cells).

Every runner compares the arms of :data:`ARMS` (a subset with ``arms=``): the network without
BN with torch's default weights (``"plain"``), the same without BN with He weights
(``"plain_he"``, the baseline at its best: chapter 1 shows torch's default dies with depth), and
with BN (``"bn"``, torch's default weights). :func:`network` builds one. Tables have an ``arm``
column and, for older readers, ``batchnorm`` (``arm == "bn"``). The colours and labels of
``"plain"`` and ``"bn"`` are :data:`bnlib.plot.ARM_STYLES`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .._validation import check_box, check_choice, check_choices, check_int, check_ints, check_number, check_seed, check_seeds
from ..density import Ellipse, region_density
from ..geometry import Hyperplanes, _distance_from, _local_pieces, quantization_error, ray_distance, regions_hit, rms_radius
from ..nets import MLP, affine_layers, check_points
from ..partition import partition
from .ch1_counting import counting_network

__all__ = ["ARMS", "network", "layer_experiment", "shift_scale_experiment", "digits_experiment", "matched_cells"]

ARMS = ("plain", "plain_he", "bn")
"""The arms: the random network without BN with torch's default weights (``"plain"``); without BN
with He (Kaiming-normal) weights for the leaky-ReLU (``"plain_he"``, as
:func:`bnlib.experiments.ch1_counting.counting_network` draws them, biases unchanged); and with BN
(``"bn"``), with the same ``Linear`` weights as ``"plain"`` (BN draws no random numbers)."""


def network(arm: str, widths: Sequence[int], *, seed: int, negative_slope: float = 0.1) -> nn.Sequential:
    """The random network of one arm: ``MLP(widths, seed=seed)`` without BN, with BN, or with He weights.

    For 2-D inputs and equal widths, the ``"plain_he"`` network is
    :func:`~bnlib.experiments.ch1_counting.counting_network` with ``init="he"`` (chapter 1's); for
    other shapes its weights are redrawn with the same recipe and the same seeded generator.

    Parameters
    ----------
    arm
        One of :data:`ARMS`.
    widths
        ``[d_in, d_1, ..., d_L]``, as :func:`bnlib.MLP` takes them.
    seed
        Seed of the weights and biases.
    negative_slope
        Leaky-ReLU slope (also the ``a`` of He's variance ``2 / ((1 + a^2) fan_in)``).

    Examples
    --------
    >>> [type(m).__name__ for m in network("bn", [2, 3], seed=0)]
    ['Linear', 'BatchNorm1d', 'LeakyReLU']
    >>> w = network("plain_he", [64, 32, 32], seed=0)[2].weight.detach()
    >>> bool(0.15 < float(w.std()) < 0.35)          # He: std sqrt(2 / (1.01 * 32)) ~ 0.25
    True
    """
    func = "network"
    arm = check_choice(arm, "arm", func, ARMS)
    widths = check_ints(widths, "widths", func, at_least=1, min_len=2)
    seed = check_seed(seed, "seed", func)
    s = check_number(negative_slope, "negative_slope", func, low=0)
    if arm != "plain_he":
        return MLP(widths, batchnorm=arm == "bn", negative_slope=s, seed=seed)
    if widths[0] == 2 and len(set(widths[1:])) == 1:
        return counting_network(len(widths) - 1, widths[1], seed=seed, negative_slope=s, init="he")
    net = MLP(widths, negative_slope=s, seed=seed)  # counting_network's recipe, any shape
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, a=s, nonlinearity="leaky_relu", generator=generator)
    return net


def _arms(arms, func: str) -> list[str]:
    arms = check_choices(arms, "arms", func, ARMS)
    if len(set(arms)) != len(arms):
        raise ValueError(f"The 'arms' parameter of {func} must not repeat an arm; got {list(arms)!r}.")
    return list(arms)

_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} networks"  # no timings: outputs stay reproducible


def layer_experiment(
    X,
    *,
    depth: int = 8,
    width: int = 6,
    seeds: Sequence[int] = range(100),
    arms: Sequence[str] = ARMS,
    box=(-3.0, 6.0, -3.0, 5.0),
    coverage: float = 0.95,
    n_points: int = 100,
    negative_slope: float = 0.1,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Exact partitions of random networks with and without BN, measured layer by layer.

    For every seed and arm, :func:`network` builds ``MLP([2] + [width] * depth, seed=seed)``:
    without BN (torch's default weights, or He weights), and with BN using the statistics of
    ``X`` (the same Linear weights as ``"plain"``: BN draws no random numbers). The partition of ``box`` made by layers 1..l is measured for every l. Because layers after
    l do not change that partition, layer l of a depth-8 network is also the last layer of a
    depth-l network: the table covers depths 1..depth too.

    Parameters
    ----------
    X
        The data (n, 2); also the BN batch.
    depth, width
        Hidden layers and units per layer.
    seeds
        One network per seed and arm.
    arms
        Some of :data:`ARMS` (default: all three), in the order of the rows.
    box
        ``(xmin, xmax, ymin, ymax)``, partitioned exactly.
    coverage
        The data's neighbourhood is :meth:`Ellipse.from_data` with this coverage.
    n_points
        Distances are measured from the first ``n_points`` data points (all if fewer).
    negative_slope
        Leaky-ReLU slope.
    progress
        Show a progress bar (one step per network).

    Returns
    -------
    dict of numpy arrays, one row per (arm, seed, layer)
        ``arm``, ``batchnorm`` (``arm == "bn"``), ``seed``, ``layer``; ``regions`` in the box; ``distance``: median
        over the (first ``n_points``) data points of the exact distance to the nearest boundary of layers 1..layer;
        ``units_drawn``: how many of layer ``layer``'s units draw a folded hyperplane inside
        the box (a unit whose pre-activation keeps one sign over the box draws none);
        ``meeting``: regions that overlap the ellipse;
        ``density_inside``, ``density_outside``: see :func:`region_density`; ``occupied``:
        regions holding at least one data point; ``quantization``: see
        :func:`quantization_error`.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(50, 2)) * 0.3 + 1.0
    >>> t = layer_experiment(X, depth=2, width=3, seeds=[0, 1], arms=["plain", "bn"], progress=False)
    >>> t["arm"].tolist(), t["layer"].tolist()
    (['plain', 'plain', 'plain', 'plain', 'bn', 'bn', 'bn', 'bn'], [1, 2, 1, 2, 1, 2, 1, 2])
    >>> bool(np.all(np.diff(t["distance"][:2]) <= 0))    # more layers, more boundaries
    True
    """
    X = check_points(X, 2, "X", "layer_experiment")
    depth, width = check_int(depth, "depth", "layer_experiment", at_least=1), check_int(width, "width", "layer_experiment", at_least=1)
    seeds = check_seeds(seeds, "seeds", "layer_experiment")
    arms = _arms(arms, "layer_experiment")
    box = check_box(box, "box", "layer_experiment")
    ellipse = Ellipse.from_data(X, coverage)
    probe = X[: check_int(n_points, "n_points", "layer_experiment", at_least=1)]
    cols: dict[str, list] = {k: [] for k in (
        "arm", "batchnorm", "seed", "layer", "regions", "distance", "units_drawn", "meeting",
        "density_inside", "density_outside", "occupied", "quantization")}
    runs = [(arm, s) for arm in arms for s in seeds]
    for arm, seed in tqdm(runs, desc="partitions", disable=not progress, bar_format=_BAR):
        bn = arm == "bn"
        net = network(arm, [2] + [width] * depth, seed=seed, negative_slope=negative_slope)
        part = partition(net, box, batch=X if bn else None)
        nearest = np.full(len(probe), np.inf)
        for layer in range(1, depth + 1):
            nearest = np.minimum(nearest, part.distance_to_boundary(probe, layer))
            dens = region_density(part, ellipse, layer=layer)
            cols["arm"].append(arm)
            cols["batchnorm"].append(bn)
            cols["seed"].append(seed)
            cols["layer"].append(layer)
            cols["regions"].append(dens["regions"])
            cols["distance"].append(float(np.median(nearest)))
            cols["units_drawn"].append(len(np.unique(part.boundaries(layer).unit)))
            cols["meeting"].append(dens["meeting"])
            cols["density_inside"].append(dens["density_inside"])
            cols["density_outside"].append(dens["density_outside"])
            cols["occupied"].append(regions_hit(part.layers, X, layer=layer))
            cols["quantization"].append(quantization_error(part.layers, X, layer=layer))
    return {k: np.asarray(v) for k, v in cols.items()}


def shift_scale_experiment(
    X,
    *,
    shifts: Sequence[float] = (0.0, 1.0, 2.0, 4.0, 8.0),
    scales: Sequence[float] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
    seeds: Sequence[int] = range(100),
    arms: Sequence[str] = ARMS,
    depth: int = 4,
    width: int = 6,
    n_probe: int = 500,
    coverage: float = 0.95,
    negative_slope: float = 0.1,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Does the partition follow the data when the data moves or changes scale?

    The data ``X`` is moved so that its centre lies at distance ``r`` from the origin (along the
    direction of its own centre), for each ``r`` in ``shifts``; and scaled about its centre by
    each factor in ``scales``. For each setting, seed and arm, the network ``MLP([2] + [width] *
    depth, seed=seed)`` of :func:`network` (without BN, torch's default or He weights; with BN on
    the moved data) is measured with two numbers
    that need no partition (so that many settings stay cheap):

    * ``regions``: the regions met by ``n_probe`` points spread uniformly over the data's
      ellipse (the same points in the ellipse's own coordinates for every setting);
    * ``distance``: the median over the data of the exact distance along a random direction to
      the first boundary (:func:`ray_distance`), in units of the data's :func:`rms_radius`.

    Returns
    -------
    dict of numpy arrays, one row per (kind, value, arm, seed)
        ``kind`` ("shift" or "scale"), ``value``, ``arm``, ``batchnorm`` (``arm == "bn"``),
        ``seed``, ``regions``, ``distance``; sorted by kind, value, arm (in the order of
        ``arms``), seed.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(60, 2)) * 0.3 + 1.0
    >>> t = shift_scale_experiment(X, shifts=[0, 5], scales=[2], seeds=[0], arms=["plain", "bn"], progress=False)
    >>> t["kind"].tolist(), t["value"].tolist(), t["arm"].tolist()
    (['shift', 'shift', 'shift', 'shift', 'scale', 'scale'], [0.0, 0.0, 5.0, 5.0, 2.0, 2.0], ['plain', 'bn', 'plain', 'bn', 'plain', 'bn'])
    """
    X = check_points(X, 2, "X", "shift_scale_experiment")
    seeds = check_seeds(seeds, "seeds", "shift_scale_experiment")
    arms = _arms(arms, "shift_scale_experiment")
    depth, width = check_int(depth, "depth", "shift_scale_experiment", at_least=1), check_int(width, "width", "shift_scale_experiment", at_least=1)
    n_probe = check_int(n_probe, "n_probe", "shift_scale_experiment", at_least=1)
    shifts = np.asarray(shifts, dtype=np.float64).ravel()
    scales = np.asarray(scales, dtype=np.float64).ravel()
    if not np.all(np.isfinite(shifts)) or np.any(shifts < 0):
        raise ValueError(f"shifts are distances from the origin: finite numbers >= 0; got {shifts.tolist()}")
    if not np.all(np.isfinite(scales)) or np.any(scales <= 0):
        raise ValueError(f"scales must be finite numbers > 0; got {scales.tolist()}")
    centre = X.mean(0)
    norm = np.linalg.norm(centre)
    direction = centre / norm if norm > 0 else np.array([1.0, 0.0])
    settings = [("shift", float(r), X - centre + r * direction) for r in shifts]
    settings += [("scale", float(s), centre + s * (X - centre)) for s in scales]
    base = Ellipse.from_data(X, coverage)
    disk = base.whiten(base.sample(n_probe, seed=0))  # probe points in the ellipse's own coordinates
    cols: dict[str, list] = {k: [] for k in ("kind", "value", "arm", "batchnorm", "seed", "regions", "distance")}
    runs = [(s, arm) for s in seeds for arm in arms]
    for seed, arm in tqdm(runs, desc="networks", disable=not progress, bar_format=_BAR):
        bn = arm == "bn"
        net = network(arm, [2] + [width] * depth, seed=seed, negative_slope=negative_slope)
        U = np.random.default_rng(seed).normal(size=X.shape)
        for kind, value, Xs in settings:
            layers = affine_layers(net, batch=Xs if bn else None)
            E = Ellipse.from_data(Xs, coverage)
            probe = E.from_disk(disk)
            cols["kind"].append(kind)
            cols["value"].append(value)
            cols["arm"].append(arm)
            cols["batchnorm"].append(bn)
            cols["seed"].append(seed)
            cols["regions"].append(regions_hit(layers, probe))
            cols["distance"].append(float(np.median(ray_distance(layers, Xs, U))) / rms_radius(Xs))
    order = np.lexsort((np.array(cols["seed"]), np.array([arms.index(a) for a in cols["arm"]]),
                        np.array(cols["value"]), np.array([k != "shift" for k in cols["kind"]])))
    return {k: np.asarray(v)[order] for k, v in cols.items()}


def digits_experiment(
    X,
    *,
    widths: Sequence[int] = (32, 32, 32),
    seeds: Sequence[int] = range(100),
    arms: Sequence[str] = ARMS,
    n_points: int = 200,
    negative_slope: float = 0.1,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Random networks on high-dimensional data, with and without BN (statistics from ``X``).

    For every seed and arm, ``MLP([d] + widths, seed=seed)`` of :func:`network` (without BN,
    torch's default or He weights; with BN, batch: all of ``X``) is measured on every hidden layer l, in the layer's input space and in the input
    space:

    * ``cut``: fraction of layer l's units whose hyperplane has data on both sides;
    * ``offset``: median over layer l's units of the distance from the data's centroid (in the
      layer's input space) to the unit's hyperplane, divided by the RMS distance of the data to
      that hyperplane (0 for BN with ``beta = 0``);
    * ``ray``: median over ``n_points`` samples of the exact distance along a random direction
      to the first boundary of layers 1..l (:func:`ray_distance`), over the data's
      :func:`rms_radius`;
    * ``local``: median over the same samples of the local-linear distance to the nearest
      folded hyperplane of layers 1..l (:func:`local_distance`), over the same radius.

    Returns
    -------
    dict of numpy arrays, one row per (arm, seed, layer)
        ``arm``, ``batchnorm`` (``arm == "bn"``), ``seed``, ``layer``, ``cut``, ``offset``,
        ``ray``, ``local``.

    Examples
    --------
    >>> X = np.random.default_rng(0).uniform(size=(80, 10))
    >>> t = digits_experiment(X, widths=[8, 8], seeds=[0], arms=["plain", "bn"], n_points=20, progress=False)
    >>> t["arm"].tolist(), t["layer"].tolist(), t["offset"][2:].round(12).tolist()
    (['plain', 'plain', 'bn', 'bn'], [1, 2, 1, 2], [0.0, 0.0])
    """
    X = check_points(X, None, "X", "digits_experiment", at_least=2)
    widths = check_ints(widths, "widths", "digits_experiment", at_least=1)
    seeds = check_seeds(seeds, "seeds", "digits_experiment")
    arms = _arms(arms, "digits_experiment")
    n_points = min(check_int(n_points, "n_points", "digits_experiment", at_least=1), len(X))
    radius = rms_radius(X)
    cols: dict[str, list] = {k: [] for k in ("arm", "batchnorm", "seed", "layer", "cut", "offset", "ray", "local")}
    runs = [(arm, s) for arm in arms for s in seeds]
    for arm, seed in tqdm(runs, desc="networks", disable=not progress, bar_format=_BAR):
        bn = arm == "bn"
        rng = np.random.default_rng(seed)
        pick = X[rng.choice(len(X), n_points, replace=False)]
        U = rng.normal(size=pick.shape)
        net = network(arm, [X.shape[1]] + widths, seed=seed, negative_slope=negative_slope)
        layers = affine_layers(net, batch=X if bn else None)
        local = [_distance_from(h, grad) for h, grad in _local_pieces(layers, pick, len(widths))]
        nearest = np.full(n_points, np.inf)
        z = X
        for layer, lay in enumerate(layers[: len(widths)], start=1):
            sd = Hyperplanes(lay.W, -lay.b).signed_distance(z)  # (n, k), in the layer's input space
            nearest = np.minimum(nearest, local[layer - 1].min(1))
            cols["arm"].append(arm)
            cols["batchnorm"].append(bn)
            cols["seed"].append(seed)
            cols["layer"].append(layer)
            cols["cut"].append(float(np.mean((sd > 0).any(0) & (sd < 0).any(0))))
            cols["offset"].append(float(np.median(np.abs(sd.mean(0)) / sd.std(0))))
            cols["ray"].append(float(np.median(ray_distance(layers, pick, U, layer=layer))) / radius)
            cols["local"].append(float(np.median(nearest)) / radius)
            z = lay(z)
    return {k: np.asarray(v) for k, v in cols.items()}


def matched_cells(runs, arm: str, against: str, *, tolerance: float = 0.1) -> dict[str, np.ndarray]:
    """One layer per seed and arm at which two arms hold the data in about as many regions.

    A partition with more regions on the data quantises it more finely whatever their
    placement; to compare the placement, compare layers with as many occupied regions. For each
    seed, among all pairs (layer of ``arm``, layer of ``against``) of a :func:`layer_experiment`
    table, the pair whose ``occupied`` counts are closest (ratio nearest 1; ties: the shallower
    layers) is kept when the counts differ by at most the factor ``1 + tolerance``; seeds
    without such a pair are left out.

    Parameters
    ----------
    runs
        A table of :func:`layer_experiment` (dict of arrays or DataFrame) holding both arms.
    arm, against
        The two arms.
    tolerance
        Largest relative difference of the two counts (0: equal counts).

    Returns
    -------
    dict of numpy arrays
        The rows of ``runs`` that were matched: two per matched seed (``arm``'s, then
        ``against``'s), every column of ``runs``.

    Examples
    --------
    >>> runs = {"arm": np.array(["a"] * 3 + ["b"] * 3), "seed": np.zeros(6, int),
    ...         "layer": np.array([1, 2, 3] * 2), "occupied": np.array([12, 40, 90, 5, 9, 13])}
    >>> m = matched_cells(runs, "a", "b", tolerance=0.1)
    >>> m["arm"].tolist(), m["layer"].tolist(), m["occupied"].tolist()
    (['a', 'b'], [1, 3], [12, 13])
    """
    func = "matched_cells"
    tolerance = check_number(tolerance, "tolerance", func, low=0)
    cols = {k: np.asarray(v) for k, v in (runs.items() if isinstance(runs, dict) else runs.to_dict("series").items())}
    for key in ("arm", "seed", "layer", "occupied"):
        if key not in cols:
            raise ValueError(f"The 'runs' parameter of {func} must be a layer_experiment table; it has no {key!r} column.")
    for name in (arm, against):
        if not np.any(cols["arm"] == name):
            raise ValueError(f"The 'runs' parameter of {func} must hold rows of arm {name!r}; got the arms "
                             f"{sorted(set(cols['arm'].tolist()))}.")
    keep = []
    for seed in np.unique(cols["seed"]):
        rows = [np.flatnonzero((cols["arm"] == name) & (cols["seed"] == seed)) for name in (arm, against)]
        if not all(len(r) for r in rows):
            continue
        a, b = (r[np.argsort(cols["layer"][r], kind="stable")] for r in rows)
        gap = np.abs(np.log(cols["occupied"][a][:, None] / cols["occupied"][b][None, :]))
        i, j = divmod(int(np.argmin(gap + 1e-9 * (np.arange(len(a))[:, None] + np.arange(len(b))[None, :]))), len(b))
        if gap[i, j] <= np.log1p(tolerance) + 1e-12:
            keep += [a[i], b[j]]
    keep = np.asarray(keep, dtype=int)
    return {k: v[keep] for k, v in cols.items()}
