"""Geometry of a layer's hyperplanes, what batch normalization does to them, and where they fall.

Three kinds of things live here, in the order chapter 2 uses them:

* **A layer's hyperplanes and its BN statistics.** Unit ``k`` of hidden layer ``l`` is the
  hyperplane ``{z : <w_k, z> = m_k}`` of that layer's input space (:class:`Hyperplanes`,
  :func:`hyperplanes`). :func:`batch_statistics` reads, for every hidden layer of a network
  with ``BatchNorm1d``, the quantities of the BN formula: ``mu`` (the batch mean of
  ``<w_k, z>``), the biased variance, ``gamma``, ``beta``, ``eps``.
* **Distances in input space.** :func:`local_distance` is the local-linear formula
  ``|h(x)| / ||grad h(x)||`` (any input dimension); :func:`ray_distance` is the exact distance
  along a direction to the first boundary (any input dimension, using that along a ray the
  network is affine up to its first boundary); :class:`Ellipse` and :func:`region_density`
  measure how many regions of an exact 2-D partition lie near the data.
* **The chapter's experiments**, seeded, with a progress bar, returning tidy tables (dicts of
  equal-length numpy arrays): :func:`layer_experiment`, :func:`shift_scale_experiment`,
  :func:`digits_experiment`, summarised by :func:`summarize_interval`.

Layers are numbered from 1 (layer 1 is the first hidden layer), as in the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from torch import nn
from tqdm.auto import tqdm

from .nets import MLP, AffineLayer, affine_layers, check_points
from .partition import Partition, check_box, distance_to_segments, partition

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
    "Ellipse",
    "region_density",
    "rms_radius",
    "layer_experiment",
    "shift_scale_experiment",
    "digits_experiment",
    "mean_interval",
    "summarize_interval",
]

_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} networks"  # no timings: outputs stay reproducible

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


def _np(t) -> np.ndarray:
    return t.detach().double().cpu().numpy()


def batch_statistics(model: nn.Module, batch) -> list[BatchStatistics]:
    """The BN statistics of every hidden layer of ``model`` on ``batch``, as torch's training mode.

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
    layers = affine_layers(model, batch=batch)  # validates batch, folds BN with its statistics
    groups, current = [], []
    modules = [m for m in model.modules() if not isinstance(m, (nn.Sequential, nn.Identity))]
    for m in modules:
        if isinstance(m, (nn.ReLU, nn.LeakyReLU)):
            groups.append(current)
            current = []
        else:
            current.append(m)
    out = []
    z = check_points(batch, layers[0].W.shape[1], "batch")
    for i, group in enumerate(groups):
        if len(group) != 2 or not isinstance(group[0], nn.Linear) or not isinstance(group[1], nn.BatchNorm1d):
            found = " -> ".join(type(m).__name__ for m in group) or "nothing"
            raise ValueError(
                f"batch_statistics needs every hidden layer to be Linear -> BatchNorm1d -> activation; "
                f"hidden layer {i + 1} is {found}"
            )
        lin, bn = group
        W = _np(lin.weight)
        c = _np(lin.bias) if lin.bias is not None else np.zeros(len(W))
        proj = z @ W.T
        gamma = _np(bn.weight) if bn.affine else np.ones(len(W))
        beta = _np(bn.bias) if bn.affine else np.zeros(len(W))
        out.append(BatchStatistics(i + 1, z.copy(), W, c, proj.mean(0), proj.var(0), gamma, beta, float(bn.eps)))
        z = layers[i](z)
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
    """Activation pattern (pre-activation > 0) of layers 1..layer at each point: bool (n, units)."""
    layers = _layers(model, batch)
    depth = _hidden(layers)
    layer = depth if layer is None else _check_layer(layer, depth)
    z = check_points(X, layers[0].W.shape[1], "X")
    cols = []
    for lay in layers[:layer]:
        cols.append(lay.preactivation(z) > 0)
        z = lay(z)
    return np.concatenate(cols, axis=1)


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


