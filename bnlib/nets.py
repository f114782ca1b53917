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
    "ConvNet",
    "ResNet",
    "Residual",
    "Network",
    "Dense",
    "Activation",
    "MaxPool",
    "ResidualBegin",
    "ResidualEnd",
    "read_network",
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


# ----------------------------------------------------------------------------------------
# Convolutional nets, residual nets, and the general reader behind planes through inputs


class Residual(nn.Module):
    """``x + block(x)``: a skip connection around ``block`` (the input and output shapes agree).

    Examples
    --------
    >>> block = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    >>> x = torch.randn(4, 3)
    >>> bool(torch.equal(Residual(block)(x), x + block(x)))
    True
    """

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def ConvNet(*, batchnorm: bool = False, channels: Sequence[int] = (4, 8), n_classes: int = 10,
            seed: int = 0) -> nn.Sequential:
    """A seeded convolutional net for the 8x8 digit images (input (N, 1, 8, 8)).

    ``Conv(1->4, 3x3, pad 1) -> (BatchNorm2d) -> ReLU -> MaxPool(2) -> Conv(4->8, 3x3, pad 1) ->
    (BatchNorm2d) -> ReLU -> AdaptiveAvgPool(1) -> Flatten -> Linear(8->10)``: 426 parameters,
    384 ReLU units and 64 max-pool windows on an 8x8 image. It is small on purpose: on a plane
    through three digit images (default box) it has about 1e4 regions (5e4 with BN and batch
    statistics), partitioned exactly in about a second. Twice the channels, ``channels=(8, 16)``,
    gives about 1.3e5 regions (2.3e5 with BN) and takes 7-9 s of CPU time. Seeded as :func:`MLP`: torch's
    default initialization under ``seed``, the global random state left as it was.

    Parameters
    ----------
    batchnorm
        A ``BatchNorm2d`` after each convolution (gamma 1, beta 0, as in torch).
    channels
        The two convolutions' output channels.
    n_classes
        Outputs of the final ``Linear``.
    seed
        Seed of the weight initialization.

    Returns
    -------
    torch.nn.Sequential
        A float32 model in training mode.

    Examples
    --------
    >>> net = ConvNet(batchnorm=True, seed=0)
    >>> net(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    >>> [type(m).__name__ for m in net][:5]
    ['Conv2d', 'BatchNorm2d', 'ReLU', 'MaxPool2d', 'Conv2d']
    """
    c1, c2 = check_ints(channels, "channels", "ConvNet", at_least=1, min_len=2)[:2]
    n_classes = check_int(n_classes, "n_classes", "ConvNet", at_least=1)
    seed = check_seed(seed, "seed", "ConvNet")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = [nn.Conv2d(1, c1, 3, padding=1)]
        layers += [nn.BatchNorm2d(c1)] if batchnorm else []
        layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(c1, c2, 3, padding=1)]
        layers += [nn.BatchNorm2d(c2)] if batchnorm else []
        layers += [nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c2, n_classes)]
    return nn.Sequential(*layers)


