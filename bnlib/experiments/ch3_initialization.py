"""Chapter 3's experiment: is BN a smart initialization?

The arms start from one seed (:data:`ARMS`, :func:`initial_model`): the plain network, the plain
network on standardised inputs, BN kept throughout training, BN used only to initialise (its
statistics on the training inputs folded into the weights,
:func:`bnlib.initialization.fold_batchnorm`), BN's centring alone and its scaling alone, folded the
same way, and LSUV (:func:`bnlib.initialization.lsuv`), as published and per unit.
:func:`run_arms` trains every arm on every seed with the book's one training loop
(:func:`bnlib.train.fit`) and returns a tidy table (one row per arm, seed and epoch), the ``"bn"``
arm evaluated both with its running statistics and with precise statistics; :func:`precise_arms`
lists the two evaluations as two arms, and :func:`ema_statistics` recomputes a network's running
average with its weights frozen, to say why the two differ. :func:`learning_curves`,
:func:`curves_by_seed`, :func:`epochs_to_reach` and :func:`summary_table` summarise the table;
:func:`compare` and :func:`bnlib.stats.holm_verdicts` (re-exported here) test a family of paired comparisons (Holm's correction,
an equivalence margin for "no difference"). :func:`snapshots` keeps the weights at a few epochs, for
pictures of training. The arms' colours and labels are :func:`styles`
(:data:`bnlib.plot.ARM_STYLES`).
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .._validation import check_choice, check_choices, check_int, check_ints, check_number, check_seed, check_seeds
from ..initialization import fold_batchnorm, lsuv
from ..nets import MLP, check_points
from ..plot import arm_styles
from ..stats import Table, as_frame, holm_verdicts, interval_text, mean_interval, paired_difference, summarize
from ..stats import table as make_table
from ..train import fit

__all__ = ["ARMS", "styles", "initial_model", "standardizer", "run_arms", "precise_arms",
           "learning_curves", "curves_by_seed", "epochs_to_reach", "summary_table", "compare", "holm_verdicts",
           "ema_statistics", "snapshots"]

ARMS = ("plain", "plain_std", "bn", "bn_init", "bn_center", "bn_scale", "lsuv", "lsuv_unit")
"""The arms of the experiment, all built from one seed by :func:`initial_model`.