# ----------------------------------------------------------------------------------------
# region density near the data


@dataclass(frozen=True)
class Ellipse:
    """``{x : (x - center)^T cov^{-1} (x - center) <= q^2}``: a neighbourhood of 2-D data.

    :meth:`from_data` fits it to data: the ellipse that holds the fraction ``coverage`` of a
    Gaussian with the data's mean and covariance.
    """

    center: np.ndarray
    cov: np.ndarray
    q: float

    def __post_init__(self):
        c = np.asarray(self.cov, dtype=np.float64)
        if np.shape(self.center) != (2,) or c.shape != (2, 2) or not np.all(np.isfinite(c)):
            raise ValueError("an Ellipse needs a centre (2,) and a finite covariance (2, 2)")
        if not np.allclose(c, c.T) or np.linalg.eigvalsh(c).min() <= 0 or not self.q > 0:
            raise ValueError("an Ellipse needs a symmetric positive-definite covariance and q > 0")

    @classmethod
    def from_data(cls, X, coverage: float = 0.95) -> "Ellipse":
        """The data's mean and covariance, ``q^2`` the ``coverage`` quantile of chi-square(2).

        Examples
        --------
        >>> X = np.random.default_rng(0).normal(size=(20000, 2)) * [2.0, 0.5] + [1.0, 1.0]
        >>> E = Ellipse.from_data(X, coverage=0.9)
        >>> round(float(E.contains(X).mean()), 2)
        0.9
        """
        if not 0 < coverage < 1:
            raise ValueError(f"coverage must be between 0 and 1; got {coverage}")
        X = check_points(X, 2, "X")
        if len(X) < 3:
            raise ValueError(f"an ellipse needs at least 3 data points; got {len(X)}")
        # chi-square with 2 degrees of freedom: P(r^2 <= q^2) = 1 - exp(-q^2 / 2)
        return cls(X.mean(0), np.cov(X.T, bias=True), float(np.sqrt(-2.0 * np.log1p(-coverage))))

    @property
    def _L(self) -> np.ndarray:
        return np.linalg.cholesky(self.cov)

    @property
    def area(self) -> float:
        """``pi q^2 sqrt(det cov)``."""
        return float(np.pi * self.q**2 * np.sqrt(np.linalg.det(self.cov)))

    def whiten(self, points) -> np.ndarray:
        """Map points so that the ellipse becomes the unit disk."""
        P = check_points(points, 2)
        return np.linalg.solve(self._L, (P - self.center).T).T / self.q

    def from_disk(self, points) -> np.ndarray:
        """The inverse of :meth:`whiten`: map points of the unit disk's plane into the ellipse's."""
        P = check_points(points, 2)
        return self.center + self.q * P @ self._L.T

    def contains(self, points) -> np.ndarray:
        """Which points lie in the (closed) ellipse: bool (n,)."""
        return (self.whiten(points) ** 2).sum(1) <= 1.0

    def sample(self, n: int, *, seed: int = 0) -> np.ndarray:
        """``n`` points uniformly distributed in the ellipse (seeded)."""
        rng = np.random.default_rng(seed)
        r, a = np.sqrt(rng.uniform(size=n)), rng.uniform(0, 2 * np.pi, size=n)
        return self.from_disk(np.stack([r * np.cos(a), r * np.sin(a)], axis=1))

    def polygon(self, m: int = 128) -> np.ndarray:
        """``m`` points on the boundary (for drawing)."""
        a = np.linspace(0, 2 * np.pi, m)
        return self.center + self.q * np.stack([np.cos(a), np.sin(a)], axis=1) @ self._L.T


