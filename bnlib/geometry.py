"""Geometry of a layer's hyperplanes, what batch normalization does to them, and where they fall.

Three kinds of things live here:

* **A layer's hyperplanes and its BN statistics.** Unit ``k`` of hidden layer ``l`` is the
  hyperplane ``{z : <w_k, z> = m_k}`` of that layer's input space (:class:`Hyperplanes`,
  :func:`hyperplanes`). :func:`batch_statistics` reads, for every hidden layer of a network
  with ``BatchNorm1d``, the quantities of the BN formula: ``mu`` (the batch mean of
  ``<w_k, z>``), the biased variance, ``gamma``, ``beta``, ``eps``.
* **Distances in input space.** :func:`local_distance` is the local-linear formula
  ``|h(x)| / ||grad h(x)||`` (any input dimension); :func:`ray_distance` is the exact distance
  along a direction to the first boundary (any input dimension, using that along a ray the
  network is affine up to its first boundary). :func:`distance_by_bisection` works for any
  network (LayerNorm, GroupNorm: not piecewise affine) by scanning rays and bisecting;
  :func:`boundary_displacement` says how far apart two sets of boundary segments lie.
* **The partition as a code of the data.** :func:`regions_hit` and :func:`quantization_error`.

Region density near the data (:class:`Ellipse`, :func:`region_density`) is
:mod:`bnlib.density` (re-exported here); chapter 2's experiments are
:mod:`bnlib.experiments.ch2_partition`.

Layers are numbered from 1 (layer 1 is the first hidden layer), as in the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from torch import nn

from .density import Ellipse, region_density  # noqa: F401  (their home is bnlib.density)
from .nets import AffineLayer, affine_layers, check_points, read_batchnorm
from .nets import activation_patterns as _activation_patterns
from .partition import Partition, distance_to_segments

__all__ = [
    "Hyperplanes",
    "hyperplanes",
    "layer_inputs",
    "BatchStatistics",
    "batch_statistics",
    "local_affine",
    "local_distance",
    "unit_distance",
    "ray_distance",
    "activation_patterns",
    "regions_hit",
    "quantization_error",
    "rms_radius",
    "distance_by_bisection",
    "boundary_displacement",
]

# ----------------------------------------------------------------------------------------
# a layer's hyperplanes


@dataclass(frozen=True)
class Hyperplanes:
    """The hyperplanes ``{z : <normal[k], z> = offset[k]}``, one per unit of a layer.

    Attributes
    ----------
    normal : ndarray (k, d)
        One normal vector per unit (not normalised; its length does not change the set).
    offset : ndarray (k,)
    """

    normal: np.ndarray
    offset: np.ndarray

    def __post_init__(self):
        n, o = np.asarray(self.normal), np.asarray(self.offset)
        if n.ndim != 2 or o.shape != (n.shape[0],) or not (np.all(np.isfinite(n)) and np.all(np.isfinite(o))):
            raise ValueError(f"need finite normals (k, d) and offsets (k,); got shapes {n.shape} and {o.shape}")
        norms = np.linalg.norm(self.normal, axis=1)
        if not np.all(norms > 0):
            raise ValueError("every hyperplane needs a non-zero normal (a unit with gamma = 0 draws none)")

    def __len__(self) -> int:
        return len(self.offset)

    def signed_distance(self, Z) -> np.ndarray:
        """Signed Euclidean distance (n, k) from each point to each hyperplane (> 0 on the normal's side).

        Examples
        --------
        >>> H = Hyperplanes(np.array([[3.0, 4.0]]), np.array([5.0]))   # 3x + 4y = 5
        >>> H.signed_distance([[0.0, 0.0], [3.0, 4.0]]).ravel().tolist()
        [-1.0, 4.0]
        """
        Z = check_points(Z, self.normal.shape[1], "Z")
        return (Z @ self.normal.T - self.offset) / np.linalg.norm(self.normal, axis=1)

    def distance(self, Z) -> np.ndarray:
        """Euclidean distance (n, k) from each point to each hyperplane."""
        return np.abs(self.signed_distance(Z))

    def project(self, Z) -> np.ndarray:
        """The nearest point of every hyperplane to every point: (n, k, d)."""
        Z = check_points(Z, self.normal.shape[1], "Z")
        unit = self.normal / np.linalg.norm(self.normal, axis=1, keepdims=True)
        return Z[:, None, :] - self.signed_distance(Z)[..., None] * unit[None]


def _layers(model, batch=None) -> list[AffineLayer]:
    if isinstance(model, nn.Module):
        return affine_layers(model, batch=batch)
    layers = list(model)
    if not layers or not all(isinstance(layer, AffineLayer) for layer in layers):
        raise ValueError("expected a torch model or a non-empty list of bnlib AffineLayer")
    if batch is not None:
        raise ValueError("batch= only applies to a torch model, not to already-read affine layers")
    return layers


def _hidden(layers: Sequence[AffineLayer]) -> int:
    return sum(layer.has_activation for layer in layers)


def _check_layer(layer, depth: int) -> int:
    if isinstance(layer, (bool, np.bool_)) or int(layer) != layer or not 1 <= int(layer) <= depth:
        raise ValueError(f"layer must be an integer between 1 and {depth} (the hidden layers); got {layer!r}")
    return int(layer)


def layer_inputs(model, X, layer: int, *, batch=None) -> np.ndarray:
    """The input ``z^l`` of hidden layer ``layer`` at points ``X``: ``X`` itself for layer 1.

    ``model`` is a torch model (BN read from ``batch``, or its running statistics) or a list of
    :class:`bnlib.nets.AffineLayer`.
    """
    layers = _layers(model, batch)
    layer = _check_layer(layer, _hidden(layers))
    z = check_points(X, layers[0].W.shape[1], "X")
    for lay in layers[: layer - 1]:
        z = lay(z)
    return z


def hyperplanes(model, layer: int, *, batch=None) -> Hyperplanes:
    """The hyperplanes of hidden layer ``layer`` in that layer's input space.

    Unit ``k`` is at the boundary where its (BN-folded) pre-activation ``<W_k, z> + b_k`` is 0.

    Parameters
    ----------
    model
        A torch model or a list of :class:`bnlib.nets.AffineLayer`.
    layer
        Hidden layer, 1-based.
    batch
        For a torch model with ``BatchNorm1d``: the batch whose statistics BN uses (as in
        training mode); None uses the running statistics.

    Examples
    --------
    >>> from bnlib import MLP
    >>> X = np.random.default_rng(0).normal(size=(100, 2)) + 3
    >>> H = hyperplanes(MLP([2, 6], batchnorm=True, seed=0), 1, batch=X)
    >>> bool(np.allclose(H.signed_distance([X.mean(0)]), 0))   # beta = 0: all through the mean
    True
    """
    layers = _layers(model, batch)
    lay = layers[_check_layer(layer, _hidden(layers)) - 1]
    return Hyperplanes(lay.W.copy(), -lay.b.copy())


# ----------------------------------------------------------------------------------------
# batch statistics


@dataclass(frozen=True)
class BatchStatistics:
    """The quantities of the BN formula for one hidden layer, read on one batch.

    The layer computes ``h_k = gamma_k (<w_k, z> + c_k - mean_k) / sqrt(var_k + eps) + beta_k``
    where ``mean_k`` is the batch mean of ``<w_k, z> + c_k``; the Linear bias ``c_k`` cancels,
    so everything below is written with ``mu_k``, the batch mean of ``<w_k, z>``.

    Attributes
    ----------
    layer : int
        Hidden layer, 1-based.
    inputs : ndarray (N, d)
        The batch at the layer's input, ``z^l``.
    weight : ndarray (k, d)
        The ``Linear`` weights ``w_k`` (rows).
    bias : ndarray (k,)
        The ``Linear`` bias ``c_k`` (it drops out of the output).
    mu : ndarray (k,)
        Batch mean of ``<w_k, z>``.
    var : ndarray (k,)
        Biased batch variance of ``<w_k, z>`` (divided by N, as torch in training mode).
    gamma, beta : ndarray (k,)
    eps : float
    """

    layer: int
    inputs: np.ndarray
    weight: np.ndarray
    bias: np.ndarray
    mu: np.ndarray
    var: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    eps: float

    @property
    def sigma(self) -> np.ndarray:
        """``sqrt(var + eps)``: the divisor BN uses."""
        return np.sqrt(self.var + self.eps)

    def normalized(self, Z) -> np.ndarray:
        """``(<w_k, z> - mu_k) / sigma_k`` at points ``Z`` of the layer's input space, (n, k)."""
        Z = check_points(Z, self.weight.shape[1], "Z")
        return (Z @ self.weight.T - self.mu) / self.sigma

    def output(self, Z) -> np.ndarray:
        """The BN layer's output ``gamma * normalized + beta`` (before the activation), (n, k)."""
        return self.gamma * self.normalized(Z) + self.beta

    def hyperplanes(self) -> Hyperplanes:
        """``{z : <w_k, z> = mu_k - beta_k sigma_k / gamma_k}``: where the unit's output is 0."""
        if np.any(self.gamma == 0):
            raise ValueError("a unit with gamma = 0 outputs beta everywhere: it has no hyperplane")
        return Hyperplanes(self.weight.copy(), self.mu - self.beta * self.sigma / self.gamma)


def batch_statistics(model: nn.Module, batch) -> list[BatchStatistics]:
    """The BN statistics of every hidden layer of ``model`` on ``batch``, as torch's training mode.

    Read by :func:`bnlib.nets.read_batchnorm` (the one reader of BN modules), in the notation of
    the text: ``mu`` and ``var`` are the mean and biased variance of ``<w_k, z>`` (the Linear
    bias dropped, since BN's mean subtraction cancels it).

    Parameters
    ----------
    model
        A ``torch.nn.Sequential`` whose hidden layers are each ``Linear -> BatchNorm1d ->
        activation`` (as :func:`bnlib.MLP` builds with ``batchnorm=True``). Not modified.
    batch
        (N, d_in) array, N >= 2.

    Returns
    -------
    list of BatchStatistics
        One per hidden layer, in order.

    Examples
    --------
    >>> from bnlib import MLP
    >>> X = np.random.default_rng(0).normal(size=(64, 2))
    >>> s1, s2 = batch_statistics(MLP([2, 5, 3], batchnorm=True, seed=0), X)
    >>> s1.inputs.shape, s2.inputs.shape, s2.mu.shape
    ((64, 2), (64, 5), (3,))
    >>> bool(np.allclose(s2.output(s2.inputs).mean(0), 0))
    True
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if batch is None:
        raise ValueError("batch_statistics needs a batch (N, d_in); running statistics are read by "
                         "bnlib.nets.read_batchnorm(model)")
    layers = affine_layers(model, batch=batch)  # validates batch
    reads = {r.layer: r for r in read_batchnorm(model, batch=batch)}
    hidden = _hidden(layers)
    out = []
    for layer in range(1, hidden + 1):
        r = reads.get(layer)
        if r is None or r.block != ("Linear", "BatchNorm1d") or sum(q.layer == layer for q in reads.values()) != 1:
            found = " -> ".join(r.block) if r is not None else "no BatchNorm1d"
            raise ValueError(
                f"batch_statistics needs every hidden layer to be Linear -> BatchNorm1d -> activation; "
                f"hidden layer {layer} has {found}"
            )
        proj = r.inputs @ r.weight.T
        out.append(BatchStatistics(layer, r.inputs, r.weight, r.bias, proj.mean(0), proj.var(0), r.gamma, r.beta, r.eps))
    return out


# ----------------------------------------------------------------------------------------
# distances in input space


def _local_pieces(layers: Sequence[AffineLayer], z: np.ndarray, depth: int):
    """Yield ``(h, grad h)`` of layers 1..depth, carrying the Jacobian dz/dx from layer to layer."""
    J = np.broadcast_to(np.eye(z.shape[1]), (len(z), z.shape[1], z.shape[1]))
    for lay in layers[:depth]:
        h, G = lay.preactivation(z), np.matmul(lay.W, J)  # G = dh/dx, (n, k, d_in)
        yield h, G
        J = np.where(h > 0, 1.0, lay.slope)[..., None] * G
        z = lay(z)


def _distance_from(h: np.ndarray, grad: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(grad, axis=2)
    with np.errstate(divide="ignore"):
        return np.where(norm > 0, np.abs(h) / np.where(norm > 0, norm, 1.0), np.inf)


def local_affine(model, X, layer: int, *, batch=None) -> tuple[np.ndarray, np.ndarray]:
    """Value and input gradient of every unit's pre-activation of a hidden layer at points ``X``.

    On the region of layers 1..layer-1 that holds ``x``, the pre-activation of unit ``k`` is the
    affine function ``y -> h[k] + <grad[k], y - x>``; its zero set there is the local piece of
    the unit's folded hyperplane.

    Returns
    -------
    h : ndarray (n, k)
    grad : ndarray (n, k, d_in)

    Examples
    --------
    >>> from bnlib import MLP
    >>> net = MLP([3, 4, 2], seed=0)
    >>> h, grad = local_affine(net, np.zeros((1, 3)), 2)
    >>> h.shape, grad.shape
    ((1, 2), (1, 2, 3))
    """
    layers = _layers(model, batch)
    layer = _check_layer(layer, _hidden(layers))
    *_, last = _local_pieces(layers, check_points(X, layers[0].W.shape[1], "X"), layer)
    return last


def local_distance(model, X, layer: int, *, batch=None) -> np.ndarray:
    """Local-linear distance ``|h_k(x)| / ||grad h_k(x)||`` for every unit of a hidden layer.

    On the region of the earlier layers that holds ``x``, unit ``k``'s pre-activation ``h_k``
    is affine, so its zero set there is a hyperplane of the input space (the local piece of the
    unit's folded hyperplane) and this is the exact distance from ``x`` to that hyperplane.
    Works in any input dimension.

    Returns
    -------
    ndarray (n, k)
        ``inf`` where the gradient is zero (a ReLU unit switched off upstream).

    Examples
    --------
    >>> from bnlib import MLP
    >>> net = MLP([2, 3], seed=0)                      # one layer: the lines themselves
    >>> x = np.array([[0.2, -0.4]])
    >>> bool(np.allclose(local_distance(net, x, 1), hyperplanes(net, 1).distance(x)))
    True
    """
    return _distance_from(*local_affine(model, X, layer, batch=batch))


def ray_distance(model, X, directions, *, layer: int | None = None, batch=None) -> np.ndarray:
    """Exact distance from each point along its direction to the first boundary of layers 1..layer.

    Along the ray ``x + t u`` every pre-activation of layer 1 is affine in ``t``; up to the
    first zero among them, the layer's output is affine too, so layer 2's pre-activations are
    affine on that stretch, and so on. Cutting the stretch at each layer's first zero gives the
    first boundary crossing exactly, in any input dimension, without computing a partition.

    Parameters
    ----------
    model
        A torch model or a list of :class:`bnlib.nets.AffineLayer`.
    X, directions
        Arrays (n, d): one ray per row (directions need not be unit length; they are normalised).
    layer
        Last hidden layer whose boundaries count (None: all hidden layers).

    Returns
    -------
    ndarray (n,)
        Distance (in input units) to the first boundary; ``inf`` if the ray meets none.

    Examples
    --------
    >>> from bnlib import MLP, partition
    >>> net = MLP([2, 4, 4], seed=0)
    >>> part = partition(net, (-3, 3, -3, 3))
    >>> x, u = np.array([[0.1, 0.2]]), np.array([[1.0, 0.0]])
    >>> t = part.crossings(x[0], x[0] + 2 * u[0])           # first crossing, from the partition
    >>> bool(np.isclose(ray_distance(net, x, u)[0], 2 * t[0]))
    True
    """
    layers = _layers(model, batch)
    depth = _hidden(layers)
    layer = depth if layer is None else _check_layer(layer, depth)
    z = check_points(X, layers[0].W.shape[1], "X")
    U = check_points(directions, z.shape[1], "directions")
    if len(U) != len(z):
        raise ValueError(f"need one direction per point: {len(z)} points but {len(U)} directions")
    norm = np.linalg.norm(U, axis=1, keepdims=True)
    if np.any(norm == 0):
        raise ValueError("directions must be non-zero")
    v = U / norm  # dz/dt along the ray
    t_first = np.full(len(z), np.inf)
    for lay in layers[:layer]:
        h, dh = lay.preactivation(z), v @ lay.W.T
        with np.errstate(divide="ignore", invalid="ignore"):
            t = -h / dh
        t = np.where((t > 0) & np.isfinite(t), t, np.inf)
        t_first = np.minimum(t_first, t.min(axis=1))
        gain = np.where(h > 0, 1.0, lay.slope)  # valid on [0, first zero of this layer)
        z, v = lay(z), gain * dh
    return t_first


def unit_distance(part: Partition, points, layer: int) -> np.ndarray:
    """Exact distance from each point to each unit's folded hyperplane in a hidden layer, (n, k).

    Only the part of the folded hyperplane inside the partition's box counts (``inf`` for a
    unit that draws nothing there). Computed from the exact partition's segments, without
    gradients: the reference that :func:`local_distance` is compared with.

    Examples
    --------
    >>> from bnlib import MLP, partition
    >>> net = MLP([2, 3], seed=0)
    >>> part = partition(net, (-3, 3, -3, 3))
    >>> x = np.array([[0.1, 0.2]])
    >>> bool(np.allclose(unit_distance(part, x, 1), hyperplanes(net, 1).distance(x)))
    True
    """
    if not isinstance(part, Partition):
        raise ValueError(f"part must be a bnlib Partition; got {type(part).__name__}")
    layer = _check_layer(layer, part.depth)
    seg = part.boundaries(layer)
    width = part.layers[layer - 1].W.shape[0]
    P = check_points(points, 2)
    return np.stack([distance_to_segments(P, seg.points[seg.unit == k]) for k in range(width)], axis=1)


def activation_patterns(model, X, *, layer: int | None = None, batch=None) -> np.ndarray:
    """Activation pattern (pre-activation > 0) of layers 1..layer at each point: bool (n, units).

    :func:`bnlib.nets.activation_patterns` for a torch model (BN read from ``batch`` or its
    running statistics) or a list of affine layers.
    """
    layers = _layers(model, batch)
    layer = None if layer is None else _check_layer(layer, _hidden(layers))
    return _activation_patterns(layers, X, layer=layer)


def regions_hit(model, X, *, layer: int | None = None, batch=None) -> int:
    """How many linear regions (of layers 1..layer) the points ``X`` fall in: distinct patterns.

    Examples
    --------
    >>> from bnlib import MLP
    >>> regions_hit(MLP([2, 3], seed=0), np.zeros((5, 2)))       # five copies of one point
    1
    """
    return int(len(np.unique(np.packbits(activation_patterns(model, X, layer=layer, batch=batch), axis=1), axis=0)))


def quantization_error(model, X, *, layer: int | None = None, batch=None) -> float:
    """The partition read as a vector quantiser of ``X``: the fraction of the data's variance left inside the regions.

    Every point is coded by its region (of layers 1..layer) and replaced by the mean of the
    points that share its region, as k-means replaces a point by its cluster's centroid. The
    result is the k-means objective of that coding over the total sum of squares: 1 when all
    points share one region, 0 when every point is alone in its region.

    Examples
    --------
    >>> from bnlib import MLP
    >>> X = np.random.default_rng(0).normal(size=(100, 2)) + 5
    >>> quantization_error(MLP([2, 4], seed=0), X) > quantization_error(MLP([2, 4], batchnorm=True, seed=0), X, batch=X)
    True
    """
    X = np.asarray(X, dtype=np.float64)
    codes = np.packbits(activation_patterns(model, X, layer=layer, batch=batch), axis=1)
    _, cell = np.unique(codes, axis=0, return_inverse=True)
    cell = cell.reshape(-1)
    sums = np.zeros((cell.max() + 1, X.shape[1]))
    np.add.at(sums, cell, X)
    means = sums / np.bincount(cell)[:, None]
    total = ((X - X.mean(0)) ** 2).sum()
    if total == 0:
        raise ValueError("X has no spread (all points equal): the quantization error is undefined")
    return float(((X - means[cell]) ** 2).sum() / total)


def rms_radius(X) -> float:
    """Root-mean-square distance of the points to their centroid: the data's size, one number.

    Examples
    --------
    >>> rms_radius([[0.0, 0.0], [2.0, 0.0]])
    1.0
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) < 2 or not np.all(np.isfinite(X)):
        raise ValueError(f"X must be a finite (n, d) array with n >= 2; got shape {X.shape}")
    return float(np.sqrt(((X - X.mean(0)) ** 2).sum(1).mean()))