``"plain"``: the MLP without BN, torch's default (Kaiming-uniform) weights.
``"plain_std"``: the same network on standardised inputs: a frozen first map (:func:`standardizer`)
centres and scales every input coordinate with the training set's mean and standard deviation.
``"bn"``: the same weights with ``BatchNorm1d`` after every hidden ``Linear``, kept in training.
``"bn_init"``: the ``"bn"`` network with its statistics on the training inputs folded into the
``Linear`` layers (:func:`fold_batchnorm`); a plain network from then on.
``"bn_center"``, ``"bn_scale"``: the same with only BN's centring, or only its scaling, folded
(``fold_batchnorm(..., parts="center")``, ``parts="scale"``).
``"lsuv"``: the plain network re-initialised by :func:`lsuv` on the training inputs (pooled
variance, as published); ``"lsuv_unit"``: the same with each unit's own variance
(``per_unit=True``).
"""

def styles(arms: Sequence[str], **labels) -> dict[str, dict]:
    """Colour, label and line style of each arm: :func:`bnlib.plot.arm_styles` (every arm of
    :data:`ARMS` is in :data:`bnlib.plot.ARM_STYLES`, the book's one table of arm styles).

    ``labels`` renames arms for the reader (``bn="BN throughout"``).

    Examples
    --------
    >>> s = styles(["plain", "plain_std"], plain="no BN (raw inputs)")
    >>> s["plain"]["label"], s["plain_std"]["label"]
    ('no BN (raw inputs)', 'no BN, standardised inputs')
    """
    return arm_styles(arms, **labels)


def _check_arm(arm: str, func: str) -> str:
    return check_choice(arm, "arm", func, ARMS)


def standardizer(X) -> nn.Linear:
    """A frozen ``Linear`` that standardises inputs with the statistics of ``X``: ``(x - mean) / std``.

    Per coordinate, with the mean and the (biased) standard deviation over ``X``; a coordinate
    constant on ``X`` (a blank pixel) is only centred. Its parameters do not require gradients,
    so training leaves it as it is, and bnlib reads it as the affine map it is.

    Examples
    --------
    >>> X = np.array([[1.0, 5.0], [3.0, 5.0]])
    >>> with torch.no_grad():
    ...     standardizer(X)(torch.tensor(X).float()).tolist()
    [[-1.0, 0.0], [1.0, 0.0]]
    """
    X = check_points(X, None, "X", "standardizer", at_least=2)
    mean, std = X.mean(0), X.std(0)
    std = np.where(std > 0, std, 1.0)
    lin = nn.Linear(X.shape[1], X.shape[1])
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(np.diag(1.0 / std)))
        lin.bias.copy_(torch.as_tensor(-mean / std))
    lin.requires_grad_(False)
    return lin


def initial_model(
    arm: str, widths: Sequence[int], n_classes: int, X, *, seed: int, negative_slope: float = 0.1
) -> nn.Sequential:
    """The starting network of one arm (see :data:`ARMS`), built from ``seed``.

    Every arm but the LSUV ones shares the ``Linear`` weights drawn from ``seed`` (``"plain_std"``
    puts its frozen :func:`standardizer` in front of them); ``"lsuv"`` and ``"lsuv_unit"`` redraw
    them (orthonormal, same seed) and rescale them on ``X``. ``X`` is the training inputs: the
    statistics of every data-dependent arm come from it.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(64, 2))
    >>> [type(m).__name__ for m in initial_model("bn", [2, 4], 1, X, seed=0)]
    ['Linear', 'BatchNorm1d', 'LeakyReLU', 'Linear']
    >>> [type(m).__name__ for m in initial_model("plain_std", [2, 4], 1, X, seed=0)]
    ['Linear', 'Linear', 'LeakyReLU', 'Linear']
    """
    _check_arm(arm, "initial_model")
    bn = arm in ("bn", "bn_init", "bn_center", "bn_scale")
    net = MLP(widths, batchnorm=bn, negative_slope=negative_slope, n_classes=n_classes, seed=seed)
    if arm == "plain_std":
        return nn.Sequential(standardizer(check_points(X, widths[0], "X", "initial_model")), *net)
    if arm in ("bn_init", "bn_center", "bn_scale"):
        return fold_batchnorm(net, X, parts={"bn_init": "both", "bn_center": "center", "bn_scale": "scale"}[arm])
    if arm in ("lsuv", "lsuv_unit"):
        return lsuv(net, X, seed=seed, per_unit=arm == "lsuv_unit")
    return net


METRICS = ("train_loss", "train_accuracy", "test_accuracy")


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

    For one seed all arms share the initial ``Linear`` weights (except the LSUV arms, which redraw
    them from the same seed) and the data order (:func:`bnlib.train.fit` seeded with ``seed``).
    Epoch 0 is the network before any step. Everything is measured in eval mode; the ``"bn"``
    arm twice: with its running statistics (``train_loss`` ...) and with the statistics of the
    whole training set (``train_loss_precise`` ..., :func:`bnlib.nets.precise_batchnorm`).

    Returns
    -------
    dict of numpy arrays
        ``arm``, ``seed``, ``epoch``, ``train_loss``, ``train_accuracy``, ``test_accuracy``
        (NaN without a test set), and ``train_loss_precise``, ``train_accuracy_precise``,
        ``test_accuracy_precise`` (NaN for arms without BN).

    Examples
    --------
    >>> from bnlib import data
    >>> X, y = data.moons(64, seed=0)
    >>> t = run_arms(X, y, widths=[2, 8], n_classes=1, seeds=[0, 1], epochs=2, progress=False,
    ...              arms=["plain", "bn", "bn_init", "lsuv"])
    >>> len(t["arm"]), sorted(set(t["arm"].tolist()))
    (24, ['bn', 'bn_init', 'lsuv', 'plain'])
    >>> bool(np.isnan(t["train_loss_precise"][t["arm"] == "plain"]).all())
    True
    """
    func = "run_arms"
    arms = check_choices(arms, "arms", func, ARMS)
    seeds = check_seeds(seeds, "seeds", func)
    widths = check_ints(widths, "widths", func, at_least=1, min_len=2)
    Xn = check_points(X, widths[0], "X", func)
    columns = [*METRICS, *(f"{m}_precise" for m in METRICS)]
    rows: dict[str, list] = {k: [] for k in ("arm", "seed", "epoch", *columns)}
    runs = [(a, s) for s in seeds for a in arms]
    for arm, seed in tqdm(runs, desc="arms x seeds", disable=not progress):
        net = initial_model(arm, widths, n_classes, Xn, seed=seed, negative_slope=negative_slope)
        hist = fit(net, Xn, y, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                   seed=seed, X_test=X_test, y_test=y_test, progress=False)
        h = hist.as_arrays()
        n = len(h["epoch"])
        rows["arm"] += [arm] * n
        rows["seed"] += [seed] * n
        for k in ("epoch", *columns):
            rows[k] += list(h[k])
    return {k: np.asarray(v) for k, v in rows.items()}


