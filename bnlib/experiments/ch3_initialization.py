"""Chapter 3's experiment: is BN a smart initialization?

Four arms start from one seed (:data:`ARMS`, :func:`initial_model`): the plain network, BN kept
throughout training, BN used only to initialise (its statistics on the training inputs folded
into the weights, :func:`bnlib.initialization.fold_batchnorm`) and LSUV
(:func:`bnlib.initialization.lsuv`). :func:`run_arms` trains every arm on every seed with the
book's one training loop (:func:`bnlib.train.fit`) and returns a tidy table (one row per arm,
seed and epoch); :func:`learning_curves` and :func:`epochs_to_reach` summarise it, and
:func:`snapshots` keeps the weights at a few epochs, for pictures of training. The arms'
colours and labels are :data:`bnlib.plot.ARM_STYLES`.
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
from torch import nn
from tqdm.auto import tqdm

from .._validation import check_choice, check_choices, check_ints, check_seeds
from ..initialization import fold_batchnorm, lsuv
from ..nets import MLP, check_points
from ..stats import summarize
from ..train import fit

__all__ = ["ARMS", "initial_model", "run_arms", "learning_curves", "epochs_to_reach", "snapshots"]

ARMS = ("plain", "bn", "bn_init", "lsuv")
"""The arms of the experiment, all built from one seed by :func:`initial_model`.

``"plain"``: the MLP without BN, torch's default (Kaiming-uniform) weights.
``"bn"``: the same weights with ``BatchNorm1d`` after every hidden ``Linear``, kept in training.
``"bn_init"``: the ``"bn"`` network with its statistics on the training inputs folded into the
``Linear`` layers (:func:`fold_batchnorm`); a plain network from then on.
``"lsuv"``: the plain network re-initialised by :func:`lsuv` on the training inputs.
"""



def _check_arm(arm: str, func: str) -> str:
    return check_choice(arm, "arm", func, ARMS)


def initial_model(
    arm: str, widths: Sequence[int], n_classes: int, X, *, seed: int, negative_slope: float = 0.1
) -> nn.Sequential:
    """The starting network of one arm (see :data:`ARMS`), built from ``seed``.

    ``"plain"``, ``"bn"`` and ``"bn_init"`` share the ``Linear`` weights drawn from ``seed``;
    ``"lsuv"`` redraws them (orthonormal, same seed) and rescales them on ``X``.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(64, 2))
    >>> [type(m).__name__ for m in initial_model("bn", [2, 4], 1, X, seed=0)]
    ['Linear', 'BatchNorm1d', 'LeakyReLU', 'Linear']
    """
    _check_arm(arm, "initial_model")
    net = MLP(widths, batchnorm=arm in ("bn", "bn_init"), negative_slope=negative_slope,
              n_classes=n_classes, seed=seed)
    if arm == "bn_init":
        return fold_batchnorm(net, X)
    if arm == "lsuv":
        return lsuv(net, X, seed=seed)
    return net


def run_arms(
    X,
    y,
    *,
    widths: Sequence[int],
    n_classes: int,
    seeds: Sequence[int],
    arms: Sequence[str] = ARMS,
    epochs: int = 20,
    batch_size: int | None = 32,
    lr: float = 1e-2,
    optimizer: str = "adam",
    X_test=None,
    y_test=None,
    negative_slope: float = 0.1,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Train every arm from every seed; one row per (arm, seed, epoch).

    For one seed all arms share the initial ``Linear`` weights (except ``"lsuv"``, which redraws
    them from the same seed) and the data order (:func:`bnlib.train.fit` seeded with ``seed``).
    Epoch 0 is the network before any step. Accuracies are in eval mode (the ``"bn"`` arm uses
    its running statistics).

    Returns
    -------
    dict of numpy arrays
        ``arm``, ``seed``, ``epoch``, ``train_loss``, ``train_accuracy``, ``test_accuracy``
        (NaN without a test set).

    Examples
    --------
    >>> from bnlib import data
    >>> X, y = data.moons(64, seed=0)
    >>> t = run_arms(X, y, widths=[2, 8], n_classes=1, seeds=[0, 1], epochs=2, progress=False)
    >>> len(t["arm"]), sorted(set(t["arm"].tolist()))
    (24, ['bn', 'bn_init', 'lsuv', 'plain'])
    """
    func = "run_arms"
    arms = check_choices(arms, "arms", func, ARMS)
    seeds = check_seeds(seeds, "seeds", func)
    widths = check_ints(widths, "widths", func, at_least=1, min_len=2)
    Xn = check_points(X, widths[0], "X", func)
    rows: dict[str, list] = {k: [] for k in ("arm", "seed", "epoch", "train_loss", "train_accuracy", "test_accuracy")}
    runs = [(a, s) for s in seeds for a in arms]
    for arm, seed in tqdm(runs, desc="arms x seeds", disable=not progress):
        net = initial_model(arm, widths, n_classes, Xn, seed=seed, negative_slope=negative_slope)
        hist = fit(net, Xn, y, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                   seed=seed, X_test=X_test, y_test=y_test, progress=False)
        h = hist.as_arrays()
        n = len(h["epoch"])
        rows["arm"] += [arm] * n
        rows["seed"] += [seed] * n
        for k in ("epoch", "train_loss", "train_accuracy", "test_accuracy"):
            rows[k] += list(h[k])
    return {k: np.asarray(v) for k, v in rows.items()}


