"""Initializations that look at the data, and the experiment that compares them.

Chapter 3 asks whether batch normalization helps learning because it acts as a *smart
initialization*: with random weights, BN statistics taken from the (unlabelled) training data
already place every unit's boundary across the data. This module holds the pieces of that
experiment:

* :func:`fold_batchnorm` computes the BN statistics once on a batch and folds them into the
  ``Linear`` layers: a plain network computing exactly what the BN network computes on that
  batch in training mode ("BN as an initialization only").
* :func:`lsuv` is a data-dependent initialization from the literature, Mishkin and Matas's
  layer-sequential unit-variance initialization, as a peer.
* :func:`linear_probe` trains only a linear classifier on the frozen features of a random
  network: what the unsupervised adaptation alone buys.
* :func:`initial_model` builds the starting network of each arm from one seed, and
  :func:`run_arms` trains every arm on every seed with :func:`bnlib.train.fit` and returns a
  tidy table (a dict of numpy arrays, one row per arm, seed and epoch).
* :func:`learning_curves`, :func:`epochs_to_reach` and :func:`mean_interval` summarise it, and
  :func:`snapshots` keeps the weights at a few epochs, for pictures of training.
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .nets import MLP, check_points
from .geometry import mean_interval  # noqa: F401  (re-exported: the chapter uses it from here)
from .train import fit

__all__ = [
    "ARMS",
    "fold_batchnorm",
    "lsuv",
    "features",
    "linear_probe",
    "initial_model",
    "run_arms",
    "learning_curves",
    "epochs_to_reach",
    "mean_interval",
    "snapshots",
]

ARMS = ("plain", "bn", "bn_init", "lsuv")
"""The arms of the experiment, all built from one seed by :func:`initial_model`.

