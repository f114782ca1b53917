"""Chapter 2's experiments: what BN does to the partition of random networks.

Each runner is seeded, shows a progress bar, and returns a tidy table (a dict of equal-length
numpy arrays, one row per network and layer or setting); :mod:`bnlib.stats` summarises it and
the chapter draws it.

* :func:`layer_experiment`: exact 2-D partitions with and without BN, measured layer by layer
  (distance from the data to the partition, regions near the data, region density);
* :func:`shift_scale_experiment`: does the partition follow the data when it moves or scales?
* :func:`digits_experiment`: the same questions on 64-dimensional digit images.

The arms are ``batchnorm=False`` / ``True``; their colours and labels are
:data:`bnlib.plot.ARM_STYLES` (``"plain"``, ``"bn"``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from .._validation import check_box, check_int, check_ints, check_seeds
from ..density import Ellipse, region_density
from ..geometry import Hyperplanes, _distance_from, _local_pieces, quantization_error, ray_distance, regions_hit, rms_radius
from ..nets import MLP, affine_layers, check_points
from ..partition import partition

__all__ = ["ARMS", "layer_experiment", "shift_scale_experiment", "digits_experiment"]

ARMS = ("plain", "bn")
"""The arms: the random network without BN (torch's default weights) and with BN (same weights)."""

_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} networks"  # no timings: outputs stay reproducible