def precise_arms(table: dict, suffix: str = "_precise") -> dict[str, np.ndarray]:
    """The table of :func:`run_arms` with each BN arm listed twice, once per evaluation.

    Rows of an arm whose ``*_precise`` columns hold numbers (a BN arm) appear as ``arm``, measured
    with running statistics, and again as ``arm + suffix``, measured with precise statistics;
    other arms appear once. The result has the columns ``arm``, ``seed``, ``epoch`` and
    ``train_loss``, ``train_accuracy``, ``test_accuracy``, so every summary and paired comparison
    treats the two evaluations as two arms (paired by seed: the same trained network).

    Examples
    --------
    >>> t = {"arm": np.array(["plain", "bn"]), "seed": np.array([0, 0]), "epoch": np.array([3, 3]),
    ...      "train_loss": np.array([0.5, 0.4]), "train_accuracy": np.array([0.7, 0.8]),
    ...      "test_accuracy": np.array([0.7, 0.8]), "train_loss_precise": np.array([np.nan, 0.1]),
    ...      "train_accuracy_precise": np.array([np.nan, 0.99]), "test_accuracy_precise": np.array([np.nan, 0.98])}
    >>> p = precise_arms(t)
    >>> p["arm"].tolist(), p["test_accuracy"].tolist()
    (['plain', 'bn', 'bn_precise'], [0.7, 0.8, 0.98])
    """
    for k in ("arm", "seed", "epoch", *METRICS, *(f"{m}_precise" for m in METRICS)):
        if k not in table:
            raise ValueError(f"The 'table' parameter of precise_arms must be a table of run_arms; it has no "
                             f"column {k!r}.")
    arms = np.asarray(table["arm"])
    has = np.isfinite(np.asarray(table["train_loss_precise"], dtype=float))
    keep = ("arm", "seed", "epoch", *METRICS)
    out = {k: [] for k in keep}
    for arm in dict.fromkeys(arms.tolist()):
        sel = arms == arm
        out["arm"].append(arms[sel])
        for k in keep[1:]:
            out[k].append(np.asarray(table[k])[sel])
        if has[sel].any():
            sel = sel & has
            out["arm"].append(np.full(int(sel.sum()), arm + suffix, dtype=object))
            for k in ("seed", "epoch"):
                out[k].append(np.asarray(table[k])[sel])
            for k in METRICS:
                out[k].append(np.asarray(table[f"{k}_precise"])[sel])
    return {k: np.concatenate(v).astype(str) if k == "arm" else np.concatenate(v) for k, v in out.items()}