def ResNet(*, batchnorm: bool = False, channels: int = 4, blocks: int = 2, n_classes: int = 10,
           seed: int = 0) -> nn.Sequential:
    """A seeded small residual net for the 8x8 digit images (input (N, 1, 8, 8)).

    A stem ``Conv(1->c, 3x3, pad 1) -> (BN) -> ReLU -> AvgPool(2)`` (to 4x4), then ``blocks``
    residual blocks ``Residual(Conv(c->c, 3x3, pad 1) -> (BN) -> ReLU -> Conv(c->c, 3x3, pad 1) ->
    (BN)) -> ReLU``, then ``AdaptiveAvgPool(1) -> Flatten -> Linear(c -> 10)``. With ``c = 4``
    and two blocks: 682 parameters, 512 ReLU units; on a plane through three digit images
    (default box) about 1e4 regions (7e4 with BN and batch statistics), partitioned exactly in
    1-2 s. The blocks work at 4x4 because at 8x8 (1 280 units) the same net has about 7e5
    regions. Seeded as :func:`MLP`.

    Parameters
    ----------
    batchnorm
        A ``BatchNorm2d`` after every convolution.
    channels
        The width ``c`` of every convolution.
    blocks
        The number of residual blocks.
    n_classes
        Outputs of the final ``Linear``.
    seed
        Seed of the weight initialization.

    Returns
    -------
    torch.nn.Sequential

    Examples
    --------
    >>> net = ResNet(batchnorm=True, seed=0)
    >>> net(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    >>> sum(isinstance(m, Residual) for m in net)
    2
    """
    c = check_int(channels, "channels", "ResNet", at_least=1)
    blocks = check_int(blocks, "blocks", "ResNet", at_least=0)
    n_classes = check_int(n_classes, "n_classes", "ResNet", at_least=1)
    seed = check_seed(seed, "seed", "ResNet")

    def bn() -> list[nn.Module]:
        return [nn.BatchNorm2d(c)] if batchnorm else []

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = [nn.Conv2d(1, c, 3, padding=1), *bn(), nn.ReLU(), nn.AvgPool2d(2)]
        for _ in range(blocks):
            block = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), *bn(), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1), *bn())
            layers += [Residual(block), nn.ReLU()]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, n_classes)]
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class Dense:
    """``z -> W @ z + b`` on the flattened input: Linear, convolution, average pooling, BN with its
    statistics fixed, Flatten, composed into one float64 matrix."""

    W: np.ndarray
    b: np.ndarray


@dataclass(frozen=True)
class Activation:
    """Elementwise ``h if h > 0 else slope * h`` (ReLU: slope 0)."""

    slope: float


@dataclass(frozen=True)
class MaxPool:
    """Output unit ``i`` is the max of input units ``index[i]`` (a window, in torch's scan order;
    -1 marks a padded position, which never wins)."""

    index: np.ndarray


@dataclass(frozen=True)
class ResidualBegin:
    """Save the current vector (the skip)."""


@dataclass(frozen=True)
class ResidualEnd:
    """Add the saved vector back."""


def _act(h: np.ndarray, slope: float) -> np.ndarray:
    return np.where(h > 0, h, slope * h)


