"""Networks, and the one place where a torch model becomes float64 affine layers.

Every other module of :mod:`bnlib` works on the list of :class:`AffineLayer` that
:func:`affine_layers` returns, so batch normalization is handled here and only here:
a ``BatchNorm1d`` is an affine map once its statistics are fixed, and it is folded into
the ``Linear`` before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["MLP", "AffineLayer", "affine_layers", "forward", "preactivations", "check_points"]


def MLP(
    widths: Sequence[int],
    *,
    batchnorm: bool = False,
    negative_slope: float = 0.1,
    n_classes: int | None = None,
    seed: int = 0,
) -> nn.Sequential:
    """A seeded multilayer perceptron: ``Linear -> (BatchNorm1d) -> LeakyReLU`` blocks.

    Parameters
    ----------
    widths
        ``[d_in, d_1, ..., d_L]``: the input dimension, then the width of each hidden layer.
        ``[2, 6, 6, 6, 6]`` is the four-layer, six-unit network of the paper's Figure 1.
    batchnorm
        Put a ``BatchNorm1d`` between each ``Linear`` and its activation. Its ``gamma`` starts
        at 1 and ``beta`` at 0, as in torch.
    negative_slope
        Slope of the activation for negative inputs: 0.1 gives a leaky-ReLU, 0 a ReLU
        (``nn.ReLU``).
    n_classes
        If given, a final ``Linear`` to ``n_classes`` outputs (no activation after it).
        Use 1 for a binary classifier read by the sign of its output.
    seed
        Seed of the weight initialization (torch's default Kaiming-uniform). The global torch
        random state is left as it was.

    Returns
    -------
    torch.nn.Sequential
        A float32 model in training mode.

    Examples
    --------
    >>> net = MLP([2, 6, 6], batchnorm=True, n_classes=1, seed=3)
    >>> [type(m).__name__ for m in net]
    ['Linear', 'BatchNorm1d', 'LeakyReLU', 'Linear', 'BatchNorm1d', 'LeakyReLU', 'Linear']
    >>> bool(torch.equal(net[0].weight, MLP([2, 6, 6], seed=3)[0].weight))
    True
    """
    widths = [int(w) for w in widths]
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(
            f"widths must list the input dimension and at least one hidden width, all >= 1; got {widths}"
        )
    if not np.isfinite(negative_slope) or negative_slope < 0:
        raise ValueError(f"negative_slope must be a finite number >= 0; got {negative_slope}")
    if n_classes is not None and int(n_classes) < 1:
        raise ValueError(f"n_classes must be None or >= 1; got {n_classes}")
    layers: list[nn.Module] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for d_in, d_out in zip(widths[:-1], widths[1:]):
            layers.append(nn.Linear(d_in, d_out))
            if batchnorm:
                layers.append(nn.BatchNorm1d(d_out))
            layers.append(nn.ReLU() if negative_slope == 0 else nn.LeakyReLU(negative_slope))
        if n_classes is not None:
            layers.append(nn.Linear(widths[-1], int(n_classes)))
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class AffineLayer:
    """One layer of a network read as float64: ``z_next = act(W @ z + b)``.

    ``slope`` is the activation's slope for negative pre-activations (1 for no activation,
    which is how an output layer is marked: ``has_activation`` is False).
    """

    W: np.ndarray
    b: np.ndarray
    slope: float
    has_activation: bool

    def preactivation(self, z: np.ndarray) -> np.ndarray:
        return z @ self.W.T + self.b

    def __call__(self, z: np.ndarray) -> np.ndarray:
        h = self.preactivation(z)
        return np.where(h > 0, h, self.slope * h) if self.has_activation else h


def _flatten(model: nn.Module) -> list[nn.Module]:
    if isinstance(model, nn.Sequential):
        return [m for child in model for m in _flatten(child)]
    return [model]


def _finite(name: str, array: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values; a partition needs finite numbers")
    return array


def check_points(points, dim: int, name: str = "points") -> np.ndarray:
    """Return ``points`` as a finite float64 array of shape (n, dim), or raise ``ValueError``."""
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().numpy()
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"{name} must have shape (n, {dim}); got shape {arr.shape}")
    return _finite(name, arr)


def affine_layers(model: nn.Module, batch=None) -> list[AffineLayer]:
    """Read a ``torch.nn.Sequential`` into float64 affine layers, BN folded in.

    Supported modules: ``Linear``, ``BatchNorm1d``, ``ReLU``, ``LeakyReLU``, ``Identity``
    (and nested ``Sequential``). Consecutive affine modules are composed into one layer;
    each activation closes a layer. Trailing affine modules form an output layer with
    ``has_activation=False``.

    Parameters
    ----------
    model
        The network. It is not modified (running statistics are not touched).
    batch
        ``None``: every ``BatchNorm1d`` uses its running statistics (eval mode).
        An array ``(N, d_in)``: every ``BatchNorm1d`` uses the mean and the *biased* variance
        of this batch at its input, plus the layer's ``eps``, exactly as torch does in
        training mode. ``N`` must be at least 2.

    Returns
    -------
    list of AffineLayer

    Examples
    --------
    >>> net = MLP([2, 4], batchnorm=True, seed=0)
    >>> X = np.random.default_rng(0).normal(size=(50, 2))
    >>> (layer,) = affine_layers(net, batch=X)
    >>> h = layer.preactivation(X)          # BN output before the activation
    >>> bool(np.allclose(h.mean(0), 0, atol=1e-9)), bool(np.allclose(h.std(0), 1, atol=1e-3))
    (True, True)
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module (a Sequential); got {type(model).__name__}")
    modules = _flatten(model)
    if not any(isinstance(m, nn.Linear) for m in modules):
        raise ValueError("model has no nn.Linear layer; expected a Sequential of Linear/BatchNorm1d/activations")
    d_in = next(m for m in modules if isinstance(m, nn.Linear)).in_features
    z = None
    if batch is not None:
        z = check_points(batch, d_in, "batch")
        if len(z) < 2 and any(isinstance(m, nn.BatchNorm1d) for m in modules):
            raise ValueError(
                f"batch statistics need a batch of at least 2 samples; got {len(z)} "
                "(torch's BatchNorm1d refuses a batch of 1 in training mode too)"
            )

    layers: list[AffineLayer] = []
    W = np.eye(d_in)
    b = np.zeros(d_in)
    dim = d_in
    pending = False  # an affine map not yet closed by an activation
    for m in modules:
        if isinstance(m, nn.Identity):
            continue
        if isinstance(m, nn.Linear):
            if m.in_features != dim:
                raise ValueError(f"nn.Linear expects {m.in_features} inputs but receives {dim}")
            Wm = _finite("a Linear weight", m.weight.detach().double().cpu().numpy())
            bm = (
                _finite("a Linear bias", m.bias.detach().double().cpu().numpy())
                if m.bias is not None
                else np.zeros(m.out_features)
            )
            W, b = Wm @ W, Wm @ b + bm
            dim = m.out_features
            pending = True
        elif isinstance(m, nn.BatchNorm1d):
            if m.num_features != dim:
                raise ValueError(f"BatchNorm1d has {m.num_features} features but receives {dim}")
            if z is not None:
                h = z @ W.T + b
                mean, var = h.mean(0), h.var(0)  # biased variance, as torch in training mode
            elif m.track_running_stats and m.running_mean is not None:
                mean = m.running_mean.detach().double().cpu().numpy()
                var = m.running_var.detach().double().cpu().numpy()
            else:
                raise ValueError("a BatchNorm1d without running statistics needs batch=... to be read")
            gamma = m.weight.detach().double().cpu().numpy() if m.affine else np.ones(dim)
            beta = m.bias.detach().double().cpu().numpy() if m.affine else np.zeros(dim)
            scale = _finite("BatchNorm1d parameters", gamma / np.sqrt(var + m.eps))
            W, b = scale[:, None] * W, scale * (b - mean) + _finite("BatchNorm1d beta", beta)
            pending = True
        elif isinstance(m, (nn.ReLU, nn.LeakyReLU)):
            if not pending:
                raise ValueError("an activation must follow a Linear (two activations in a row are not supported)")
            slope = float(m.negative_slope) if isinstance(m, nn.LeakyReLU) else 0.0
            layer = AffineLayer(W, b, slope, True)
            layers.append(layer)
            if z is not None:
                z = layer(z)
            W, b, pending = np.eye(dim), np.zeros(dim), False
        else:
            raise ValueError(
                f"unsupported layer {type(m).__name__}: bnlib reads Linear, BatchNorm1d, ReLU, "
                "LeakyReLU and Identity"
            )
    if pending:
        layers.append(AffineLayer(W, b, 1.0, False))
    return layers


def forward(layers: Sequence[AffineLayer], x) -> np.ndarray:
    """The network's output at points ``x`` (n, d_in), in float64."""
    z = check_points(x, layers[0].W.shape[1], "x")
    for layer in layers:
        z = layer(z)
    return z


def preactivations(layers: Sequence[AffineLayer], x) -> list[np.ndarray]:
    """The pre-activation of every layer at points ``x``: a list of (n, d_l) arrays."""
    z = check_points(x, layers[0].W.shape[1], "x")
    out = []
    for layer in layers:
        out.append(layer.preactivation(z))
        z = layer(z)
    return out
