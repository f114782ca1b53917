"""Networks, and the one place where a torch model becomes float64 affine layers.

Every other module of :mod:`bnlib` works on the list of :class:`AffineLayer` that
:func:`affine_layers` returns, so batch normalization is handled here and only here:
a ``BatchNorm1d`` is an affine map once its statistics are fixed, and it is folded into
the ``Linear`` before it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ._validation import check_int, check_ints, check_number, check_optional_int, check_seed
from ._validation import check_points as _check_points

__all__ = [
    "MLP",
    "AffineLayer",
    "BatchNormRead",
    "affine_layers",
    "read_batchnorm",
    "has_batchnorm",
    "precise_batchnorm",
    "to_sequential",
    "activation_patterns",
    "forward",
    "preactivations",
    "check_points",
]


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
    widths = check_ints(widths, "widths", "MLP", at_least=1, min_len=2)
    negative_slope = check_number(negative_slope, "negative_slope", "MLP", low=0)
    n_classes = check_optional_int(n_classes, "n_classes", "MLP", at_least=1)
    seed = check_seed(seed, "seed", "MLP")
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


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().cpu().numpy()


def check_points(points, dim: int | None, name: str = "points", func: str = "", *, at_least: int = 0) -> np.ndarray:
    """Return ``points`` as a finite float64 array of shape (n, dim), or raise ``ValueError``.

    ``dim=None`` accepts any number of columns; ``at_least`` is the fewest rows accepted.
    """
    return _check_points(points, dim, name, func, at_least=at_least)


def _is_batchnorm(m: nn.Module) -> bool:
    return isinstance(m, nn.modules.batchnorm._BatchNorm)


def _is_identity(m: nn.Module) -> bool:
    # Dropout and bnlib.noise.BatchNoise compute the identity in evaluation; bnlib reads a network as
    # the function it computes there (BN statistics are chosen separately: running or a batch's).
    return isinstance(m, (nn.Identity, nn.Dropout)) or bool(getattr(m, "identity_in_eval", False))


def has_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` holds a batch-normalization module (any of torch's ``BatchNorm`` classes).

    Examples
    --------
    >>> has_batchnorm(MLP([2, 3], batchnorm=True)), has_batchnorm(MLP([2, 3]))
    (True, False)
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    return any(_is_batchnorm(m) for m in model.modules())


@dataclass(frozen=True)
class BatchNormRead:
    """One ``BatchNorm1d`` of a network as bnlib reads it: parameters and the statistics in use.

    The BN module sits inside hidden layer ``layer`` (1-based) and normalises
    ``u = weight @ z + bias``, where ``z`` is that layer's input and ``weight``, ``bias`` the
    affine modules between the layer's input and the BN (for an :func:`MLP`, the ``Linear``).

    Attributes
    ----------
    layer : int
        The hidden layer (1-based) holding the module.
    block : tuple of str
        The modules of that layer up to and including the BN, e.g. ``("Linear", "BatchNorm1d")``.
    weight, bias : ndarray (k, d), (k,)
        The affine map from the layer's input to the BN's input.
    mean, var : ndarray (k,)
        The statistics BN uses: the mean and the *biased* variance of ``u`` over the batch
        (``source == "batch"``, as torch in training mode), or the running statistics
        (``source == "running"``, as torch in eval mode).
    gamma, beta : ndarray (k,)
        The affine parameters (1 and 0 when the module has ``affine=False``).
    eps : float
    source : str
        ``"batch"`` or ``"running"``.
    inputs : ndarray (N, d) or None
        The batch at the layer's input (None for running statistics).
    """

    layer: int
    block: tuple
    weight: np.ndarray
    bias: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    eps: float
    source: str
    inputs: np.ndarray | None = None

    @property
    def scale(self) -> np.ndarray:
        """``gamma / sqrt(var + eps)``: BN's slope on each unit."""
        return self.gamma / np.sqrt(self.var + self.eps)


