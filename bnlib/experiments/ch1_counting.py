"""Counting linear regions of random networks as depth and width grow.

The experiment of chapter 1: for every depth, width and seed, build a random leaky-ReLU
network, compute its exact partition of a 2-D box (:func:`bnlib.partition`) and record two
numbers: how many regions the box holds, and how many regions a fixed line segment passes
through. :func:`region_counts` returns them as a small table (a dict of numpy arrays, one
row per network); :func:`bnlib.stats.summarize` gives the mean and spread over seeds, and
:func:`bnlib.stats.loglog_slope` the growth exponent. The chapter draws the table and asserts on it;
a script can run the same function larger.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .._validation import check_box, check_choice, check_int, check_ints, check_number, check_seed, check_seeds
from ..nets import MLP
from ..partition import partition

__all__ = ["INITS", "counting_network", "region_counts"]

INITS = ("torch", "he")
"""Weight initializations :func:`counting_network` knows.

``"torch"``: torch's default ``nn.Linear`` initialization, as :func:`bnlib.MLP` makes it
(weights uniform with variance ``1 / (3 fan_in)``). ``"he"``: weights redrawn from a
normal with variance ``2 / ((1 + s^2) fan_in)``, ``s`` the negative slope (He/Kaiming
initialization, which keeps the size of the pre-activations the same from layer to
layer). The biases are torch's default in both cases.
"""


def counting_network(
    depth: int, width: int, *, seed: int, negative_slope: float = 0.1, init: str = "torch"
) -> nn.Sequential:
    """The random network of one row of :func:`region_counts`: ``MLP([2] + [width] * depth)``.

    Parameters
    ----------
    depth, width
        Number of hidden layers and units per layer (both >= 1).
    seed
        Seed of the biases and weights (the global torch random state is left alone).
    negative_slope
        Slope of the leaky-ReLU for negative inputs (0: ReLU).
    init
        ``"torch"`` or ``"he"``; see :data:`INITS`.

    Examples
    --------
    >>> net = counting_network(2, 8, seed=0, init="he")
    >>> w = net[2].weight.detach()             # second hidden layer, fan_in 8
    >>> bool(0.2 < float(w.std()) < 0.8)       # He: std sqrt(2 / (1.01 * 8)) ~ 0.50
    True
    """
    func = "counting_network"
    depth = check_int(depth, "depth", func, at_least=1)
    width = check_int(width, "width", func, at_least=1)
    s = check_number(negative_slope, "negative_slope", func, low=0)
    seed = check_seed(seed, "seed", func)
    net = MLP([2] + [width] * depth, negative_slope=s, seed=seed)
    if check_choice(init, "init", func, INITS) == "he":
        generator = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for m in net:
                if isinstance(m, nn.Linear):
                    nn.init.kaiming_normal_(m.weight, a=s, nonlinearity="leaky_relu", generator=generator)
    return net


def region_counts(
    depths: Sequence[int],
    widths: Sequence[int],
    seeds: Sequence[int],
    *,
    box=(-3.0, 3.0, -3.0, 3.0),
    negative_slope: float = 0.1,
    init: str = "torch",
    segment=None,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Exact region counts of random networks, one row per (depth, width, seed).

    Parameters
    ----------
    depths, widths
        Hidden layers and units per layer to try (every combination; integers >= 1).
    seeds
        Seeds of the random networks; each (depth, width) is built once per seed.
    box
        ``(xmin, xmax, ymin, ymax)``: the part of the input plane that is partitioned.
    negative_slope
        Leaky-ReLU slope for negative inputs (0 gives a ReLU).
    init
        ``"torch"`` (the default of :func:`bnlib.MLP`) or ``"he"``; see :data:`INITS` and
        :func:`counting_network`.
    segment
        ``((x0, y0), (x1, y1))``, the line segment whose crossings are counted; both ends
        inside the box. Default: the box's diagonal from ``(xmin, ymin)`` to ``(xmax, ymax)``.
    progress
        Show a tqdm progress bar (one step per network).

    Returns
    -------
    dict of numpy arrays, all of the same length (one entry per network)
        ``depth``, ``width``, ``neurons`` (``depth * width``), ``seed``; ``regions``: the
        number of linear regions in the box; ``crossings``: the number of regions the segment
        passes through (its boundary crossings plus one).

    Examples
    --------
    >>> t = region_counts([1, 2], [4], seeds=[0, 1], progress=False)
    >>> t["depth"].tolist(), t["neurons"].tolist(), t["seed"].tolist()
    ([1, 1, 2, 2], [4, 4, 8, 8], [0, 1, 0, 1])
    >>> bool((t["regions"][:2] <= 1 + 4 + 6).all())   # 4 lines cut a plane into <= 11 cells
    True
    >>> bool((t["crossings"] <= t["regions"]).all())
    True
    """
    func = "region_counts"
    depths = check_ints(depths, "depths", func, at_least=1)
    widths = check_ints(widths, "widths", func, at_least=1)
    seeds = check_seeds(seeds, "seeds", func)
    box = check_box(box, "box", func)
    s = check_number(negative_slope, "negative_slope", func, low=0)
    check_choice(init, "init", func, INITS)
    xmin, xmax, ymin, ymax = box
    if segment is None:
        segment = ((xmin, ymin), (xmax, ymax))
    seg = np.asarray(segment, dtype=np.float64)
    if seg.shape != (2, 2) or not np.all(np.isfinite(seg)):
        raise ValueError(f"segment must be two finite points ((x0, y0), (x1, y1)); got {segment!r}")
    if np.array_equal(seg[0], seg[1]):
        raise ValueError(f"segment must have two distinct end points; got {segment!r}")
    if not np.all((seg[:, 0] >= xmin) & (seg[:, 0] <= xmax) & (seg[:, 1] >= ymin) & (seg[:, 1] <= ymax)):
        raise ValueError(f"segment must lie inside the box {box}; got {segment!r}")

    rows = [(d, w, sd) for d in depths for w in widths for sd in seeds]
    regions = np.zeros(len(rows), dtype=np.int64)
    crossings = np.zeros(len(rows), dtype=np.int64)
    for i, (d, w, sd) in enumerate(tqdm(rows, desc="partitions", disable=not progress)):
        part = partition(counting_network(d, w, seed=sd, negative_slope=s, init=init), box)
        regions[i] = part.n_regions
        crossings[i] = len(part.crossings(seg[0], seg[1])) + 1
    depth = np.array([r[0] for r in rows], dtype=np.int64)
    width = np.array([r[1] for r in rows], dtype=np.int64)
    return {
        "depth": depth,
        "width": width,
        "neurons": depth * width,
        "seed": np.array([r[2] for r in rows], dtype=np.int64),
        "regions": regions,
        "crossings": crossings,
    }
