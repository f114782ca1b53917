"""Chapter 4's experiment: does BN's mini-batch noise buy margin?

The arms (:data:`ARMS`, built by :func:`build_network` from the same ``Linear`` weights): the
plain network, BN, dropout after every hidden activation, and :class:`bnlib.noise.BatchNoise`
(BN's batch-statistics noise without BN). :func:`margin_experiment` trains every (arm, batch
size, seed) for one budget (the same number of steps, the same number of epochs, or until the
training loss reaches a target) with :func:`bnlib.train.fit` and returns a tidy table of margins,
losses and accuracies, a BN network evaluated both with its running statistics and with precise
statistics (:func:`bnlib.nets.precise_batchnorm`). :func:`precise_arms` lists the two evaluations
as two arms, :func:`versus` compares arms with a reference arm paired by seed (with the per-seed
differences, for a forest plot: :func:`bnlib.plot.forest`), and :func:`bnlib.stats.holm_verdicts`
(re-exported here) reads a family of those comparisons. The arms' colours and labels are :data:`bnlib.plot.ARM_STYLES`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from torch import nn
from tqdm.auto import tqdm

from .._validation import (check_choice, check_choices, check_int, check_number, check_optional_int,
                           check_seeds)
from ..geometry import rms_radius
from ..nets import MLP, has_batchnorm, precise_batchnorm
from ..noise import BatchNoise, exact_margin, local_margin
from ..stats import as_frame, holm_verdicts, paired_difference
from ..train import accuracy, fit

__all__ = ["ARMS", "BUDGETS", "VALUES", "build_network", "margin_experiment", "precise_arms", "versus",
           "holm_verdicts"]

_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} networks"  # no timings: outputs stay reproducible


ARMS = ("plain", "bn", "dropout", "noise")
"""The arms of the margin experiment: no normalisation; BN; dropout after every hidden
activation; :class:`BatchNoise` after every hidden Linear (no BN)."""

BUDGETS = ("steps", "epochs", "loss")
"""How long every network trains in :func:`margin_experiment`: the same number of optimizer steps,
the same number of passes over the data, or until its training loss reaches a target."""

VALUES = ("margin", "train_loss", "train_accuracy", "test_accuracy")
"""The measurements of :func:`margin_experiment` that a BN network has in both evaluations
(``value`` with running statistics, ``value + "_precise"`` with precise statistics)."""


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
    budget: str = "steps",
    steps: int = 500,
    epochs: int | None = None,
    target_loss: float | None = None,
    lr: float = 3e-3,
    optimizer: str = "adam",
    margin: str = "exact",
    noise_batch_size: int | None = None,
    dropout: float = 0.1,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Train every (arm, batch size, seed) for one budget; measure margins, losses and accuracies.

    Parameters
    ----------
    budget
        How long every network trains (:data:`BUDGETS`). ``"steps"``: ``steps`` optimizer steps of
        exactly ``batch_size`` samples (:func:`bnlib.train.fit` by steps), so a smaller batch sees
        the data fewer times. ``"epochs"``: ``epochs`` passes over the training set (``fit`` by
        epochs), so a smaller batch takes more steps. ``"loss"``: by epochs, until the first epoch
        whose training loss (evaluation mode) is at most ``target_loss``, at most ``epochs``
        epochs: networks are then compared at a matched fit to the training data (the run is
        repeated from its seed to stop at that epoch, which the same seed reproduces exactly).
    steps, epochs, target_loss
        The budget's size: ``steps`` for ``"steps"``; ``epochs`` for ``"epochs"`` and (as the
        cap) ``"loss"``; ``target_loss`` for ``"loss"``.
    margin
        ``"exact"`` (2-D inputs: :func:`exact_margin`) or ``"local"`` (:func:`local_margin`).
    noise_batch_size
        ``N`` of the ``"noise"`` arm's :class:`BatchNoise`; None: the training batch size (the
        noise BN would have at that batch size; none at full batch, where the arm is the plain
        network). The layer draws independent samples (no finite-population correction).

    Returns
    -------
    dict of numpy arrays, one row per network
        ``arm``, ``batch_size`` (0 for full batch), ``seed``; ``steps`` and ``epochs`` (optimizer
        steps taken, passes over the data: fractional under ``"steps"``); ``reached`` (the
        ``"loss"`` budget's target was met; True under the other budgets); then, measured in
        evaluation mode, ``margin`` (median signed margin over the training points, divided by the
        data's RMS radius; NaN for a network with no decision boundary near the data),
        ``train_loss``, ``train_accuracy``, ``test_accuracy``. A BN network uses its running
        statistics for these; the same four with the suffix ``_precise`` use the statistics of the
        whole training set (:func:`bnlib.nets.precise_batchnorm`), and are NaN for arms without BN.

    Examples
    --------
    >>> from bnlib import data
    >>> X, y = data.moons(64, seed=0)
    >>> t = margin_experiment(X, y, X, y, widths=[2, 8], batch_sizes=[16], seeds=[0], steps=30, progress=False)
    >>> t["arm"].tolist(), t["batch_size"].tolist(), t["steps"].tolist()
    (['plain', 'bn'], [16, 16], [30, 30])
    >>> bool(np.isnan(t["margin_precise"][0])), bool(np.isfinite(t["margin_precise"][1]))
    (True, True)
    >>> t = margin_experiment(X, y, X, y, widths=[2, 8], arms=["plain"], batch_sizes=[16], seeds=[0],
    ...                       budget="loss", epochs=200, target_loss=0.3, progress=False)
    >>> bool(t["reached"][0]), bool(t["train_loss"][0] <= 0.3)
    (True, True)
    """
    X, X_test = np.asarray(X, dtype=np.float64), np.asarray(X_test, dtype=np.float64)
    y, y_test = np.asarray(y), np.asarray(y_test)
    func = "margin_experiment"
    check_choice(margin, "margin", func, ("exact", "local"))
    check_choice(budget, "budget", func, BUDGETS)
    arms = check_choices(arms, "arms", func, ARMS)
    seeds = check_seeds(seeds, "seeds", func)
    if budget == "steps":
        steps = check_int(steps, "steps", func, at_least=0)
    else:
        if epochs is None:
            raise ValueError(f"The 'epochs' parameter of {func} must be given for budget={budget!r}; got None.")
        epochs = check_int(epochs, "epochs", func, at_least=1)
    if budget == "loss":
        if target_loss is None:
            raise ValueError(f"The 'target_loss' parameter of {func} must be given for budget='loss'; got None.")
        target_loss = check_number(target_loss, "target_loss", func, low=0, low_open=True)
    batch_sizes = [check_optional_int(b, "batch_sizes", func, at_least=2) for b in batch_sizes]
    n_classes = 1 if len(np.unique(y)) == 2 else int(y.max()) + 1
    radius = rms_radius(X)
    measure = exact_margin if margin == "exact" else local_margin
    nan = float("nan")
    keys = ("arm", "batch_size", "seed", "steps", "epochs", "reached",
            *VALUES, *(f"{v}_precise" for v in VALUES))
    cols: dict[str, list] = {k: [] for k in keys}
    runs = [(b, a, s) for b in batch_sizes for a in arms for s in seeds]
    for bs, arm, seed in tqdm(runs, desc="networks", disable=not progress, bar_format=_BAR):
        nbs = noise_batch_size if noise_batch_size is not None else bs  # full batch: BN has no noise

        def train(**how):
            net = build_network(arm, widths, n_classes=n_classes, seed=int(seed), dropout=dropout,
                                noise_batch_size=nbs)
            hist = fit(net, X, y, batch_size=bs, lr=lr, optimizer=optimizer, seed=int(seed), progress=False, **how)
            return net, hist

        reached = True
        if budget == "steps":
            net, hist = train(steps=steps)
        elif budget == "epochs":
            net, hist = train(epochs=epochs)
        else:
            net, hist, reached = _train_to_loss(train, target_loss, epochs)
        bs_used = len(X) if bs is None else bs
        cols["arm"].append(arm)
        cols["batch_size"].append(0 if bs is None else int(bs))
        cols["seed"].append(int(seed))
        cols["steps"].append(int(hist.steps))
        cols["epochs"].append(hist.steps * bs_used / len(X) if budget == "steps" else float(hist.epoch[-1]))
        cols["reached"].append(bool(reached))
        evaluations = [("", net)]
        if has_batchnorm(net):
            evaluations.append(("_precise", precise_batchnorm(net, X)))
        else:
            for v in VALUES:
                cols[v + "_precise"].append(nan)
        for suffix, model in evaluations:
            with np.errstate(invalid="ignore"):  # inf and -inf (no decision boundary near the data): NaN
                median = float(np.median(measure(model, X, y)))
            cols["margin" + suffix].append(median / radius if np.isfinite(median) else nan)
            cols["train_loss" + suffix].append(float(getattr(hist, "train_loss" + suffix)[-1]))
            cols["train_accuracy" + suffix].append(float(getattr(hist, "train_accuracy" + suffix)[-1]))
            cols["test_accuracy" + suffix].append(accuracy(model, X_test, y_test))
    return {k: np.asarray(v) for k, v in cols.items()}