def _read(model: nn.Module, batch=None) -> tuple[list[AffineLayer], list[BatchNormRead]]:
    """The one walk over a torch model's modules: its affine layers (BN folded) and its BN reads."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module (a Sequential); got {type(model).__name__}")
    modules = _flatten(model)
    if not any(isinstance(m, nn.Linear) for m in modules):
        raise ValueError("model has no nn.Linear layer; expected a Sequential of Linear/BatchNorm1d/activations")
    d_in = next(m for m in modules if isinstance(m, nn.Linear)).in_features
    z = None
    if batch is not None:
        z = check_points(batch, d_in, "batch")
        if len(z) < 2 and any(_is_batchnorm(m) for m in modules):
            raise ValueError(
                f"batch statistics need a batch of at least 2 samples; got {len(z)} "
                "(torch's BatchNorm1d refuses a batch of 1 in training mode too)"
            )

    layers: list[AffineLayer] = []
    reads: list[BatchNormRead] = []
    W = np.eye(d_in)
    b = np.zeros(d_in)
    dim = d_in
    block: list[str] = []
    pending = False  # an affine map not yet closed by an activation
    for m in modules:
        if _is_identity(m):
            continue
        if isinstance(m, nn.Linear):
            if m.in_features != dim:
                raise ValueError(f"nn.Linear expects {m.in_features} inputs but receives {dim}")
            Wm = _finite("a Linear weight", _np(m.weight))
            bm = _finite("a Linear bias", _np(m.bias)) if m.bias is not None else np.zeros(m.out_features)
            W, b = Wm @ W, Wm @ b + bm
            dim = m.out_features
            pending = True
        elif isinstance(m, nn.BatchNorm1d):
            if m.num_features != dim:
                raise ValueError(f"BatchNorm1d has {m.num_features} features but receives {dim}")
            if z is not None:
                h = z @ W.T + b
                mean, var = h.mean(0), h.var(0)  # biased variance, as torch in training mode
                source = "batch"
            elif m.track_running_stats and m.running_mean is not None:
                mean, var = _np(m.running_mean), _np(m.running_var)
                source = "running"
            else:
                raise ValueError("a BatchNorm1d without running statistics needs batch=... to be read")
            gamma = _np(m.weight) if m.affine else np.ones(dim)
            beta = _np(m.bias) if m.affine else np.zeros(dim)
            block.append(type(m).__name__)
            reads.append(BatchNormRead(len(layers) + 1, tuple(block), W.copy(), b.copy(), mean, var, gamma,
                                       beta, float(m.eps), source, None if z is None else z.copy()))
            scale = _finite("BatchNorm1d parameters", gamma / np.sqrt(var + m.eps))
            W, b = scale[:, None] * W, scale * (b - mean) + _finite("BatchNorm1d beta", beta)
            pending = True
            continue
        elif isinstance(m, (nn.ReLU, nn.LeakyReLU)):
            if not pending:
                raise ValueError("an activation must follow a Linear (two activations in a row are not supported)")
            slope = float(m.negative_slope) if isinstance(m, nn.LeakyReLU) else 0.0
            layer = AffineLayer(W, b, slope, True)
            layers.append(layer)
            if z is not None:
                z = layer(z)
            W, b, pending, block = np.eye(dim), np.zeros(dim), False, []
            continue
        else:
            raise ValueError(
                f"unsupported layer {type(m).__name__}: bnlib reads Linear, BatchNorm1d, ReLU, "
                "LeakyReLU, Identity and Dropout"
            )
        block.append(type(m).__name__)
    if pending:
        layers.append(AffineLayer(W, b, 1.0, False))
    return layers, reads


def affine_layers(model: nn.Module, batch=None) -> list[AffineLayer]:
    """Read a ``torch.nn.Sequential`` into float64 affine layers, BN folded in.

    Supported modules: ``Linear``, ``BatchNorm1d``, ``ReLU``, ``LeakyReLU``, ``Identity``,
    ``Dropout`` and :class:`bnlib.noise.BatchNoise` (the last two read as what they are in
    evaluation: the identity), and nested ``Sequential``. Consecutive affine modules are composed
    into one layer; each activation closes a layer. Trailing affine modules form an output layer
    with ``has_activation=False``.

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
    return _read(model, batch)[0]


def read_batchnorm(model: nn.Module, batch=None) -> list[BatchNormRead]:
    """Every ``BatchNorm1d`` of ``model``, in order: its parameters and the statistics it uses.

    The same walk as :func:`affine_layers` (same ``batch`` rule: None reads the running
    statistics, an (N, d_in) array the statistics of that batch as in training mode).

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(64, 2)) + 3.0
    >>> (r,) = read_batchnorm(MLP([2, 4], batchnorm=True, seed=0), batch=X)
    >>> r.layer, r.block, r.source, bool(np.allclose(r.mean, (X @ r.weight.T + r.bias).mean(0)))
    (1, ('Linear', 'BatchNorm1d'), 'batch', True)
    """
    return _read(model, batch)[1]