def _ragged(polys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All vertices stacked; each vertex's successor; each polygon's first row; each vertex's polygon."""
    counts = np.array([len(p) for p in polys])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    owner = np.repeat(np.arange(len(polys)), counts)
    nxt = np.arange(counts.sum()) + 1
    nxt[starts + counts - 1] = starts  # the last vertex closes the polygon
    return np.concatenate(polys), nxt, starts, owner


def _cross(p, q):
    return p[:, 0] * q[:, 1] - p[:, 1] * q[:, 0]


def _polygon_areas(V, nxt, starts, owner) -> np.ndarray:
    """Shoelace area of every polygon, computed relative to its first vertex (accurate far out)."""
    rel = V - V[starts][owner]
    return 0.5 * np.add.reduceat(_cross(rel, rel[nxt]), starts)


def _disk_polygon_areas(V, nxt, starts) -> np.ndarray:
    """Area of the intersection of each polygon (counter-clockwise) with the unit disk.

    Sum, over edges a -> b, of the signed area of (disk intersect triangle(0, a, b)): the part
    of the edge inside the disk contributes a triangle, the parts outside a circular sector.
    """
    a, b = V, V[nxt]
    d = b - a
    A = (d * d).sum(1)
    B = 2 * (a * d).sum(1)
    C = (a * a).sum(1) - 1.0
    disc = B * B - 4 * A * C
    root = np.sqrt(np.maximum(disc, 0.0))
    hit = (disc > 0) & (A > 0)
    safe = np.where(A > 0, A, 1.0)
    s1 = np.clip(np.where(hit, (-B - root) / (2 * safe), 0.0), 0, 1)
    s2 = np.maximum(s1, np.clip(np.where(hit, (-B + root) / (2 * safe), 0.0), 0, 1))
    p1, p2 = a + s1[:, None] * d, a + s2[:, None] * d

    def sector(p, q):
        return 0.5 * np.arctan2(_cross(p, q), (p * q).sum(1))

    # an empty outside piece contributes nothing (its end points coincide; near the centre
    # the angle between two such points would be noise)
    signed = np.where(s1 > 0, sector(a, p1), 0.0) + 0.5 * _cross(p1, p2) + np.where(s2 < 1, sector(p2, b), 0.0)
    return np.add.reduceat(signed, starts)


def region_density(part: Partition, ellipse: Ellipse, *, layer: int | None = None) -> dict[str, float]:
    """Regions per unit area inside an ellipse (the data's neighbourhood) and in the rest of the box.

    A region that straddles the ellipse is shared in proportion to its area: it adds
    ``area(R inside) / area(R)`` to the count inside and the rest to the count outside. So the
    two counts add up to the number of regions, and the density at a point (one over the area
    of its region) averaged over the ellipse is exactly ``density_inside``. Areas are exact
    (polygon intersected with the ellipse in closed form).

    Parameters
    ----------
    part
        An exact partition (:func:`bnlib.partition`).
    ellipse
        The neighbourhood; see :meth:`Ellipse.from_data`. It may stick out of the box.
    layer
        Use the partition made by hidden layers 1..layer (None: all).

    Returns
    -------
    dict
        ``regions`` (all regions in the box), ``meeting`` (regions that overlap the ellipse),
        ``inside``, ``outside`` (shared counts), ``area_inside``, ``area_outside``,
        ``density_inside``, ``density_outside`` (counts per unit area).

    Examples
    --------
    >>> from bnlib import MLP, partition
    >>> part = partition(MLP([2, 6, 6], seed=0), (-3, 3, -3, 3))
    >>> E = Ellipse(np.zeros(2), np.eye(2), 1.0)
    >>> d = region_density(part, E)
    >>> bool(np.isclose(d["inside"] + d["outside"], part.n_regions)), round(d["area_inside"], 6)
    (True, 3.141593)
    """
    if not isinstance(part, Partition):
        raise ValueError(f"part must be a bnlib Partition; got {type(part).__name__}")
    if not isinstance(ellipse, Ellipse):
        raise ValueError(f"ellipse must be a bnlib.geometry.Ellipse; got {type(ellipse).__name__}")
    polys = part.regions(layer)
    V, nxt, starts, owner = _ragged(polys)
    area = _polygon_areas(V, nxt, starts, owner)
    # whitening divides areas by q^2 sqrt(det cov); the disk-polygon areas are scaled back
    jacobian = ellipse.q**2 * np.sqrt(np.linalg.det(ellipse.cov))
    inner = np.clip(_disk_polygon_areas(ellipse.whiten(V), nxt, starts) * jacobian, 0.0, area)
    xmin, xmax, ymin, ymax = part.box
    box_area = (xmax - xmin) * (ymax - ymin)
    frac = inner / area
    inside, area_in = float(frac.sum()), float(inner.sum())
    area_out = box_area - area_in
    return {
        "regions": int(len(polys)),
        "meeting": int(np.sum(inner > 1e-12 * box_area)),
        "inside": inside,
        "outside": float(len(polys) - inside),
        "area_inside": area_in,
        "area_outside": area_out,
        "density_inside": inside / area_in if area_in > 0 else float("nan"),
        "density_outside": (len(polys) - inside) / area_out if area_out > 0 else float("nan"),
    }


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
# the chapter's experiments


def _check_seeds(seeds) -> list[int]:
    try:
        out = [int(s) for s in seeds]
    except (TypeError, ValueError):
        raise ValueError(f"seeds must be a sequence of integers >= 0; got {seeds!r}") from None
    if not out or min(out) < 0:
        raise ValueError(f"seeds must list at least one integer >= 0; got {seeds!r}")
    return out


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    return int(value)


def layer_experiment(
    X,
    *,
    depth: int = 8,
    width: int = 6,
    seeds: Sequence[int] = range(100),
    box=(-3.0, 6.0, -3.0, 5.0),
    coverage: float = 0.95,
    n_points: int = 100,
    negative_slope: float = 0.1,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Exact partitions of random networks with and without BN, measured layer by layer.

    For every seed, ``MLP([2] + [width] * depth, seed=seed)`` is built twice: without BN, and
    with BN using the statistics of ``X`` (the same Linear weights: BN draws no random numbers).
    The partition of ``box`` made by layers 1..l is measured for every l. Because layers after
    l do not change that partition, layer l of a depth-8 network is also the last layer of a
    depth-l network: the table covers depths 1..depth too.

    Parameters
    ----------
    X
        The data (n, 2); also the BN batch.
    depth, width
        Hidden layers and units per layer.
    seeds
        One network per seed and arm.
    box
        ``(xmin, xmax, ymin, ymax)``, partitioned exactly.
    coverage
        The data's neighbourhood is :meth:`Ellipse.from_data` with this coverage.
    n_points
        Distances are measured from the first ``n_points`` data points (all if fewer).
    negative_slope
        Leaky-ReLU slope.
    progress
        Show a progress bar (one step per network).

    Returns
    -------
    dict of numpy arrays, one row per (batchnorm, seed, layer)
        ``batchnorm`` (bool), ``seed``, ``layer``; ``regions`` in the box; ``distance``: median
        over the (first ``n_points``) data points of the exact distance to the nearest boundary of layers 1..layer;
        ``units_drawn``: how many of layer ``layer``'s units draw a folded hyperplane inside
        the box (a unit whose pre-activation keeps one sign over the box draws none);
        ``meeting``: regions that overlap the ellipse;
        ``density_inside``, ``density_outside``: see :func:`region_density`; ``occupied``:
        regions holding at least one data point; ``quantization``: see
        :func:`quantization_error`.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(50, 2)) * 0.3 + 1.0
    >>> t = layer_experiment(X, depth=2, width=3, seeds=[0, 1], progress=False)
    >>> t["batchnorm"].tolist(), t["layer"].tolist()
    ([False, False, False, False, True, True, True, True], [1, 2, 1, 2, 1, 2, 1, 2])
    >>> bool(np.all(np.diff(t["distance"][:2]) <= 0))    # more layers, more boundaries
    True
    """
    X = check_points(X, 2, "X")
    depth, width = _check_positive_int("depth", depth), _check_positive_int("width", width)
    seeds = _check_seeds(seeds)
    box = check_box(box)
    ellipse = Ellipse.from_data(X, coverage)
    probe = X[: _check_positive_int("n_points", n_points)]
    cols: dict[str, list] = {k: [] for k in (
        "batchnorm", "seed", "layer", "regions", "distance", "units_drawn", "meeting",
        "density_inside", "density_outside", "occupied", "quantization")}
    runs = [(bn, s) for bn in (False, True) for s in seeds]
    for bn, seed in tqdm(runs, desc="partitions", disable=not progress, bar_format=_BAR):
        net = MLP([2] + [width] * depth, batchnorm=bn, negative_slope=negative_slope, seed=seed)
        part = partition(net, box, batch=X if bn else None)
        nearest = np.full(len(probe), np.inf)
        for layer in range(1, depth + 1):
            nearest = np.minimum(nearest, part.distance_to_boundary(probe, layer))
            dens = region_density(part, ellipse, layer=layer)
            cols["batchnorm"].append(bn)
            cols["seed"].append(seed)
            cols["layer"].append(layer)
            cols["regions"].append(dens["regions"])
            cols["distance"].append(float(np.median(nearest)))
            cols["units_drawn"].append(len(np.unique(part.boundaries(layer).unit)))
            cols["meeting"].append(dens["meeting"])
            cols["density_inside"].append(dens["density_inside"])
            cols["density_outside"].append(dens["density_outside"])
            cols["occupied"].append(regions_hit(part.layers, X, layer=layer))
            cols["quantization"].append(quantization_error(part.layers, X, layer=layer))
    return {k: np.asarray(v) for k, v in cols.items()}


def shift_scale_experiment(
    X,
    *,
    shifts: Sequence[float] = (0.0, 1.0, 2.0, 4.0, 8.0),
    scales: Sequence[float] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
    seeds: Sequence[int] = range(100),
    depth: int = 4,
    width: int = 6,
    n_probe: int = 500,
    coverage: float = 0.95,
    negative_slope: float = 0.1,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Does the partition follow the data when the data moves or changes scale?

    The data ``X`` is moved so that its centre lies at distance ``r`` from the origin (along the
    direction of its own centre), for each ``r`` in ``shifts``; and scaled about its centre by
    each factor in ``scales``. For each setting and seed, the network ``MLP([2] + [width] *
    depth, seed=seed)`` without BN, and with BN on the moved data, is measured with two numbers
    that need no partition (so that many settings stay cheap):

    * ``regions``: the regions met by ``n_probe`` points spread uniformly over the data's
      ellipse (the same points in the ellipse's own coordinates for every setting);
    * ``distance``: the median over the data of the exact distance along a random direction to
      the first boundary (:func:`ray_distance`), in units of the data's :func:`rms_radius`.

    Returns
    -------
    dict of numpy arrays, one row per (kind, value, batchnorm, seed)
        ``kind`` ("shift" or "scale"), ``value``, ``batchnorm``, ``seed``, ``regions``,
        ``distance``.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(60, 2)) * 0.3 + 1.0
    >>> t = shift_scale_experiment(X, shifts=[0, 5], scales=[2], seeds=[0], progress=False)
    >>> t["kind"].tolist(), t["value"].tolist(), t["batchnorm"].tolist()
    (['shift', 'shift', 'shift', 'shift', 'scale', 'scale'], [0.0, 0.0, 5.0, 5.0, 2.0, 2.0], [False, True, False, True, False, True])
    """
    X = check_points(X, 2, "X")
    seeds = _check_seeds(seeds)
    depth, width = _check_positive_int("depth", depth), _check_positive_int("width", width)
    n_probe = _check_positive_int("n_probe", n_probe)
    shifts = np.asarray(shifts, dtype=np.float64).ravel()
    scales = np.asarray(scales, dtype=np.float64).ravel()
    if not np.all(np.isfinite(shifts)) or np.any(shifts < 0):
        raise ValueError(f"shifts are distances from the origin: finite numbers >= 0; got {shifts.tolist()}")
    if not np.all(np.isfinite(scales)) or np.any(scales <= 0):
        raise ValueError(f"scales must be finite numbers > 0; got {scales.tolist()}")
    centre = X.mean(0)
    norm = np.linalg.norm(centre)
    direction = centre / norm if norm > 0 else np.array([1.0, 0.0])
    settings = [("shift", float(r), X - centre + r * direction) for r in shifts]
    settings += [("scale", float(s), centre + s * (X - centre)) for s in scales]
    base = Ellipse.from_data(X, coverage)
    disk = base.whiten(base.sample(n_probe, seed=0))  # probe points in the ellipse's own coordinates
    cols: dict[str, list] = {k: [] for k in ("kind", "value", "batchnorm", "seed", "regions", "distance")}
    runs = [(s, bn) for s in seeds for bn in (False, True)]
    for seed, bn in tqdm(runs, desc="networks", disable=not progress, bar_format=_BAR):
        net = MLP([2] + [width] * depth, batchnorm=bn, negative_slope=negative_slope, seed=seed)
        U = np.random.default_rng(seed).normal(size=X.shape)
        for kind, value, Xs in settings:
            layers = affine_layers(net, batch=Xs if bn else None)
            E = Ellipse.from_data(Xs, coverage)
            probe = E.from_disk(disk)
            cols["kind"].append(kind)
            cols["value"].append(value)
            cols["batchnorm"].append(bn)
            cols["seed"].append(seed)
            cols["regions"].append(regions_hit(layers, probe))
            cols["distance"].append(float(np.median(ray_distance(layers, Xs, U))) / rms_radius(Xs))
    order = np.lexsort((np.array(cols["seed"]), np.array(cols["batchnorm"]),
                        np.array(cols["value"]), np.array([k != "shift" for k in cols["kind"]])))
    return {k: np.asarray(v)[order] for k, v in cols.items()}


def digits_experiment(
    X,
    *,
    widths: Sequence[int] = (32, 32, 32),
    seeds: Sequence[int] = range(100),
    n_points: int = 200,
    negative_slope: float = 0.1,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Random networks on high-dimensional data, with and without BN (statistics from ``X``).

    For every seed, ``MLP([d] + widths, seed=seed)`` without BN and with BN (batch: all of
    ``X``) is measured on every hidden layer l, in the layer's input space and in the input
    space:

    * ``cut``: fraction of layer l's units whose hyperplane has data on both sides;
    * ``offset``: median over layer l's units of the distance from the data's centroid (in the
      layer's input space) to the unit's hyperplane, divided by the RMS distance of the data to
      that hyperplane (0 for BN with ``beta = 0``);
    * ``ray``: median over ``n_points`` samples of the exact distance along a random direction
      to the first boundary of layers 1..l (:func:`ray_distance`), over the data's
      :func:`rms_radius`;
    * ``local``: median over the same samples of the local-linear distance to the nearest
      folded hyperplane of layers 1..l (:func:`local_distance`), over the same radius.

    Returns
    -------
    dict of numpy arrays, one row per (batchnorm, seed, layer)

    Examples
    --------
    >>> X = np.random.default_rng(0).uniform(size=(80, 10))
    >>> t = digits_experiment(X, widths=[8, 8], seeds=[0], n_points=20, progress=False)
    >>> t["batchnorm"].tolist(), t["layer"].tolist(), t["offset"][2:].round(12).tolist()
    ([False, False, True, True], [1, 2, 1, 2], [0.0, 0.0])
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) < 2:
        raise ValueError(f"X must be an (n, d) array with n >= 2; got shape {X.shape}")
    X = check_points(X, X.shape[1], "X")
    widths = [_check_positive_int("each width", w) for w in widths]
    if not widths:
        raise ValueError("widths must list at least one hidden layer")
    seeds = _check_seeds(seeds)
    n_points = min(_check_positive_int("n_points", n_points), len(X))
    radius = rms_radius(X)
    cols: dict[str, list] = {k: [] for k in ("batchnorm", "seed", "layer", "cut", "offset", "ray", "local")}
    runs = [(bn, s) for bn in (False, True) for s in seeds]
    for bn, seed in tqdm(runs, desc="networks", disable=not progress, bar_format=_BAR):
        rng = np.random.default_rng(seed)
        pick = X[rng.choice(len(X), n_points, replace=False)]
        U = rng.normal(size=pick.shape)
        net = MLP([X.shape[1]] + widths, batchnorm=bn, negative_slope=negative_slope, seed=seed)
        layers = affine_layers(net, batch=X if bn else None)
        local = [_distance_from(h, grad) for h, grad in _local_pieces(layers, pick, len(widths))]
        nearest = np.full(n_points, np.inf)
        z = X
        for layer, lay in enumerate(layers[: len(widths)], start=1):
            sd = Hyperplanes(lay.W, -lay.b).signed_distance(z)  # (n, k), in the layer's input space
            nearest = np.minimum(nearest, local[layer - 1].min(1))
            cols["batchnorm"].append(bn)
            cols["seed"].append(seed)
            cols["layer"].append(layer)
            cols["cut"].append(float(np.mean((sd > 0).any(0) & (sd < 0).any(0))))
            cols["offset"].append(float(np.median(np.abs(sd.mean(0)) / sd.std(0))))
            cols["ray"].append(float(np.median(ray_distance(layers, pick, U, layer=layer))) / radius)
            cols["local"].append(float(np.median(nearest)) / radius)
            z = lay(z)
    return {k: np.asarray(v) for k, v in cols.items()}


# ----------------------------------------------------------------------------------------
# summaries


def mean_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and a ``level`` confidence interval for the mean (Student t): ``(mean, lo, hi)``.

    Examples
    --------
    >>> m, lo, hi = mean_interval([1.0, 2.0, 3.0, 4.0])
    >>> m, round(lo, 3), round(hi, 3)
    (2.5, 0.446, 4.554)
    """
    from scipy import stats

    v = np.asarray(values, dtype=np.float64).ravel()
    if len(v) < 2:
        raise ValueError(f"an interval needs at least 2 values; got {len(v)}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"values must be finite to average; got {int(np.sum(~np.isfinite(v)))} non-finite")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1; got {level}")
    m = float(v.mean())
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return m, m - half, m + half


def summarize_interval(table: dict, value: str, by: Sequence[str], level: float = 0.95) -> dict[str, np.ndarray]:
    """Mean of ``table[value]`` with a confidence interval, one row per group of the ``by`` columns.

    Returns
    -------
    dict of numpy arrays
        The ``by`` columns, then ``n``, ``mean``, ``lo``, ``hi``; rows sorted by the ``by`` columns.

    Examples
    --------
    >>> t = {"bn": np.array([0, 0, 1, 1]), "d": np.array([1.0, 3.0, 5.0, 5.0])}
    >>> s = summarize_interval(t, "d", by=["bn"])
    >>> s["bn"].tolist(), s["mean"].tolist(), s["n"].tolist()
    ([0, 1], [2.0, 5.0], [2, 2])
    """
    for key in [value, *by]:
        if key not in table:
            raise ValueError(f"table has no column {key!r}; its columns are {sorted(table)}")
    keys = list(zip(*(np.asarray(table[k]).tolist() for k in by)))
    groups = sorted(set(keys))
    values = np.asarray(table[value], dtype=np.float64)
    out: dict[str, list] = {k: [] for k in [*by, "n", "mean", "lo", "hi"]}
    for g in groups:
        mask = np.array([k == g for k in keys])
        m, lo, hi = mean_interval(values[mask], level)
        for name, v in zip(by, g):
            out[name].append(v)
        out["n"].append(int(mask.sum()))
        out["mean"].append(m)
        out["lo"].append(lo)
        out["hi"].append(hi)
    return {k: np.asarray(v) for k, v in out.items()}