# ----------------------------------------------------------------------------------------
# distances for any network: bisection along rays (chapter 5)


def _ray_directions(directions, n: int, d: int, seed: int, func: str) -> np.ndarray:
    """The rays of :func:`distance_by_bisection` as unit vectors, shape (n, m, d)."""
    import torch  # noqa: F401  (torch is imported by the model anyway)

    from ._validation import check_int

    if isinstance(directions, (int, np.integer)) and not isinstance(directions, (bool, np.bool_)):
        m = check_int(directions, "directions", func, at_least=1)
        rng = np.random.default_rng(seed)
        if d == 2:  # evenly spaced angles, turned by a random offset per point
            angles = rng.uniform(0, 2 * np.pi, (n, 1)) + 2 * np.pi * np.arange(m) / m
            U = np.stack([np.cos(angles), np.sin(angles)], axis=2)
        else:
            U = rng.standard_normal((n, m, d))
    else:
        try:
            U = np.asarray(directions, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"The 'directions' parameter of {func} must be a number of rays or an array of "
                             f"shape (n, d) or (n, m, d); got {type(directions).__name__}.") from None
        if U.ndim == 2:
            U = U[:, None, :]
        if U.ndim != 3 or U.shape[0] != n or U.shape[2] != d or U.shape[1] < 1:
            raise ValueError(f"The 'directions' parameter of {func} must be an array of shape ({n}, {d}) or "
                             f"({n}, m, {d}), one or m rays per point; got shape {U.shape}.")
        if not np.all(np.isfinite(U)):
            raise ValueError(f"The 'directions' parameter of {func} must hold finite numbers.")
    norm = np.linalg.norm(U, axis=2, keepdims=True)
    if np.any(norm == 0):
        raise ValueError(f"The 'directions' parameter of {func} must hold non-zero vectors.")
    return U / norm


