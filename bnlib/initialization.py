"""Initializations that look at the data.

Chapter 3 asks whether batch normalization helps learning because it acts as a *smart
initialization*: with random weights, BN statistics taken from the (unlabelled) training data
already place every unit's boundary across the data. This module holds the tools of that
question:

* :func:`fold_batchnorm` computes the BN statistics once on a batch and folds them into the
  ``Linear`` layers: a plain network computing exactly what the BN network computes on that
  batch in training mode ("BN as an initialization only"); ``parts="center"`` or ``"scale"``
  folds only BN's centring or only its scaling, to take BN apart.
* :func:`lsuv` is a data-dependent initialization from the literature, Mishkin and Matas's
  layer-sequential unit-variance initialization, as a peer: as published (the variance pooled over
  a layer's units) or per unit (``per_unit=True``).
* :func:`linear_probe` trains only a linear classifier on the frozen features of a random
  network: what the unsupervised adaptation alone buys.

The experiment that compares them (its arms, runner and summaries) is
:mod:`bnlib.experiments.ch3_initialization`.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ._validation import check_choice
from .nets import MLP, affine_layers, check_points, has_batchnorm, read_batchnorm, to_sequential

__all__ = ["FOLD_PARTS", "fold_batchnorm", "lsuv", "features", "linear_probe"]


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


FOLD_PARTS = ("both", "center", "scale")
"""What :func:`fold_batchnorm` folds of each BN: all of it, its centring only, or its scaling only."""


def fold_batchnorm(model: nn.Module, X, *, parts: str = "both") -> nn.Sequential:
    """The plain network that computes what ``model`` computes on ``X`` in training mode.

    Every ``BatchNorm1d`` normalises with the mean and the *biased* variance of its input over
    the batch ``X`` (plus its ``eps``), as torch does in training mode. With those statistics
    fixed, BN is an affine map, and it is folded into the ``Linear`` before it
    (:func:`bnlib.nets.affine_layers` reads it; :func:`bnlib.nets.to_sequential` writes the
    result back as torch modules):

    ``W' = diag(gamma / sqrt(var + eps)) W``, ``b' = gamma (b - mean) / sqrt(var + eps) + beta``.

    ``parts`` takes BN apart. ``"center"`` folds only its centring, ``u -> gamma (u - mean) +
    beta``: every unit's boundary moves onto the data (its pre-activation has mean ``beta``) but
    keeps its scale. ``"scale"`` folds only its scaling, ``u -> gamma u / sqrt(var + eps) +
    beta``: every unit's pre-activation gets the spread ``gamma`` on the data, but with ``beta = 0``
    its boundary stays where the weights put it. At initialization (``gamma = 1``, ``beta = 0``)
    these are pure centring and pure scaling.

    The statistics are computed once, in float64, layer after layer (the input of a BN layer
    depends on the BN layers before it, folded in the same way). ``model`` is not modified (its
    running statistics are not touched); the result is a new ``Sequential`` of the same dtype,
    ``Linear`` and activation modules only (BN, ``Identity`` and ``Dropout`` gone), in training
    mode.

    Parameters
    ----------
    model
        A ``Sequential`` of ``Linear``, ``BatchNorm1d``, ``ReLU``/``LeakyReLU``, ``Identity``,
        ``Dropout``.
    X
        The batch (n, d_in), n >= 2: for chapter 3, the whole training set.
    parts
        ``"both"`` (BN as it is), ``"center"`` or ``"scale"``; see above.

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
    >>> centred = fold_batchnorm(net, X, parts="center")
    >>> with torch.no_grad():   # the first layer's pre-activations: centred, with their spread kept
    ...     h, u = centred[0](torch.tensor(X).float()), net[0](torch.tensor(X).float())
    >>> bool(h.mean(0).abs().max() < 1e-5), bool(torch.allclose(h.std(0), u.std(0), rtol=1e-4))
    (True, True)
    """
    modules = _check_model(model)
    Z = _inputs(modules, X)
    if len(Z) < 2:
        raise ValueError(f"batch statistics need at least 2 samples; got {len(Z)}")
    check_choice(parts, "parts", "fold_batchnorm", FOLD_PARTS)
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    if parts != "both":
        model = _partial_batchnorm(model, Z, parts)
    # bnlib.nets reads BN (the one reader): with the batch's statistics every BN is an affine map,
    # composed with the Linear before it; the float64 layers become Linear modules again
    return to_sequential(affine_layers(model, batch=Z), dtype=dtype).train()


def _partial_batchnorm(model: nn.Module, Z: np.ndarray, parts: str) -> nn.Module:
    """A float64 copy of ``model`` whose every BN, in training mode on ``Z``, computes only its
    centring (``parts="center"``) or only its scaling (``"scale"``).

    BN computes ``g (u - mean) / s + b`` with ``s = sqrt(var + eps)``; centring only,
    ``gamma (u - mean) + beta``, is that with ``g = gamma s``, ``b = beta``; scaling only,
    ``gamma u / s + beta``, is that with ``g = gamma``, ``b = beta + gamma mean / s``. The
    statistics of BN ``i`` depend only on the layers before it, which are rewritten first.
    """
    net = copy.deepcopy(model).double()
    norms = [m for m in _flatten(net) if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for i, m in enumerate(norms):
        if not m.affine:
            raise ValueError(f"fold_batchnorm(parts={parts!r}) needs BatchNorm1d layers with affine=True")
        r = read_batchnorm(net, batch=Z)[i]  # the statistics of BN i's input, earlier BNs rewritten
        s = np.sqrt(r.var + r.eps)
        gamma, beta = (torch.as_tensor(v) for v in (r.gamma, r.beta))
        with torch.no_grad():
            if parts == "center":
                m.weight.copy_(gamma * torch.as_tensor(s))
            else:
                m.bias.copy_(beta + gamma * torch.as_tensor(r.mean / s))
    return net


def lsuv(
    model: nn.Module,
    X,
    *,
    seed: int = 0,
    orthonormal: bool = True,
    per_unit: bool = False,
    tol: float = 0.01,
    max_iter: int = 20,
) -> nn.Sequential:
    """Layer-sequential unit-variance initialization (Mishkin and Matas, 2016), on a copy.

    First (``orthonormal=True``) every ``Linear`` weight is redrawn as an orthonormal matrix
    (``torch.nn.init.orthogonal_``, seeded), as the method prescribes. Then, from the first
    layer to the last, each ``Linear`` weight is divided by the standard deviation of that
    layer's output on ``X`` until its variance is within ``tol`` of 1. Biases are kept as they
    are. Unlike BN, the method only *scales*: it does not centre the pre-activations, so it does
    not move a unit's boundary towards the data.

    As published (``per_unit=False``) the variance is the one of all units and samples pooled.
    On data far from the origin that pooled variance is mostly the spread *between* the units'
    means (pooled variance = mean of the units' own variances + variance of their means), so a
    layer can reach pooled variance 1 while each unit varies little on the data. ``per_unit=True``
    divides each unit's weight row by that unit's own standard deviation over ``X``, until every
    unit's variance is within ``tol`` of 1.

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
    per_unit
        Rescale each unit by its own variance (False: one factor per layer, the pooled variance).
    tol, max_iter
        Stop rescaling a layer when ``|var - 1| < tol`` (for every unit, with ``per_unit``) or
        after ``max_iter`` rescalings.

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
    >>> far = X / 5 + 4.0                        # uncentred data: pooled and own variances differ
    >>> pooled, own = lsuv(MLP([2, 16], seed=0), far), lsuv(MLP([2, 16], seed=0), far, per_unit=True)
    >>> with torch.no_grad():   # the pre-activations of the one hidden layer
    ...     vp, vu = pooled[0](torch.tensor(far).float()), own[0](torch.tensor(far).float())
    >>> round(float(vp.var(unbiased=False)), 1), bool(vp.var(0).mean() < 0.5)
    (1.0, True)
    >>> bool(torch.allclose(vu.var(0, unbiased=False), torch.ones(16), atol=0.01))
    True
    """
    modules = _check_model(model)
    if has_batchnorm(model):
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
                var = z.var(0, unbiased=False) if per_unit else z.var(unbiased=False)
                if not bool(torch.isfinite(var).all()) or bool((var <= 0).any()):
                    raise ValueError("a layer's output has zero or non-finite variance on X"
                                     f"{' (a unit is constant)' if per_unit else ''}; lsuv cannot rescale it")
                if bool(((var - 1.0).abs() < tol).all()):
                    break
                m.weight.div_(var.sqrt()[:, None] if per_unit else var.sqrt())
    return net


def features(model: nn.Module, X, *, batch=None) -> np.ndarray:
    """The output of the last hidden layer (the input of the final ``Linear``), in float64.

    BN layers normalise with the statistics of ``batch`` (training mode, through
    :func:`fold_batchnorm`); ``batch=None`` uses ``X`` itself.
    """
    modules = _check_model(model)
    Z = _inputs(modules, X)
    if has_batchnorm(model):
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