def learning_curves(table: dict, metric: str, level: float = 0.95) -> dict[str, dict[str, np.ndarray]]:
    """Per arm and epoch: mean of ``metric`` over seeds and its interval (:func:`bnlib.stats.summarize`).

    Returns ``{arm: {"epoch", "mean", "lo", "hi"}}``, arms in the table's order.
    """
    if metric not in table:
        raise ValueError(f"metric must be a column of the table {sorted(table)}; got {metric!r}")
    s = summarize(table, metric, by=["arm", "epoch"], level=level)
    return {arm: {k: s[k][s["arm"] == arm].to_numpy() for k in ("epoch", "mean", "lo", "hi")}
            for arm in dict.fromkeys(np.asarray(table["arm"]).tolist())}


def epochs_to_reach(table: dict, metric: str, threshold: float) -> dict[str, np.ndarray]:
    """First epoch at which ``metric >= threshold``, one row per (arm, seed); NaN if never.

    Returns a dict of arrays ``arm``, ``seed``, ``epochs``.
    """
    if metric not in table:
        raise ValueError(f"metric must be a column of the table {sorted(table)}; got {metric!r}")
    arms, seeds, first = [], [], []
    for arm in dict.fromkeys(table["arm"].tolist()):
        for seed in dict.fromkeys(table["seed"][table["arm"] == arm].tolist()):
            sel = (table["arm"] == arm) & (table["seed"] == seed)
            order = np.argsort(table["epoch"][sel])
            hit = np.nonzero(table[metric][sel][order] >= threshold)[0]
            arms.append(arm)
            seeds.append(seed)
            first.append(float(table["epoch"][sel][order][hit[0]]) if len(hit) else np.nan)
    return {"arm": np.asarray(arms), "seed": np.asarray(seeds), "epochs": np.asarray(first)}


def snapshots(
    arm: str,
    X,
    y,
    *,
    widths: Sequence[int],
    n_classes: int,
    seed: int,
    at: Sequence[int],
    batch_size: int | None = 32,
    lr: float = 1e-2,
    optimizer: str = "adam",
    negative_slope: float = 0.1,
) -> list[dict]:
    """The weights of one arm's run (as in :func:`run_arms`) after each epoch count in ``at``.

    Each snapshot re-runs the seeded training from the start for that many epochs: since
    :func:`bnlib.train.fit` is deterministic this is exactly the state the full run passes
    through, whatever the optimizer's internal state. Returns one ``state_dict`` per entry of
    ``at``; load it into ``initial_model(arm, ...)`` to draw it.
    """
    func = "snapshots"
    _check_arm(arm, func)
    at = check_ints(at, "at", func, at_least=0)
    widths = check_ints(widths, "widths", func, at_least=1, min_len=2)
    Xn = check_points(X, widths[0], "X", func)
    start = initial_model(arm, widths, n_classes, Xn, seed=seed, negative_slope=negative_slope)
    out = []
    for e in at:
        net = copy.deepcopy(start)
        fit(net, Xn, y, epochs=e, batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed, progress=False)
        out.append({k: v.detach().clone() for k, v in net.state_dict().items()})
    return out