def _train_to_loss(train, target: float, cap: int):
    """Train by epochs until the training loss is at most ``target`` (at most ``cap`` epochs).

    ``fit`` records the loss after every epoch but does not stop early, so runs of doubling
    length (``cap / 16``, ``cap / 8``, ... epochs, each from the same seed, which retraces the
    same trajectory) look for the first epoch at the target; the run is then repeated to stop
    there. Returns ``(model, history, reached)``.
    """
    length = max(1, cap // 16)
    while True:
        net, hist = train(epochs=length)
        hit = np.flatnonzero(np.asarray(hist.train_loss) <= target)
        if len(hit) or length == cap:
            break
        length = min(cap, 2 * length)
    if not len(hit):
        return net, hist, False
    first = int(hit[0])
    if first < length:
        losses = hist.train_loss
        net, hist = train(epochs=first)
        if hist.train_loss[-1] != losses[first]:
            raise RuntimeError("a run repeated from its seed did not retrace its losses")
    return net, hist, True


def precise_arms(table, suffix: str = "_precise") -> pd.DataFrame:
    """The table of :func:`margin_experiment` with each BN network listed twice, once per evaluation.

    Rows whose ``*_precise`` columns hold numbers (BN networks) appear as ``arm``, measured with
    running statistics, and again as ``arm + suffix``, with the ``_precise`` values in the
    columns of :data:`VALUES`; other rows appear once. Every summary and paired comparison then
    treats the two evaluations as two arms (paired by seed: the same trained network). The
    ``*_precise`` columns are dropped.

    Examples
    --------
    >>> t = {"arm": np.array(["plain", "bn"]), "seed": np.array([0, 0]),
    ...      "margin": np.array([0.4, 0.5]), "margin_precise": np.array([np.nan, 0.45])}
    >>> p = precise_arms(t)
    >>> p["arm"].tolist(), p["margin"].tolist()
    (['plain', 'bn', 'bn_precise'], [0.4, 0.5, 0.45])
    """
    frame = as_frame(table)
    values = [v for v in VALUES if v in frame and v + suffix in frame]
    if not values:
        raise ValueError(f"The 'table' parameter of precise_arms must hold a value and its {suffix!r} twin "
                         f"(e.g. 'margin' and 'margin{suffix}'); its columns are {sorted(frame.columns)}.")
    has = np.isfinite(frame[values[0] + suffix].to_numpy(dtype=float))
    twin = frame[has].copy()
    twin["arm"] = twin["arm"].astype(str) + suffix
    for v in values:
        twin[v] = twin[v + suffix]
    out = pd.concat([frame, twin], ignore_index=True)
    return out.drop(columns=[v + suffix for v in values])


def versus(
    table,
    arms: Sequence[str],
    *,
    against: str = "plain",
    values: Sequence[str] = ("margin", "test_accuracy"),
    by: Sequence[str] = ("batch_size",),
    level: float = 0.95,
) -> pd.DataFrame:
    """Every arm of ``arms`` minus ``against``, paired by seed, per value and group of ``by``.

    Networks whose value is not finite (a margin of a network without decision boundary) are
    left out with their pair. Returns one row per (group, arm, value): the ``by`` columns,
    ``arm``, ``value``, then ``n``, ``mean``, ``lo``, ``hi``, ``p`` of
    :func:`bnlib.stats.paired_difference`, and ``points``, the per-seed differences (an array
    per row, in seed order), for a forest plot (:func:`bnlib.plot.forest`). Groups where an arm
    has fewer than two seeds paired with ``against`` are skipped.

    Examples
    --------
    >>> t = {"arm": np.array(["plain", "plain", "bn", "bn"]), "seed": np.array([0, 1, 0, 1]),
    ...      "batch_size": np.array([4, 4, 4, 4]), "margin": np.array([0.4, 0.5, 0.5, 0.7])}
    >>> d = versus(t, ["bn"], values=["margin"])
    >>> d[["batch_size", "arm", "value", "n"]].values.tolist(), d["points"][0].round(3).tolist()
    ([[4, 'bn', 'margin', 2]], [0.1, 0.2])
    """
    frame = as_frame(table)
    by = [by] if isinstance(by, str) else list(by)
    rows = []
    for key, group in frame.groupby(by, sort=False) if by else [((), frame)]:
        key = key if isinstance(key, tuple) else (key,)
        for value in values:
            finite = group[np.isfinite(group[value].to_numpy(dtype=float))]
            base = finite[finite["arm"] == against].set_index("seed")[value]
            for arm in arms:
                own = finite[finite["arm"] == arm].set_index("seed")[value]
                points = (own - base).dropna().sort_index()
                if len(points) < 2:  # an interval needs two paired seeds
                    continue
                d = paired_difference(finite[finite["arm"].isin([arm, against])], value, arm, against,
                                      level=level).iloc[0]
                rows.append({**dict(zip(by, key)), "arm": arm, "value": value, "n": int(d["n"]),
                             "mean": d["mean"], "lo": d["lo"], "hi": d["hi"], "p": d["p"],
                             "points": points.to_numpy()})
    return pd.DataFrame(rows, columns=[*by, "arm", "value", "n", "mean", "lo", "hi", "p", "points"])