def layer_experiment(
    X,
    *,
    depth: int = 8,
    width: int = 6,
    seeds: Sequence[int] = range(100),
    box=(-3.0, 6.0, -3.0, 5.0),
    coverage: float = 0.95,
    n_points: int = 100,
    negative_slope: float = 0.1,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Exact partitions of random networks with and without BN, measured layer by layer.

    For every seed, ``MLP([2] + [width] * depth, seed=seed)`` is built twice: without BN, and
    with BN using the statistics of ``X`` (the same Linear weights: BN draws no random numbers).
    The partition of ``box`` made by layers 1..l is measured for every l. Because layers after
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
    dict of numpy arrays, one row per (batchnorm, seed, layer)
        ``batchnorm`` (bool), ``seed``, ``layer``; ``regions`` in the box; ``distance``: median
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
    >>> t = layer_experiment(X, depth=2, width=3, seeds=[0, 1], progress=False)
    >>> t["batchnorm"].tolist(), t["layer"].tolist()
    ([False, False, False, False, True, True, True, True], [1, 2, 1, 2, 1, 2, 1, 2])
    >>> bool(np.all(np.diff(t["distance"][:2]) <= 0))    # more layers, more boundaries
    True
    """
    X = check_points(X, 2, "X", "layer_experiment")
    depth, width = check_int(depth, "depth", "layer_experiment", at_least=1), check_int(width, "width", "layer_experiment", at_least=1)
    seeds = check_seeds(seeds, "seeds", "layer_experiment")
    box = check_box(box, "box", "layer_experiment")
    ellipse = Ellipse.from_data(X, coverage)
    probe = X[: check_int(n_points, "n_points", "layer_experiment", at_least=1)]
    cols: dict[str, list] = {k: [] for k in (
        "batchnorm", "seed", "layer", "regions", "distance", "units_drawn", "meeting",
        "density_inside", "density_outside", "occupied", "quantization")}
    runs = [(bn, s) for bn in (False, True) for s in seeds]
    for bn, seed in tqdm(runs, desc="partitions", disable=not progress, bar_format=_BAR):
        net = MLP([2] + [width] * depth, batchnorm=bn, negative_slope=negative_slope, seed=seed)
        part = partition(net, box, batch=X if bn else None)
        nearest = np.full(len(probe), np.inf)
        for layer in range(1, depth + 1):
            nearest = np.minimum(nearest, part.distance_to_boundary(probe, layer))
            dens = region_density(part, ellipse, layer=layer)
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
    each factor in ``scales``. For each setting and seed, the network ``MLP([2] + [width] *
    depth, seed=seed)`` without BN, and with BN on the moved data, is measured with two numbers
    that need no partition (so that many settings stay cheap):

    * ``regions``: the regions met by ``n_probe`` points spread uniformly over the data's
      ellipse (the same points in the ellipse's own coordinates for every setting);
    * ``distance``: the median over the data of the exact distance along a random direction to
      the first boundary (:func:`ray_distance`), in units of the data's :func:`rms_radius`.

    Returns
    -------
    dict of numpy arrays, one row per (kind, value, batchnorm, seed)
        ``kind`` ("shift" or "scale"), ``value``, ``batchnorm``, ``seed``, ``regions``,
        ``distance``.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(60, 2)) * 0.3 + 1.0
    >>> t = shift_scale_experiment(X, shifts=[0, 5], scales=[2], seeds=[0], progress=False)
    >>> t["kind"].tolist(), t["value"].tolist(), t["batchnorm"].tolist()
    (['shift', 'shift', 'shift', 'shift', 'scale', 'scale'], [0.0, 0.0, 5.0, 5.0, 2.0, 2.0], [False, True, False, True, False, True])
    """
    X = check_points(X, 2, "X", "shift_scale_experiment")
    seeds = check_seeds(seeds, "seeds", "shift_scale_experiment")
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
    cols: dict[str, list] = {k: [] for k in ("kind", "value", "batchnorm", "seed", "regions", "distance")}
    runs = [(s, bn) for s in seeds for bn in (False, True)]
    for seed, bn in tqdm(runs, desc="networks", disable=not progress, bar_format=_BAR):
        net = MLP([2] + [width] * depth, batchnorm=bn, negative_slope=negative_slope, seed=seed)
        U = np.random.default_rng(seed).normal(size=X.shape)
        for kind, value, Xs in settings:
            layers = affine_layers(net, batch=Xs if bn else None)
            E = Ellipse.from_data(Xs, coverage)
            probe = E.from_disk(disk)
            cols["kind"].append(kind)
            cols["value"].append(value)
            cols["batchnorm"].append(bn)
            cols["seed"].append(seed)
            cols["regions"].append(regions_hit(layers, probe))
            cols["distance"].append(float(np.median(ray_distance(layers, Xs, U))) / rms_radius(Xs))
    order = np.lexsort((np.array(cols["seed"]), np.array(cols["batchnorm"]),
                        np.array(cols["value"]), np.array([k != "shift" for k in cols["kind"]])))
    return {k: np.asarray(v)[order] for k, v in cols.items()}


def digits_experiment(
    X,
    *,
    widths: Sequence[int] = (32, 32, 32),
    seeds: Sequence[int] = range(100),
    n_points: int = 200,
    negative_slope: float = 0.1,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Random networks on high-dimensional data, with and without BN (statistics from ``X``).

    For every seed, ``MLP([d] + widths, seed=seed)`` without BN and with BN (batch: all of
    ``X``) is measured on every hidden layer l, in the layer's input space and in the input
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
    dict of numpy arrays, one row per (batchnorm, seed, layer)

    Examples
    --------
    >>> X = np.random.default_rng(0).uniform(size=(80, 10))
    >>> t = digits_experiment(X, widths=[8, 8], seeds=[0], n_points=20, progress=False)
    >>> t["batchnorm"].tolist(), t["layer"].tolist(), t["offset"][2:].round(12).tolist()
    ([False, False, True, True], [1, 2, 1, 2], [0.0, 0.0])
    """
    X = check_points(X, None, "X", "digits_experiment", at_least=2)
    widths = check_ints(widths, "widths", "digits_experiment", at_least=1)
    seeds = check_seeds(seeds, "seeds", "digits_experiment")
    n_points = min(check_int(n_points, "n_points", "digits_experiment", at_least=1), len(X))
    radius = rms_radius(X)
    cols: dict[str, list] = {k: [] for k in ("batchnorm", "seed", "layer", "cut", "offset", "ray", "local")}
    runs = [(bn, s) for bn in (False, True) for s in seeds]
    for bn, seed in tqdm(runs, desc="networks", disable=not progress, bar_format=_BAR):
        rng = np.random.default_rng(seed)
        pick = X[rng.choice(len(X), n_points, replace=False)]
        U = rng.normal(size=pick.shape)
        net = MLP([X.shape[1]] + widths, batchnorm=bn, negative_slope=negative_slope, seed=seed)
        layers = affine_layers(net, batch=X if bn else None)
        local = [_distance_from(h, grad) for h, grad in _local_pieces(layers, pick, len(widths))]
        nearest = np.full(n_points, np.inf)
        z = X
        for layer, lay in enumerate(layers[: len(widths)], start=1):
            sd = Hyperplanes(lay.W, -lay.b).signed_distance(z)  # (n, k), in the layer's input space
            nearest = np.minimum(nearest, local[layer - 1].min(1))
            cols["batchnorm"].append(bn)
            cols["seed"].append(seed)
            cols["layer"].append(layer)
            cols["cut"].append(float(np.mean((sd > 0).any(0) & (sd < 0).any(0))))
            cols["offset"].append(float(np.median(np.abs(sd.mean(0)) / sd.std(0))))
            cols["ray"].append(float(np.median(ray_distance(layers, pick, U, layer=layer))) / radius)
            cols["local"].append(float(np.median(nearest)) / radius)
            z = lay(z)
    return {k: np.asarray(v) for k, v in cols.items()}