``"plain"``: the MLP without BN, torch's default (Kaiming-uniform) weights.
``"bn"``: the same weights with ``BatchNorm1d`` after every hidden ``Linear``, kept in training.
``"bn_init"``: the ``"bn"`` network with its statistics on the training inputs folded into the
``Linear`` layers (:func:`fold_batchnorm`); a plain network from then on.
``"lsuv"``: the plain network re-initialised by :func:`lsuv` on the training inputs.
"""


def _flatten(model: nn.Module) -> list[nn.Module]:
    if isinstance(model, nn.Sequential):
        return [m for child in model for m in _flatten(child)]
    return [model]


def _check_model(model) -> list[nn.Module]:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module (a Sequential); got {type(model).__name__}")
    modules = _flatten(model)
    if not any(isinstance(m, nn.Linear) for m in modules):
        raise ValueError("model has no nn.Linear layer; expected a Sequential of Linear/BatchNorm1d/activations")
    return modules


def _inputs(model_modules: list[nn.Module], X, name: str = "X") -> np.ndarray:
    d_in = next(m for m in model_modules if isinstance(m, nn.Linear)).in_features
    return check_points(X, d_in, name)


def fold_batchnorm(model: nn.Module, X) -> nn.Sequential:
    """The plain network that computes what ``model`` computes on ``X`` in training mode.

    Every ``BatchNorm1d`` that follows a ``Linear`` normalises with the mean and the *biased*
    variance of its input over the batch ``X`` (plus its ``eps``), as torch does in training
    mode. With those statistics fixed, BN is an affine map, and it is folded into the
    ``Linear`` before it:

    ``W' = diag(gamma / sqrt(var + eps)) W``, ``b' = gamma (b - mean) / sqrt(var + eps) + beta``.

    The statistics are computed once, in float64, layer after layer (the input of a BN layer
    depends on the BN layers before it). ``model`` is not modified (its running statistics are
    not touched); the result is a new ``Sequential`` of the same dtype, with the BN modules
    removed, in training mode.

    Parameters
    ----------
    model
        A ``Sequential`` of ``Linear``, ``BatchNorm1d``, ``ReLU``/``LeakyReLU``, ``Identity``.
        Every ``BatchNorm1d`` must come right after a ``Linear``.
    X
        The batch (n, d_in), n >= 2: for chapter 3, the whole training set.

    Returns
    -------
    torch.nn.Sequential

    Examples
    --------
    >>> net = MLP([2, 8, 8], batchnorm=True, n_classes=1, seed=0)
    >>> X = np.random.default_rng(0).normal(size=(100, 2)) + 3.0
    >>> plain = fold_batchnorm(net, X)
    >>> [type(m).__name__ for m in plain]
    ['Linear', 'LeakyReLU', 'Linear', 'LeakyReLU', 'Linear']
    >>> with torch.no_grad():
    ...     gap = (plain(torch.tensor(X).float()) - net.train()(torch.tensor(X).float())).abs().max()
    >>> bool(gap < 1e-5)
    True
    """
    modules = _check_model(model)
    z = torch.as_tensor(_inputs(modules, X), dtype=torch.float64)
    if len(z) < 2:
        raise ValueError(f"batch statistics need at least 2 samples; got {len(z)}")
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    out: list[nn.Module] = []
    with torch.no_grad():
        for i, m in enumerate(modules):
            if isinstance(m, nn.BatchNorm1d):
                if not out or not isinstance(out[-1], nn.Linear) or not isinstance(modules[i - 1], nn.Linear):
                    raise ValueError("fold_batchnorm folds a BatchNorm1d into the Linear right before it; "
                                     f"module {i} (BatchNorm1d) does not follow a Linear")
                lin = out[-1]
                if m.num_features != lin.out_features:
                    raise ValueError(f"BatchNorm1d has {m.num_features} features but receives {lin.out_features}")
                mean, var = z.mean(0), z.var(0, unbiased=False)  # z is the Linear's output here
                gamma = m.weight.double() if m.affine else torch.ones_like(mean)
                beta = m.bias.double() if m.affine else torch.zeros_like(mean)
                scale = gamma / torch.sqrt(var + m.eps)
                W64, b64 = lin.weight.double(), lin.bias.double()
                lin.weight.copy_((scale[:, None] * W64).to(dtype))
                lin.bias.copy_((scale * (b64 - mean) + beta).to(dtype))
                z = scale * (z - mean) + beta
            elif isinstance(m, nn.Linear):
                new = copy.deepcopy(m)
                if new.bias is None:  # folding needs a bias to carry the mean
                    new = nn.Linear(m.in_features, m.out_features, dtype=m.weight.dtype)
                    new.weight.copy_(m.weight)
                    new.bias.zero_()
                out.append(new)
                z = z @ m.weight.double().T + (m.bias.double() if m.bias is not None else 0.0)
            elif isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.Identity)):
                out.append(copy.deepcopy(m))
                z = m(z)
            else:
                raise ValueError(
                    f"unsupported layer {type(m).__name__}: fold_batchnorm reads Linear, BatchNorm1d, "
                    "ReLU, LeakyReLU and Identity"
                )
    return nn.Sequential(*out).train()


def lsuv(
    model: nn.Module,
    X,
    *,
    seed: int = 0,
    orthonormal: bool = True,
    tol: float = 0.01,
    max_iter: int = 20,
) -> nn.Sequential:
    """Layer-sequential unit-variance initialization (Mishkin and Matas, 2016), on a copy.

    First (``orthonormal=True``) every ``Linear`` weight is redrawn as an orthonormal matrix
    (``torch.nn.init.orthogonal_``, seeded), as the method prescribes. Then, from the first
    layer to the last, each ``Linear`` weight is divided by the standard deviation of that
    layer's output on ``X`` (all units and samples pooled, as in the original method) until
    its variance is within ``tol`` of 1. Biases are kept as they are. Unlike BN, the method
    only *scales*: it does not centre the pre-activations, so it does not move a unit's
    boundary towards the data.

    Parameters
    ----------
    model
        A plain ``Sequential`` (no ``BatchNorm1d``); it is not modified.
    X
        The data batch (n, d_in), n >= 2.
    seed
        Seed of the orthonormal draw.
    orthonormal
        Redraw the weights as orthonormal matrices first; False only rescales the given ones.
    tol, max_iter
        Stop rescaling a layer when ``|var - 1| < tol`` or after ``max_iter`` rescalings.

    Returns
    -------
    torch.nn.Sequential
        The re-initialised copy.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(200, 2)) * 5
    >>> net = lsuv(MLP([2, 16, 16], n_classes=3, seed=0), X, seed=0)
    >>> Xt = torch.tensor(X).float()
    >>> with torch.no_grad():
    ...     v = [float(net[:i + 1](Xt).var(unbiased=False)) for i in (0, 2, 4)]
    >>> [round(x, 1) for x in v]
    [1.0, 1.0, 1.0]
    """
    modules = _check_model(model)
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in modules):
        raise ValueError("lsuv expects a plain network without BatchNorm; fold or drop the BN layers first")
    Z = _inputs(modules, X)
    if len(Z) < 2:
        raise ValueError(f"lsuv needs at least 2 samples to measure a variance; got {len(Z)}")
    if not tol > 0 or int(max_iter) != max_iter or max_iter < 1:
        raise ValueError(f"tol must be > 0 and max_iter an integer >= 1; got tol={tol}, max_iter={max_iter}")
    net = copy.deepcopy(model)
    modules = _flatten(net)
    dtype = next(net.parameters()).dtype
    Xt = torch.as_tensor(Z, dtype=dtype)
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        if orthonormal:
            for m in modules:
                if isinstance(m, nn.Linear):
                    nn.init.orthogonal_(m.weight, generator=gen)
        for index, m in enumerate(modules):
            if not isinstance(m, nn.Linear):
                continue
            for _ in range(int(max_iter)):
                z = Xt
                for earlier in modules[: index + 1]:
                    z = earlier(z)
                var = float(z.var(unbiased=False))
                if not np.isfinite(var) or var <= 0:
                    raise ValueError("a layer's output has zero or non-finite variance on X; lsuv cannot rescale it")
                if abs(var - 1.0) < tol:
                    break
                m.weight.div_(var ** 0.5)
    return net


def features(model: nn.Module, X, *, batch=None) -> np.ndarray:
    """The output of the last hidden layer (the input of the final ``Linear``), in float64.

    BN layers normalise with the statistics of ``batch`` (training mode, through
    :func:`fold_batchnorm`); ``batch=None`` uses ``X`` itself.
    """
    modules = _check_model(model)
    Z = _inputs(modules, X)
    if any(isinstance(m, nn.BatchNorm1d) for m in modules):
        model = fold_batchnorm(model, Z if batch is None else batch)
        modules = _flatten(model)
    last = max(i for i, m in enumerate(modules) if isinstance(m, nn.Linear))
    if last == 0:
        raise ValueError("model has no hidden layer: its features are its inputs")
    body = copy.deepcopy(nn.Sequential(*modules[:last])).double()
    with torch.no_grad():
        return body(torch.as_tensor(Z)).numpy()


def linear_probe(model: nn.Module, X_train, y_train, X_test, y_test, *, C: float = 1.0, seed: int = 0) -> dict:
    """Train only a linear classifier on the frozen features of ``model``; report its accuracy.

    The features are the last hidden layer's outputs (:func:`features`; BN statistics from
    ``X_train``, also for the test points, as a network at initialization would use them).
    They are standardised (mean 0, variance 1 per feature, fitted on the training set) and
    fed to scikit-learn's ``LogisticRegression`` (L2 penalty ``C``, seeded). The network is not
    trained: the probe measures how linearly separable its random features already are.

    Returns
    -------
    dict
        ``train_accuracy`` and ``test_accuracy`` (floats).

    Examples
    --------
    >>> from bnlib import data
    >>> X, y = data.moons(200, seed=0)
    >>> r = linear_probe(MLP([2, 32, 32], n_classes=1, seed=0), X, y, X, y)
    >>> 0.5 < r["train_accuracy"] <= 1.0
    True
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if not C > 0:
        raise ValueError(f"C must be > 0; got {C}")
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    F_train = features(model, X_train)
    F_test = features(model, X_test, batch=X_train)
    if len(F_train) != len(y_train) or len(F_test) != len(y_test):
        raise ValueError("X_train/y_train and X_test/y_test must have matching lengths")
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000, random_state=seed))
    clf.fit(F_train, y_train)
    return {
        "train_accuracy": float(clf.score(F_train, y_train)),
        "test_accuracy": float(clf.score(F_test, y_test)),
    }