def _boundary_code(model: nn.Module, boundary: str):
    """A function points -> code (n, c): two points share a code iff no boundary separates them locally."""
    import torch

    acts = [m for m in model.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))]
    if boundary == "units" and not acts:
        raise ValueError("distance_by_bisection(boundary='units') needs a model with ReLU or LeakyReLU "
                         "modules (their inputs' signs are the units' sides)")
    dtype = next(model.parameters()).dtype

    def code(P: np.ndarray) -> np.ndarray:
        signs = []
        hooks = [a.register_forward_hook(lambda mod, inp, out: signs.append((inp[0] > 0).numpy()))
                 for a in acts] if boundary == "units" else []
        try:
            with torch.no_grad():
                out = model(torch.as_tensor(P, dtype=dtype))
        finally:
            for h in hooks:
                h.remove()
        if boundary == "units":
            return np.concatenate([s.reshape(len(P), -1) for s in signs], axis=1)
        out = out.numpy()
        return (out[:, :1] > 0) if out.shape[1] == 1 else out.argmax(1)[:, None]

    return code


def distance_by_bisection(
    model: nn.Module,
    X,
    directions=64,
    *,
    max_distance: float,
    boundary: str = "units",
    n_steps: int = 64,
    tol: float = 1e-6,
    seed: int = 0,
) -> np.ndarray:
    """Distance from each point to the nearest boundary along rays, for any network: scan, then bisect.

    Along each ray ``x + t u`` the network is evaluated at ``n_steps`` evenly spaced ``t`` up to
    ``max_distance``; the first step where the *code* of the point differs from the code of ``x``
    brackets a boundary, and bisection narrows the bracket to ``tol``. The code is the sign
    pattern of every activation's input (``boundary="units"``: every unit's boundary, for any
    normalization layer, LayerNorm and GroupNorm included, which the exact engine refuses) or the
    predicted class (``boundary="decision"``). A point's distance is the smallest over its rays.
    Two caveats: the scan can miss a boundary that the ray crosses twice within one step (a thin
    sliver, or a curved boundary grazed), so a finer ``n_steps`` is safer; and the smallest
    distance over finitely many rays is an upper bound of the Euclidean distance to the nearest
    boundary (close to it in the plane with many rays; in high dimension random rays are nearly
    orthogonal to a boundary's normal, so read it as a distance *along random directions*).

    The model is evaluated in float64 and in ``eval()`` mode on a copy (BN: its running
    statistics; pass :func:`bnlib.nets.precise_batchnorm` of it for statistics of a data set).

    Parameters
    ----------
    model
        A torch model with ``ReLU`` or ``LeakyReLU`` activations (any other modules).
    X
        Points (n, d).
    directions
        An integer ``m``: ``m`` rays per point (in the plane evenly spaced angles turned by a
        seeded random offset per point, in higher dimension seeded Gaussian directions); or an
        array (n, d) of one ray per point, or (n, m, d). Directions are normalised.
    max_distance
        How far to look along each ray, > 0.
    boundary
        ``"units"`` (every hidden unit's boundary) or ``"decision"`` (the decision boundary).
    n_steps
        Evenly spaced evaluations along each ray before bisection, >= 1.
    tol
        Width of the final bracket, > 0.
    seed
        Seeds the random directions (when ``directions`` is an integer).

    Returns
    -------
    ndarray (n,)
        The distances (the outer end of the final bracket); ``inf`` where no ray meets a boundary
        within ``max_distance``.

    Raises
    ------
    ValueError
        If ``X`` is not a finite (n, d) array matching the model, ``directions`` has the wrong shape
        or a zero vector, ``max_distance``, ``n_steps`` or ``tol`` is not positive, ``boundary`` is
        unknown, or the model has no activation module for ``boundary="units"``.

    Examples
    --------
    >>> from bnlib import MLP, partition
    >>> net = MLP([2, 4, 4], seed=0)
    >>> x, u = np.array([[0.1, 0.2]]), np.array([[1.0, 0.0]])
    >>> t = partition(net, (-3, 3, -3, 3)).crossings(x[0], x[0] + 2 * u[0])[0]   # exact, from the partition
    >>> d = distance_by_bisection(net, x, u, max_distance=2.0, n_steps=200, tol=1e-9)
    >>> bool(np.isclose(d[0], 2 * t, atol=1e-8))
    True
    """
    import copy

    import torch

    from ._validation import check_choice, check_int, check_number, check_seed

    func = "distance_by_bisection"
    if not isinstance(model, nn.Module):
        raise ValueError(f"The 'model' parameter of {func} must be a torch.nn.Module; got {type(model).__name__}.")
    first = next((m for m in model.modules() if isinstance(m, nn.Linear)), None)
    P = check_points(X, first.in_features if first is not None else None, "X", func)
    max_distance = check_number(max_distance, "max_distance", func, low=0, low_open=True)
    n_steps = check_int(n_steps, "n_steps", func, at_least=1)
    tol = check_number(tol, "tol", func, low=0, low_open=True)
    boundary = check_choice(boundary, "boundary", func, ("units", "decision"))
    seed = check_seed(seed, "seed", func)
    n, d = P.shape
    U = _ray_directions(directions, n, d, seed, func)
    m = U.shape[1]
    net = copy.deepcopy(model).double().eval()
    code = _boundary_code(net, boundary)
    origin = np.repeat(P, m, axis=0)  # one row per ray
    V = U.reshape(n * m, d)
    c0 = code(origin)
    lo = np.zeros(n * m)
    hi = np.full(n * m, np.inf)
    step = max_distance / n_steps
    active = np.arange(n * m)
    for j in range(1, n_steps + 1):  # scan: the first step whose code differs brackets a boundary
        if not len(active):
            break
        t = j * step
        changed = np.any(code(origin[active] + t * V[active]) != c0[active], axis=1)
        hit = active[changed]
        lo[hit], hi[hit] = t - step, t
        active = active[~changed]
    found = np.flatnonzero(np.isfinite(hi))
    for _ in range(int(np.ceil(np.log2(step / tol))) if len(found) else 0):  # bisection
        mid = 0.5 * (lo[found] + hi[found])
        same = ~np.any(code(origin[found] + mid[:, None] * V[found]) != c0[found], axis=1)
        lo[found] = np.where(same, mid, lo[found])
        hi[found] = np.where(same, hi[found], mid)
    return hi.reshape(n, m).min(axis=1)