def learning_curves(table: dict, metric: str, level: float = 0.95) -> dict[str, dict[str, np.ndarray]]:
    """Per arm and epoch: mean of ``metric`` over seeds and its interval (:func:`bnlib.stats.summarize`).

    Returns ``{arm: {"epoch", "mean", "lo", "hi"}}``, arms in the table's order.
    """
    if metric not in table:
        raise ValueError(f"metric must be a column of the table {sorted(table)}; got {metric!r}")
    s = summarize(table, metric, by=["arm", "epoch"], level=level)
    return {arm: {k: s[k][s["arm"] == arm].to_numpy() for k in ("epoch", "mean", "lo", "hi")}
            for arm in dict.fromkeys(np.asarray(table["arm"]).tolist())}


def curves_by_seed(table: dict, metric: str) -> dict[str, dict[str, np.ndarray]]:
    """Every seed's learning curve, per arm: ``{arm: {"epoch": (E,), "seed": (S,), "values": (S, E)}}``.

    For figures that draw each seed (a failed seed stays visible) beside the mean over seeds.

    Examples
    --------
    >>> t = {"arm": np.array(["a"] * 4), "seed": np.array([0, 0, 1, 1]), "epoch": np.array([0, 1, 0, 1]),
    ...      "acc": np.array([0.5, 0.9, 0.5, 0.6])}
    >>> c = curves_by_seed(t, "acc")["a"]
    >>> c["values"].tolist(), c["values"].mean(0).tolist()
    ([[0.5, 0.9], [0.5, 0.6]], [0.5, 0.75])
    """
    if metric not in table:
        raise ValueError(f"metric must be a column of the table {sorted(table)}; got {metric!r}")
    frame = as_frame({k: table[k] for k in ("arm", "seed", "epoch", metric)})
    out = {}
    for arm in dict.fromkeys(frame["arm"].tolist()):
        wide = frame[frame["arm"] == arm].pivot(index="seed", columns="epoch", values=metric)
        out[arm] = {"epoch": wide.columns.to_numpy(), "seed": wide.index.to_numpy(), "values": wide.to_numpy()}
    return out


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


def summary_table(
    table: dict,
    arms: Sequence[str],
    checkpoints: Sequence[tuple[str, int]],
    *,
    threshold: float,
    labels: dict | None = None,
    caption: str | None = None,
) -> Table:
    """The chapter's summary of a run: one row per arm, mean [95 % interval] over the seeds.

    One column per ``(metric, epoch)`` of ``checkpoints`` (:func:`bnlib.stats.summarize`), then the
    number of epochs until ``test_accuracy`` first reaches ``threshold`` (:func:`epochs_to_reach`:
    the mean over the seeds that reach it, and how many of the seeds do). ``labels`` names the arms
    for the reader. Returns a :class:`bnlib.stats.Table` (HTML in the book).

    Examples
    --------
    >>> t = {"arm": np.array(["a"] * 4), "seed": np.array([0, 0, 1, 1]), "epoch": np.array([0, 1, 0, 1]),
    ...      "test_accuracy": np.array([0.5, 0.9, 0.5, 0.6])}
    >>> summary_table(t, ["a"], [("test_accuracy", 1)], threshold=0.8).frame.iloc[0].tolist()
    ['a', '0.750 [0.600, 0.900]', '- (1/2 seeds)']
    """
    labels = labels or {}
    frame = as_frame(table)
    columns = {"arm": [labels.get(a, a) for a in arms]}
    for metric, epoch in checkpoints:
        s = summarize(frame[frame["epoch"] == epoch], metric, by=["arm"]).set_index("arm")
        columns[f"{metric.replace('_', ' ')} @{epoch}"] = [interval_text(*s.loc[a, ["mean", "lo", "hi"]], 3)
                                                           for a in arms]
    reach = epochs_to_reach(table, "test_accuracy", threshold)
    hit = np.isfinite(reach["epochs"])
    cells = []
    for a in arms:
        mine = reach["arm"] == a
        got = reach["epochs"][mine & hit]
        text = interval_text(*mean_interval(got), 1) if len(got) > 1 else "-"
        cells.append(f"{text} ({len(got)}/{int(mine.sum())} seeds)")
    columns[f"epochs to {threshold:.0%} test accuracy"] = cells
    return make_table(columns, caption=caption)


