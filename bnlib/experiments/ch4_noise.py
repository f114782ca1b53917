"""Chapter 4's experiment: does BN's mini-batch noise buy margin?

The arms (:data:`ARMS`, built by :func:`build_network` from the same ``Linear`` weights): the
plain network, BN, dropout after every hidden activation, and :class:`bnlib.noise.BatchNoise`
(BN's batch-statistics noise without BN). :func:`margin_experiment` trains every (arm, batch
size, seed) for the same number of steps with :func:`bnlib.train.fit` and returns a tidy table
of margins and accuracies. The arms' colours and labels are :data:`bnlib.plot.ARM_STYLES`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from torch import nn
from tqdm.auto import tqdm

from .._validation import check_choice, check_choices, check_int, check_number, check_optional_int, check_seeds
from ..geometry import rms_radius
from ..nets import MLP
from ..noise import BatchNoise, exact_margin, local_margin
from ..train import accuracy, fit

__all__ = ["ARMS", "build_network", "margin_experiment"]

_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} networks"  # no timings: outputs stay reproducible


ARMS = ("plain", "bn", "dropout", "noise")
"""The arms of the margin experiment: no normalisation; BN; dropout after every hidden
activation; :class:`BatchNoise` after every hidden Linear (no BN)."""


def build_network(
    arm: str,
    widths: Sequence[int],
    *,
    n_classes: int,
    seed: int = 0,
    negative_slope: float = 0.1,
    dropout: float = 0.1,
    noise_batch_size: int | None = None,
) -> nn.Sequential:
    """One arm of the experiment, with the same Linear weights for every arm at one ``seed``.

    Examples
    --------
    >>> [type(m).__name__ for m in build_network("noise", [2, 4], n_classes=1, noise_batch_size=8)]
    ['Linear', 'BatchNoise', 'LeakyReLU', 'Linear']
    """
    check_choice(arm, "arm", "build_network", ARMS)
    net = MLP(widths, batchnorm=arm == "bn", negative_slope=negative_slope, n_classes=n_classes, seed=seed)
    if arm in ("plain", "bn"):
        return net
    mods = list(net)
    out = []
    for i, m in enumerate(mods):
        last_linear = i == len(mods) - 1
        if arm == "noise" and isinstance(m, nn.Linear) and not last_linear:
            out += [m, BatchNoise(m.out_features, noise_batch_size, seed=seed * 1000 + i)]
        elif arm == "dropout" and isinstance(m, (nn.ReLU, nn.LeakyReLU)):
            check_number(dropout, "dropout", "build_network", low=0, high=1, high_open=True)
            out += [m, nn.Dropout(dropout)]
        else:
            out.append(m)
    return nn.Sequential(*out)


def margin_experiment(
    X,
    y,
    X_test,
    y_test,
    *,
    widths: Sequence[int],
    arms: Sequence[str] = ("plain", "bn"),
    batch_sizes: Sequence[int | None] = (8, 32, None),
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    steps: int = 500,
    lr: float = 3e-3,
    optimizer: str = "adam",
    margin: str = "exact",
    noise_batch_size: int | None = None,
    dropout: float = 0.1,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Train every (arm, batch size, seed) for the same number of steps; measure margins and accuracy.

    Parameters
    ----------
    margin
        ``"exact"`` (2-D inputs: :func:`exact_margin`) or ``"local"`` (:func:`local_margin`).
    noise_batch_size
        ``N`` of the ``"noise"`` arm's :class:`BatchNoise`; None: the training batch size (the
        noise BN would have at that batch size; none at full batch, where the arm is the plain
        network). The layer draws independent samples (no finite-population correction).

    Returns
    -------
    dict of numpy arrays, one row per run
        ``arm``, ``batch_size`` (0 for full batch), ``seed``, ``margin`` (median signed margin
        over the training points, divided by the data's RMS radius), ``train_accuracy``,
        ``test_accuracy``.

    Examples
    --------
    >>> from bnlib import data
    >>> X, y = data.moons(64, seed=0)
    >>> t = margin_experiment(X, y, X, y, widths=[2, 8], batch_sizes=[16], seeds=[0], steps=30, progress=False)
    >>> t["arm"].tolist(), t["batch_size"].tolist()
    (['plain', 'bn'], [16, 16])
    """
    X, X_test = np.asarray(X, dtype=np.float64), np.asarray(X_test, dtype=np.float64)
    y, y_test = np.asarray(y), np.asarray(y_test)
    func = "margin_experiment"
    check_choice(margin, "margin", func, ("exact", "local"))
    arms = check_choices(arms, "arms", func, ARMS)
    seeds = check_seeds(seeds, "seeds", func)
    steps = check_int(steps, "steps", func, at_least=0)
    batch_sizes = [check_optional_int(b, "batch_sizes", func, at_least=2) for b in batch_sizes]
    n_classes = 1 if len(np.unique(y)) == 2 else int(y.max()) + 1
    radius = rms_radius(X)
    cols: dict[str, list] = {k: [] for k in ("arm", "batch_size", "seed", "margin", "train_accuracy", "test_accuracy")}
    runs = [(b, a, s) for b in batch_sizes for a in arms for s in seeds]
    for bs, arm, seed in tqdm(runs, desc="networks", disable=not progress, bar_format=_BAR):
        nbs = noise_batch_size if noise_batch_size is not None else bs  # full batch: BN has no noise
        net = build_network(arm, widths, n_classes=n_classes, seed=int(seed), dropout=dropout,
                            noise_batch_size=nbs)
        fit(net, X, y, steps=steps, batch_size=bs, lr=lr, optimizer=optimizer, seed=int(seed), progress=False)
        m = exact_margin(net, X, y) if margin == "exact" else local_margin(net, X, y)
        cols["arm"].append(arm)
        cols["batch_size"].append(0 if bs is None else int(bs))
        cols["seed"].append(int(seed))
        cols["margin"].append(float(np.median(m)) / radius)
        cols["train_accuracy"].append(accuracy(net, X, y))
        cols["test_accuracy"].append(accuracy(net, X_test, y_test))
    return {k: np.asarray(v) for k, v in cols.items()}