@dataclass(frozen=True)
class Network:
    """A network read as a flat list of float64 operations on flattened inputs.

    ``ops`` holds :class:`Dense`, :class:`Activation`, :class:`MaxPool`, :class:`ResidualBegin`
    and :class:`ResidualEnd`. Every :class:`Activation` and every :class:`MaxPool` is one *layer*
    of the partition (1-based, in order). The pattern of a point has, per activation layer, one
    bool column per unit (pre-activation > 0) and, per max-pool layer, ``p`` bool columns per
    window (one-hot: True at the position of the window's maximum; on a tie the lowest position
    wins, as in torch).

    Examples
    --------
    >>> net = read_network(ConvNet(seed=0), (1, 8, 8))
    >>> [type(op).__name__ for op in net.ops]
    ['Dense', 'Activation', 'MaxPool', 'Dense', 'Activation', 'Dense']
    >>> net.depth, net.patterns(np.zeros((1, 64))).shape
    (3, (1, 640))
    """

    ops: tuple
    input_shape: tuple

    @property
    def input_dim(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def depth(self) -> int:
        """The number of layers (activations and max-pools)."""
        return sum(isinstance(op, (Activation, MaxPool)) for op in self.ops)

    @property
    def ends_with_activation(self) -> bool:
        """Whether the last operation is not a Dense (no output layer)."""
        return not isinstance(self.ops[-1], Dense) if self.ops else True

    @property
    def unit_layer(self) -> np.ndarray:
        """The layer (1-based) of each column of :meth:`patterns`."""
        out, dim, layer = [], self.input_dim, 0
        for op in self.ops:
            if isinstance(op, Dense):
                dim = op.W.shape[0]
            elif isinstance(op, Activation):
                layer += 1
                out += [layer] * dim
            elif isinstance(op, MaxPool):
                layer += 1
                out += [layer] * op.index.size
                dim = op.index.shape[0]
        return np.array(out, dtype=int)

    def _run(self, x, upto: int | None):
        z = check_points(x, self.input_dim, "x")
        saved, cols, layer = [], [], 0
        for op in self.ops:
            if upto is not None and layer >= upto:
                break
            if isinstance(op, Dense):
                z = z @ op.W.T + op.b
            elif isinstance(op, Activation):
                cols.append(z > 0)
                z, layer = _act(z, op.slope), layer + 1
            elif isinstance(op, MaxPool):
                windows = np.where(op.index >= 0, z[:, op.index], -np.inf)  # (n, out, p)
                win = windows.argmax(2)  # the first maximum: the lowest position wins a tie
                cols.append((win[..., None] == np.arange(op.index.shape[1])).reshape(len(z), -1))
                z, layer = np.take_along_axis(windows, win[..., None], 2)[..., 0], layer + 1
            elif isinstance(op, ResidualBegin):
                saved.append(z)
            else:
                z = z + saved.pop()
        return z, cols

    def forward(self, x) -> np.ndarray:
        """The output at points ``x`` (n, input_dim), in float64."""
        return self._run(x, None)[0]

    def patterns(self, x, layer: int | None = None) -> np.ndarray:
        """Bool (n, columns of layers 1..layer): activation signs and one-hot max-pool winners."""
        layer = self.depth if layer is None else check_int(layer, "layer", "patterns", at_least=0, at_most=self.depth)
        cols = self._run(x, layer)[1]
        return np.concatenate(cols, axis=1) if cols else np.zeros((len(np.asarray(x)), 0), dtype=bool)

    def on_plane(self, origin: np.ndarray, basis: np.ndarray) -> "Network":
        """The same network on plane coordinates: input ``ab`` (n, 2) stands for ``origin + basis @ ab``."""
        ops = list(self.ops)
        if ops and isinstance(ops[0], Dense):
            first = ops.pop(0)
            ops.insert(0, Dense(first.W @ basis, first.W @ origin + first.b))
        else:
            ops.insert(0, Dense(np.array(basis, dtype=np.float64), np.array(origin, dtype=np.float64)))
        return Network(tuple(ops), (2,))

    def affine_layers(self) -> list[AffineLayer] | None:
        """The network as :class:`AffineLayer` s when it is a plain chain ``Dense, Activation, ...``
        (an MLP), else None."""
        layers, pending = [], None
        for op in self.ops:
            if isinstance(op, Dense) and pending is None:
                pending = op
            elif isinstance(op, Activation) and pending is not None:
                layers.append(AffineLayer(pending.W, pending.b, float(op.slope), True))
                pending = None
            else:
                return None
        if pending is not None:
            layers.append(AffineLayer(pending.W, pending.b, 1.0, False))
        return layers or None


_CURVED = {
    "LayerNorm": "it divides by the standard deviation of each sample's own features, a curved function of the input",
    "GroupNorm": "it divides by the standard deviation of each sample's own features, a curved function of the input",
    "InstanceNorm1d": "it divides by the standard deviation of each sample's own features",
    "InstanceNorm2d": "it divides by the standard deviation of each sample's own features",
    "LocalResponseNorm": "it divides by a power of the input",
    "GELU": "it is a smooth curve, not a set of affine pieces",
    "SiLU": "it is a smooth curve, not a set of affine pieces",
    "ELU": "its negative part is an exponential",
    "CELU": "its negative part is an exponential",
    "SELU": "its negative part is an exponential",
    "Sigmoid": "it is a smooth curve, not a set of affine pieces",
    "Tanh": "it is a smooth curve, not a set of affine pieces",
    "Softplus": "it is a smooth curve, not a set of affine pieces",
    "Mish": "it is a smooth curve, not a set of affine pieces",
    "Softmax": "it is a ratio of exponentials (put no softmax inside the model; argmax the outputs)",
    "LogSoftmax": "it is a log of a ratio of exponentials (argmax the outputs instead)",
}

_READS = ("Linear, Conv2d, BatchNorm1d, BatchNorm2d, ReLU, LeakyReLU, Identity, Dropout, Flatten, "
          "AvgPool2d, AdaptiveAvgPool2d, MaxPool2d, nested Sequential and bnlib.nets.Residual")


def _unsupported(m: nn.Module) -> ValueError:
    name = type(m).__name__
    why = _CURVED.get(name)
    if why is not None:
        return ValueError(f"unsupported layer {name}: it is not continuous piecewise-affine ({why}), so a network "
                          f"holding it has no linear regions to partition; bnlib reads {_READS}")
    return ValueError(f"unsupported layer {name}: bnlib reads {_READS} (modules whose function is continuous "
                      "piecewise-affine once BN statistics are fixed)")


def _pushed(m: nn.Module, shape: tuple) -> tuple[np.ndarray, tuple]:
    """The matrix of a linear (bias-free) module on flattened inputs of ``shape``: the identity
    basis pushed through a float64 copy. One-hot inputs make every entry exact."""
    mod = copy.deepcopy(m).double().eval()
    d = int(np.prod(shape))
    with torch.no_grad():
        if getattr(mod, "bias", None) is not None:
            mod.bias.zero_()
        out = mod(torch.eye(d, dtype=torch.float64).reshape(d, *shape))
    return _np(out.reshape(d, -1)).T.copy(), tuple(out.shape[1:])


def _maxpool_index(m: nn.MaxPool2d, shape: tuple) -> tuple[np.ndarray, tuple]:
    """Windows of a MaxPool2d as indices into the flattened input, positions in torch's scan order."""
    if len(shape) != 3:
        raise ValueError(f"MaxPool2d needs inputs of shape (C, H, W); it receives {shape}")
    with torch.no_grad():
        out_shape = tuple(m(torch.zeros(1, *shape, dtype=torch.float64)).shape[1:])
    C, H, W = shape
    kh, kw = nn.modules.utils._pair(m.kernel_size)
    sh, sw = nn.modules.utils._pair(m.stride if m.stride is not None else m.kernel_size)
    ph, pw = nn.modules.utils._pair(m.padding)
    dh, dw = nn.modules.utils._pair(m.dilation)
    Ho, Wo = out_shape[1:]
    # padded positions (and ceil_mode's overhang) hold -1: torch pads with -inf, they never win
    Hp, Wp = max(H + 2 * ph, (Ho - 1) * sh + dh * (kh - 1) + 1), max(W + 2 * pw, (Wo - 1) * sw + dw * (kw - 1) + 1)
    grid = -np.ones((C, Hp, Wp), dtype=np.int64)
    grid[:, ph:ph + H, pw:pw + W] = np.arange(C * H * W).reshape(C, H, W)
    rows = (np.arange(Ho) * sh)[:, None, None, None] + (np.arange(kh) * dh)[None, None, :, None]
    cols = (np.arange(Wo) * sw)[None, :, None, None] + (np.arange(kw) * dw)[None, None, None, :]
    win = grid[:, rows, cols].reshape(C * Ho * Wo, kh * kw)
    return win, out_shape


def _batch_rows(batch, shape: tuple, func: str = "partition") -> np.ndarray:
    """A batch of inputs (n, d) or ``(n, *shape)`` as finite float64 rows (n, d)."""
    if isinstance(batch, torch.Tensor):
        batch = batch.detach().cpu().numpy()
    try:
        arr = np.asarray(batch, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"The 'batch' parameter of {func} must be an array of inputs of shape (n, "
                         f"{int(np.prod(shape))}) or (n, {', '.join(map(str, shape))}); got "
                         f"{type(batch).__name__}.") from None
    d = int(np.prod(shape))
    if not (arr.ndim == 2 and arr.shape[1] == d) and tuple(arr.shape[1:]) != tuple(shape):
        raise ValueError(f"The 'batch' parameter of {func} must be an array of inputs of shape (n, {d}) or "
                         f"(n, {', '.join(map(str, shape))}); got shape {arr.shape}.")
    return check_points(arr.reshape(len(arr), d), d, "batch", func)


def read_network(model: nn.Module, input_shape: Sequence[int], batch=None) -> Network:
    """Read any supported torch model into a :class:`Network` of float64 operations.

    Consecutive affine modules (``Linear``, ``Conv2d``, ``AvgPool2d``, ``AdaptiveAvgPool2d``,
    ``Flatten``, BN with fixed statistics) are composed into one :class:`Dense` on the flattened
    input; a convolution or a pooling becomes its exact matrix (the identity basis pushed through
    a float64 copy). ``ReLU``/``LeakyReLU`` become :class:`Activation`, ``MaxPool2d`` a
    :class:`MaxPool`, :class:`Residual` a begin/end pair around its block.

    Parameters
    ----------
    model
        The network. Not modified.
    input_shape
        The shape of one input: ``(d,)`` or ``(C, H, W)``.
    batch
        None: every BN uses its running statistics. A batch of inputs (n, d) or ``(n, *input_shape)``,
        n >= 2: every BN uses the statistics of its input over the batch, as torch's training mode
        computes them (``BatchNorm2d``: per channel over the batch and the positions; the biased
        variance; the layer's eps).

    Returns
    -------
    Network

    Examples
    --------
    >>> X = np.random.default_rng(0).uniform(size=(20, 1, 8, 8))
    >>> net = ConvNet(batchnorm=True, seed=0)
    >>> ref = copy.deepcopy(net).double().train()(torch.as_tensor(X)).detach().numpy()
    >>> bool(np.allclose(read_network(net, (1, 8, 8), batch=X).forward(X.reshape(20, -1)), ref))
    True
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    shape = tuple(int(s) for s in input_shape)
    z = None
    if batch is not None:
        z = _batch_rows(batch, shape)
        if len(z) < 2 and has_batchnorm(model):
            raise ValueError(f"batch statistics need a batch of at least 2 inputs; got {len(z)} "
                             "(torch's BatchNorm refuses a batch of 1 in training mode too)")
    state = {"ops": [], "z": z, "pending": None, "shape": shape}

    def flush():
        if state["pending"] is not None:
            W, b = state["pending"]
            state["ops"].append(Dense(W, b))
            if state["z"] is not None:
                state["z"] = state["z"] @ W.T + b
            state["pending"] = None

    def affine(W, b, shape_out):
        if state["pending"] is not None:
            W0, b0 = state["pending"]
            W, b = W @ W0, W @ b0 + b
        state["pending"], state["shape"] = (_finite("a weight", W), _finite("a bias", b)), tuple(shape_out)

    def current_batch():
        z = state["z"]
        if z is not None and state["pending"] is not None:
            W, b = state["pending"]
            z = z @ W.T + b
        return z

    def walk(m):
        shape = state["shape"]
        if isinstance(m, nn.Sequential):
            for child in m:
                walk(child)
        elif isinstance(m, Residual):
            flush()
            state["ops"].append(ResidualBegin())
            skip = state["z"]
            walk(m.block)
            if state["shape"] != shape:
                raise ValueError(f"a Residual block must keep the shape of its input: {shape} became {state['shape']}")
            flush()
            state["ops"].append(ResidualEnd())
            if skip is not None:
                state["z"] = state["z"] + skip
        elif _is_identity(m):
            pass
        elif isinstance(m, nn.Linear):
            if len(shape) != 1 or shape[0] != m.in_features:
                raise ValueError(f"nn.Linear expects {m.in_features} inputs but receives inputs of shape {shape}"
                                 + (" (put an nn.Flatten before it)" if len(shape) > 1 else ""))
            Wm = _np(m.weight)
            bm = _np(m.bias) if m.bias is not None else np.zeros(m.out_features)
            affine(Wm, bm, (m.out_features,))
        elif isinstance(m, nn.Flatten):
            with torch.no_grad():
                out = m(torch.zeros(1, *shape))
            state["shape"] = tuple(out.shape[1:])  # a reshape: the flattened vector is unchanged
        elif isinstance(m, (nn.Conv2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            if len(shape) != 3:
                raise ValueError(f"{type(m).__name__} needs inputs of shape (C, H, W); it receives {shape} "
                                 "(give the plane or the batch images, e.g. points of shape (3, C, H, W))")
            if isinstance(m, nn.Conv2d) and m.in_channels != shape[0]:
                raise ValueError(f"Conv2d expects {m.in_channels} channels but receives inputs of shape {shape}")
            W, out_shape = _pushed(m, shape)
            b = np.zeros(W.shape[0])
            if isinstance(m, nn.Conv2d) and m.bias is not None:
                b = np.repeat(_finite("a Conv2d bias", _np(m.bias)), int(np.prod(out_shape[1:])))
            affine(W, b, out_shape)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            is2d = isinstance(m, nn.BatchNorm2d)
            if (len(shape) != 3) if is2d else (len(shape) != 1):
                raise ValueError(f"{type(m).__name__} receives inputs of shape {shape}; it expects "
                                 + ("(C, H, W)" if is2d else "(features,)"))
            if m.num_features != shape[0]:
                raise ValueError(f"{type(m).__name__} has {m.num_features} features but receives {shape[0]}")
            h = current_batch()
            if h is not None:
                per = h.reshape(len(h), shape[0], -1)  # statistics per channel, pooled over positions
                mean = per.mean((0, 2))
                var = ((per - mean[None, :, None]) ** 2).mean((0, 2))  # biased, as torch in training mode
            elif m.track_running_stats and m.running_mean is not None:
                mean, var = _np(m.running_mean), _np(m.running_var)
            else:
                raise ValueError(f"a {type(m).__name__} without running statistics needs batch=... to be read")
            gamma = _np(m.weight) if m.affine else np.ones(shape[0])
            beta = _np(m.bias) if m.affine else np.zeros(shape[0])
            scale = _finite(f"{type(m).__name__} parameters", gamma / np.sqrt(var + m.eps))
            positions = int(np.prod(shape[1:]))
            s, shift = np.repeat(scale, positions), np.repeat(beta - scale * mean, positions)
            if state["pending"] is None:
                state["pending"] = (np.diag(s), shift)
            else:
                W0, b0 = state["pending"]
                state["pending"] = (s[:, None] * W0, s * b0 + shift)
        elif isinstance(m, (nn.ReLU, nn.LeakyReLU)):
            flush()
            slope = float(m.negative_slope) if isinstance(m, nn.LeakyReLU) else 0.0
            state["ops"].append(Activation(slope))
            if state["z"] is not None:
                state["z"] = _act(state["z"], slope)
        elif isinstance(m, nn.MaxPool2d):
            flush()
            if m.return_indices:
                raise ValueError("MaxPool2d(return_indices=True) returns a tuple; bnlib reads it without")
            index, out_shape = _maxpool_index(m, shape)
            state["ops"].append(MaxPool(index))
            state["shape"] = out_shape
            if state["z"] is not None:
                state["z"] = np.where(index >= 0, state["z"][:, index], -np.inf).max(2)
        else:
            raise _unsupported(m)

    walk(model)
    flush()
    return Network(tuple(state["ops"]), shape)