def _check_arm(arm: str) -> str:
    if arm not in ARMS:
        raise ValueError(f"arm must be one of {ARMS}; got {arm!r}")
    return arm


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
    _check_arm(arm)
    net = MLP(widths, batchnorm=arm in ("bn", "bn_init"), negative_slope=negative_slope,
              n_classes=n_classes, seed=seed)
    if arm == "bn_init":
        return fold_batchnorm(net, X)
    if arm == "lsuv":
        return lsuv(net, X, seed=seed)
    return net


def _check_seeds(seeds) -> list[int]:
    try:
        out = [s for s in seeds]
    except TypeError:
        raise ValueError(f"seeds must be a sequence of integers; got {seeds!r}") from None
    if not out or any(isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)) for s in out):
        raise ValueError(f"seeds must be a non-empty sequence of integers; got {seeds!r}")
    return [int(s) for s in out]


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
    arms = [_check_arm(a) for a in (arms if not isinstance(arms, str) else [arms])]
    if not arms:
        raise ValueError("arms must list at least one arm")
    seeds = _check_seeds(seeds)
    Xn = check_points(X, int(widths[0]), "X")
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
    """Per arm and epoch: mean of ``metric`` over seeds and its interval (:func:`mean_interval`).

    Returns ``{arm: {"epoch", "mean", "lo", "hi"}}``.
    """
    if metric not in table:
        raise ValueError(f"metric must be a column of the table {sorted(table)}; got {metric!r}")
    out = {}
    for arm in dict.fromkeys(table["arm"].tolist()):
        sel = table["arm"] == arm
        epochs = np.unique(table["epoch"][sel])
        stats = np.array([mean_interval(table[metric][sel & (table["epoch"] == e)], level) for e in epochs])
        out[arm] = {"epoch": epochs, "mean": stats[:, 0], "lo": stats[:, 1], "hi": stats[:, 2]}
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
    _check_arm(arm)
    at = _check_seeds(at)
    if min(at) < 0:
        raise ValueError(f"snapshot epochs must be >= 0; got {at}")
    Xn = check_points(X, int(widths[0]), "X")
    start = initial_model(arm, widths, n_classes, Xn, seed=seed, negative_slope=negative_slope)
    out = []
    for e in at:
        net = copy.deepcopy(start)
        fit(net, Xn, y, epochs=e, batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed, progress=False)
        out.append({k: v.detach().clone() for k, v in net.state_dict().items()})
    return out