def precise_batchnorm(model: nn.Module, X) -> nn.Module:
    """A copy of ``model`` whose BN layers carry the statistics of all of ``X`` ("precise BN").

    Every ``BatchNorm1d``'s running mean and running variance become the mean and the *unbiased*
    variance of its input over the whole of ``X``, each layer's input computed with the layers
    before it normalised by the statistics of ``X`` (as in training mode). That is exactly what
    torch stores after one training-mode pass of ``X`` as a single batch with ``momentum=None``.
    Evaluated in ``eval()`` mode, the copy then uses statistics of the data it was trained on,
    instead of the exponential average of mini-batch statistics taken while the weights moved.
    ``Dropout`` and :class:`bnlib.noise.BatchNoise` are read as the identity (as at evaluation).
    ``model`` is not modified; the copy keeps its mode (train or eval).

    Examples
    --------
    >>> net = MLP([2, 4, 4], batchnorm=True, n_classes=1, seed=0)
    >>> X = np.random.default_rng(0).normal(size=(100, 2)) + 3.0
    >>> ref = copy.deepcopy(net).train()
    >>> for m in ref.modules():
    ...     if isinstance(m, nn.BatchNorm1d):
    ...         m.reset_running_stats(); m.momentum = None
    >>> _ = ref(torch.tensor(X, dtype=torch.float32))
    >>> precise = precise_batchnorm(net, X)
    >>> bool(torch.allclose(precise[1].running_var, ref[1].running_var, rtol=1e-5))
    True
    """
    reads = read_batchnorm(model, batch=X)
    net = copy.deepcopy(model)
    norms = [m for m in _flatten(net) if _is_batchnorm(m)]
    n = len(check_points(X, None, "X", "precise_batchnorm"))
    with torch.no_grad():
        for m, r in zip(norms, reads):
            if m.running_mean is None:
                raise ValueError("precise_batchnorm needs BatchNorm1d layers that track running statistics")
            m.running_mean.copy_(torch.as_tensor(r.mean))
            m.running_var.copy_(torch.as_tensor(r.var * n / (n - 1)))  # torch stores the unbiased variance
    return net


def to_sequential(layers: Sequence[AffineLayer], dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """A torch ``Sequential`` (``Linear`` and activations) computing the affine layers ``layers``.

    Examples
    --------
    >>> net = MLP([2, 3, 3], batchnorm=True, n_classes=1, seed=0)
    >>> X = np.random.default_rng(0).normal(size=(20, 2))
    >>> plain = to_sequential(affine_layers(net, batch=X), dtype=torch.float64)
    >>> [type(m).__name__ for m in plain]
    ['Linear', 'LeakyReLU', 'Linear', 'LeakyReLU', 'Linear']
    """
    out: list[nn.Module] = []
    with torch.no_grad(), torch.random.fork_rng(devices=[]):  # nn.Linear's own init draws: leave no trace
        for layer in layers:
            k, d = layer.W.shape
            lin = nn.Linear(d, k, dtype=dtype)
            lin.weight.copy_(torch.as_tensor(layer.W).to(dtype))
            lin.bias.copy_(torch.as_tensor(layer.b).to(dtype))
            out.append(lin)
            if layer.has_activation:
                out.append(nn.ReLU() if layer.slope == 0 else nn.LeakyReLU(layer.slope))
    return nn.Sequential(*out)


def activation_patterns(layers: Sequence[AffineLayer], X, *, layer: int | None = None) -> np.ndarray:
    """Activation pattern (pre-activation > 0) of hidden layers ``1..layer`` at points ``X``.

    The one implementation behind :meth:`bnlib.Partition.activation_patterns` and
    :mod:`bnlib.geometry`: bool (n, units of layers 1..layer), one column per unit in layer order.

    Examples
    --------
    >>> net = MLP([2, 3, 2], seed=0)
    >>> activation_patterns(affine_layers(net), [[0.5, -1.0]]).shape
    (1, 5)
    """
    layers = list(layers)
    depth = sum(lay.has_activation for lay in layers)
    layer = depth if layer is None else check_int(layer, "layer", "activation_patterns", at_least=0, at_most=depth)
    z = check_points(X, layers[0].W.shape[1], "X", "activation_patterns")
    cols = []
    for lay in layers[: int(layer)]:
        h = lay.preactivation(z)
        if lay.has_activation:
            cols.append(h > 0)
        z = lay(z)
    return np.concatenate(cols, axis=1) if cols else np.zeros((len(z), 0), dtype=bool)


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