def boundary_displacement(segments_a, segments_b, *, n_points: int = 400) -> float:
    """How far apart two sets of boundary segments lie: a symmetric median distance.

    Points are spread evenly along the segments of ``a`` (by length), and the median of their
    distances to the nearest segment of ``b`` is taken; the same from ``b`` to ``a``; the result is
    the mean of the two medians. It is 0 when the two sets coincide, and for two parallel lines
    of equal length at distance ``s`` it is ``s``. Used to say how far a BN network's boundaries
    move between training mode and evaluation mode (chapter 5).

    Parameters
    ----------
    segments_a, segments_b
        Arrays (k, 2, 2) of segments in the plane (``Partition.boundaries(...).points`` or
        ``Partition.decision_boundary()``); neither may be empty.
    n_points
        Points spread along each set, >= 1.

    Examples
    --------
    >>> a = np.array([[[0.0, 0.0], [1.0, 0.0]]])
    >>> b = np.array([[[0.0, 0.5], [1.0, 0.5]]])
    >>> boundary_displacement(a, b), boundary_displacement(a, a)
    (0.5, 0.0)
    """
    from ._validation import check_int

    n_points = check_int(n_points, "n_points", "boundary_displacement", at_least=1)
    sets = []
    for name, seg in (("segments_a", segments_a), ("segments_b", segments_b)):
        S = np.asarray(seg, dtype=np.float64)
        if S.ndim != 3 or S.shape[1:] != (2, 2) or not len(S) or not np.all(np.isfinite(S)):
            raise ValueError(f"The {name!r} parameter of boundary_displacement must be a non-empty finite array "
                             f"of shape (k, 2, 2); got shape {S.shape}.")
        sets.append(S)

    def spread(S):
        length = np.linalg.norm(S[:, 1] - S[:, 0], axis=1)
        cum = np.concatenate([[0.0], np.cumsum(length)])
        if cum[-1] == 0:
            return S[:, 0]
        s = (np.arange(n_points) + 0.5) / n_points * cum[-1]
        i = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(S) - 1)
        f = (s - cum[i]) / np.maximum(length[i], 1e-300)
        return S[i, 0] + f[:, None] * (S[i, 1] - S[i, 0])

    a, b = sets
    return float(0.5 * (np.median(distance_to_segments(spread(a), b)) + np.median(distance_to_segments(spread(b), a))))