def compare(table, pairs: Sequence[tuple], *, metric: str = "test_accuracy", level: float = 0.95) -> pd.DataFrame:
    """Paired differences ``arm - against`` of ``metric``, one row per pair (:func:`bnlib.stats.paired_difference`).

    ``pairs`` holds ``(arm, against, epoch)`` triples; ``epoch`` None compares the whole table (one
    row per arm and seed, no ``epoch`` column needed). Returns a ``DataFrame`` with the columns
    ``arm``, ``against``, ``epoch``, ``n``, ``mean``, ``lo``, ``hi`` and ``p`` (the sign-flip
    p-value, not yet adjusted: :func:`bnlib.stats.holm_verdicts` adjusts a family).

    Examples
    --------
    >>> t = {"arm": np.array(["a"] * 3 + ["b"] * 3), "seed": np.array([0, 1, 2] * 2),
    ...      "acc": np.array([0.9, 0.8, 0.9, 0.7, 0.7, 0.6])}
    >>> d = compare(t, [("a", "b", None)], metric="acc")
    >>> d[["arm", "against", "n"]].values.tolist(), round(float(d["mean"][0]), 3), float(d["p"][0])
    ([['a', 'b', 3]], 0.2, 0.25)
    """
    frame = as_frame(table)
    rows = []
    for arm, against, epoch in pairs:
        sub = frame if epoch is None else frame[frame["epoch"] == epoch]
        if epoch is not None and sub.empty:
            raise ValueError(f"The table given to compare has no epoch {epoch!r}.")
        d = paired_difference(sub, metric, arm, against, level=level).iloc[0]
        rows.append({"arm": arm, "against": against, "epoch": epoch, **d.to_dict()})
    out = pd.DataFrame(rows, columns=["arm", "against", "epoch", "n", "mean", "lo", "hi", "p"])
    out["n"] = out["n"].astype(int)
    return out


def ema_statistics(model: nn.Module, X, *, batch_size: int = 32, passes: int = 10, seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose BN running statistics are torch's running average, weights frozen.

    The copy's running statistics are reset, then updated by torch itself (training-mode forward
    passes, the module's own ``momentum``) over ``passes`` passes of ``X`` in shuffled mini-batches
    of ``batch_size`` (seeded), with no optimizer step. They are what the running statistics of a
    training run would be if the weights had stopped moving: the same exponential average of
    mini-batch statistics, with its mini-batch noise, but every batch seen by the final weights.
    Beside the run's own running statistics and :func:`bnlib.nets.precise_batchnorm`, it separates
    the two things that make running statistics differ from precise ones: the weights moving during
    the average, and the noise of mini-batch statistics. The copy is returned in eval mode.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(256, 2)) + 3.0
    >>> net = ema_statistics(MLP([2, 4], batchnorm=True, n_classes=1, seed=0), X, passes=20)
    >>> h = net[0](torch.as_tensor(X, dtype=torch.float32)).detach()
    >>> bool(torch.allclose(net[1].running_mean, h.mean(0), atol=0.05 * float(h.std(0).max())))
    True
    """
    func = "ema_statistics"
    Xt = torch.as_tensor(check_points(X, None, "X", func, at_least=2), dtype=next(model.parameters()).dtype)
    batch_size = check_int(batch_size, "batch_size", func, at_least=2)
    passes = check_int(passes, "passes", func, at_least=1)
    seed = check_seed(seed, "seed", func)
    net = copy.deepcopy(model)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
    gen = torch.Generator().manual_seed(seed)
    net.train()
    with torch.no_grad():
        for _ in range(passes):
            order = torch.randperm(len(Xt), generator=gen)
            for start in range(0, len(Xt), batch_size):
                idx = order[start : start + batch_size]
                if len(idx) >= 2:  # as bnlib.train.fit: a batch of one sample has no variance
                    net(Xt[idx])
    return net.eval()


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
