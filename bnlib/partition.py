"""The exact partition of a 2-D box into a network's linear regions.

The engine splits convex polygons layer by layer. Before layer ``l`` every region carries
the affine map ``z_l(x) = A x + c`` that the earlier layers compute on it, so each unit of
layer ``l`` is a straight line inside the region: ``<w, A x + c> + b = 0``. Cutting every
region by every unit of the layer, one unit at a time, gives the regions of the next
partition. All regions are cut at once (numpy over a padded ``(regions, vertices, 2)``
array); there is no Python loop over regions.

Tolerance. A vertex closer than ``TOLERANCE * diameter(box)`` to a unit's line is taken to
lie on it. This is what keeps the partition free of slivers in the degenerate case that BN
creates on purpose: with ``beta = 0`` every first-layer line passes through the batch mean,
so in exact arithmetic many lines meet in one point; in floating point they miss it by
~1e-16, and without snapping every such near-miss would create a sliver region of width
~1e-16. With snapping, a line never cuts off a piece all of whose vertices lie within the
tolerance of it. Genuinely thin regions (two nearly parallel units crossed by a third, say)
are real and are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from torch import nn

from .arrangement import (RegionBudgetExceeded, chords, cut_by_lines, cut_by_maxpool, cut_sequential, layer_maps,
                          line_values, polygon_areas, vertex_mean)
from ._validation import check_box as _check_box
from ._validation import check_int
from .nets import (Activation, AffineLayer, Dense, MaxPool, Network, ResidualBegin, ResidualEnd, _is_identity,
                   activation_patterns, affine_layers, check_points, read_network)

__all__ = ["TOLERANCE", "MAX_REGIONS", "Partition", "Plane", "Segments", "partition", "check_box",
           "RegionBudgetExceeded"]

TOLERANCE = 1e-9
"""Relative snapping tolerance of :func:`partition` (times the box diagonal)."""

MAX_REGIONS = 2_000_000
"""Default region budget of :func:`partition` (its ``max_regions``)."""

MAP_BYTES = 4 * 2**30
"""Memory allowed for the per-region affine maps of one layer (24 bytes per region and unit): with
wide layers (a convolution's hundreds of units) it caps the regions below ``max_regions``."""


@dataclass(frozen=True)
class Segments:
    """Line segments tagged with the unit that draws them.

    ``points[i]`` is a (2, 2) array ``[[x0, y0], [x1, y1]]``; ``layer[i]`` is the hidden layer
    (1-based, as in the text: layer 1 is the first hidden layer) and ``unit[i]`` the unit
    index within it (0-based).
    """

    points: np.ndarray
    layer: np.ndarray
    unit: np.ndarray

    def __len__(self) -> int:
        return len(self.points)

    def lengths(self) -> np.ndarray:
        return np.linalg.norm(self.points[:, 1] - self.points[:, 0], axis=1)


def check_box(box) -> tuple[float, float, float, float]:
    """Return ``box`` as ``(xmin, xmax, ymin, ymax)`` floats, or raise ``ValueError``."""
    return _check_box(box, "box")


def _box_polygon(box) -> np.ndarray:
    xmin, xmax, ymin, ymax = box
    return np.array([[[xmin, ymin], [xmax, ymin], [xmax, ymax], [xmin, ymax]]], dtype=np.float64)


@dataclass
class Partition:
    """The exact partition of a box into linear regions (returned by :func:`partition`).

    Attributes
    ----------
    box : tuple
        ``(xmin, xmax, ymin, ymax)``.
    codes : ndarray of bool, (n_regions, n_units)
        Activation pattern of each region: one column per activation unit, in layer order;
        True where that unit's pre-activation is > 0 inside the region.
    unit_layer : ndarray of int, (n_units,)
        The hidden layer (1-based) of each column of ``codes``.
    affine_A, affine_c : ndarray, (n_regions, d_out, 2) and (n_regions, d_out)
        On region ``r`` the network computes ``affine_A[r] @ x + affine_c[r]``.
    layers : list of AffineLayer or None
        The float64 network the partition was computed from (BN folded in), on the box's
        coordinates (with a plane, the plane is composed into the first layer); None when the
        network is not a chain of affine layers and activations (see ``network``).
    network : bnlib.nets.Network or None
        For other networks (convolutions, max-pooling, residual blocks): the network on the
        box's coordinates, as float64 operations. Its *layers* are its activations and its
        max-pools, in order. The ``codes`` columns of a max-pool layer are one-hot: ``p``
        columns per window (``p`` the window's size), True at the position (in torch's scan
        order, row by row) of the window's maximum on the region.
    plane : Plane or None
        The plane the box lies in (None for a 2-input network).
    """

    box: tuple
    vertices: np.ndarray = field(repr=False)
    counts: np.ndarray = field(repr=False)
    codes: np.ndarray = field(repr=False)
    unit_layer: np.ndarray = field(repr=False)
    affine_A: np.ndarray = field(repr=False)
    affine_c: np.ndarray = field(repr=False)
    layers: list | None = field(repr=False)
    _segments: Segments = field(repr=False)
    _stages: list = field(repr=False)
    network: Network | None = field(default=None, repr=False)
    plane: "Plane | None" = field(default=None, repr=False)

    @property
    def n_regions(self) -> int:
        """Number of linear regions inside the box."""
        return len(self.counts)

    @property
    def depth(self) -> int:
        """Number of hidden (activation) layers."""
        return len(self._stages)

    @property
    def polygons(self) -> list[np.ndarray]:
        """The regions as a list of (m, 2) float64 vertex arrays, counter-clockwise."""
        return [v[:k] for v, k in zip(self.vertices, self.counts)]

    def regions(self, layer: int | None = None) -> list[np.ndarray]:
        """Polygons of the partition made by hidden layers ``1..layer`` (all layers if None).

        ``layer=0`` gives the box itself, the partition before any layer.
        """
        if layer is None:
            return self.polygons
        layer = self._check_layer(layer, allow_zero=True)
        if layer == 0:
            return [_box_polygon(self.box)[0]]
        V, n = self._stages[layer - 1]
        return [v[:k] for v, k in zip(V, n)]

    def areas(self) -> np.ndarray:
        """Area of each region (shoelace formula); they add up to the box's area."""
        return polygon_areas(self.vertices, self.counts)

    def interior_points(self) -> np.ndarray:
        """One point strictly inside each region (the mean of its vertices)."""
        return vertex_mean(self.vertices, self.counts)

    def _check_layer(self, layer: int, allow_zero: bool = False) -> int:
        if isinstance(layer, bool) or int(layer) != layer or not (0 if allow_zero else 1) <= layer <= self.depth:
            raise ValueError(
                f"layer must be a hidden layer, between 1 and {self.depth} (or None); got {layer!r}"
            )
        return int(layer)

    def activation_patterns(self, points, layer: int | None = None) -> np.ndarray:
        """Activation pattern (pre-activation > 0) of each point: bool (n, units of layers 1..layer).

        The same function as :func:`bnlib.nets.activation_patterns` on the partition's layers
        (:meth:`bnlib.nets.Network.patterns` for other networks, with the one-hot max-pool
        columns); with ``layer=None`` its columns match those of ``codes``.
        """
        if self.network is not None:
            return self.network.patterns(check_points(points, 2), layer=layer)
        return activation_patterns(self.layers, check_points(points, 2), layer=layer)

    def locate(self, points) -> np.ndarray:
        """Index of the region that contains each point (-1 outside the box).

        The region is found by its activation pattern, read from a float64 forward pass; a
        point lying exactly on a boundary gets one of the regions that touch it.

        Examples
        --------
        >>> from bnlib import MLP, partition
        >>> part = partition(MLP([2, 5, 5], seed=1), (-2, 2, -2, 2))
        >>> r = part.locate([[0.3, -0.7]])
        >>> bool(part.codes[r[0]].tolist() == part.activation_patterns([[0.3, -0.7]])[0].tolist())
        True
        """
        pts = check_points(points, 2)
        xmin, xmax, ymin, ymax = self.box
        inside = (pts[:, 0] >= xmin) & (pts[:, 0] <= xmax) & (pts[:, 1] >= ymin) & (pts[:, 1] <= ymax)
        out = np.full(len(pts), -1, dtype=np.int64)
        if not inside.any():
            return out
        codes = self.activation_patterns(pts[inside])
        keys = np.concatenate([np.packbits(self.codes, axis=1), np.packbits(codes, axis=1)])
        _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        owner = np.where(first < self.n_regions, first, -1)[inverse[self.n_regions:]]
        missing = np.flatnonzero(owner < 0)
        for i in missing:  # on a boundary, a unit reads exactly 0: fall back to geometry
            owner[i] = self._containing(pts[inside][i])
        out[inside] = owner
        return out

    def _containing(self, p: np.ndarray) -> int:
        V, n = self.vertices, self.counts
        Vn = np.take_along_axis(V, ((np.arange(V.shape[1]) + 1) % n[:, None])[..., None], axis=1)
        e, d = Vn - V, p - V
        cross = e[..., 0] * d[..., 1] - e[..., 1] * d[..., 0]
        valid = np.arange(V.shape[1]) < n[:, None]
        slack = np.where(valid, cross, np.inf).min(1)
        return int(np.argmax(slack))

    def boundaries(self, layer: int | None = None) -> Segments:
        """The folded hyperplanes as straight segments, each tagged (layer, unit).

        ``layer=None`` gives every hidden layer's boundaries; ``layer=l`` only layer l's.
        The box's own edges are not boundaries.
        """
        seg = self._segments
        if layer is None:
            return seg
        keep = seg.layer == self._check_layer(layer)
        return Segments(seg.points[keep], seg.layer[keep], seg.unit[keep])

    def distance_to_boundary(self, points, layer: int | None = None) -> np.ndarray:
        """Exact Euclidean distance from each point to the nearest boundary segment.

        Only boundaries inside the box count (the box's edges are not boundaries); with
        ``layer=l`` only layer l's folded hyperplanes count. ``inf`` if there is none.
        """
        return distance_to_segments(points, self.boundaries(layer).points)

    def crossings(self, start, end, layer: int | None = None) -> np.ndarray:
        """Where the segment from ``start`` to ``end`` crosses a boundary: sorted t in (0, 1).

        ``len(crossings) + 1`` is the number of regions the segment passes through (for a
        segment in general position), the quantity Hanin and Rolnick count along lines.
        """
        p = check_points([start, end], 2)
        seg = self.boundaries(layer).points
        d = p[1] - p[0]
        e = seg[:, 1] - seg[:, 0]
        q = seg[:, 0] - p[0]
        den = d[0] * e[:, 1] - d[1] * e[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (q[:, 0] * e[:, 1] - q[:, 1] * e[:, 0]) / den
            u = (q[:, 0] * d[1] - q[:, 1] * d[0]) / den
        ok = (np.abs(den) > 1e-300) & (t > 0) & (t < 1) & (u >= 0) & (u <= 1)
        t = np.sort(t[ok])
        # a crossing through a segment's end point is met by both segments there: count once
        keep = np.concatenate([[True], np.diff(t) > 1e-12]) if len(t) else np.zeros(0, dtype=bool)
        return t[keep]

    def decision_boundary(self) -> np.ndarray:
        """Segments (k, 2, 2) where a classifier's predicted class changes.

        One output: where it changes sign. Several outputs: where the argmax changes. The
        model must end with a ``Linear`` (an output layer without activation).
        """
        if self._ends_with_activation():
            raise ValueError("decision_boundary needs a model that ends with an output nn.Linear")
        A, c = self.affine_A, self.affine_c
        V, n = self.vertices, self.counts
        snap = TOLERANCE * _diameter(self.box)
        if A.shape[1] == 1:
            return _cut_segments(V, n, A[:, 0], c[:, 0], snap)
        pieces = []
        n_out = A.shape[1]
        for i in range(n_out):
            for j in range(i + 1, n_out):
                s = line_values(V, A[:, i] - A[:, j], c[:, i] - c[:, j], snap)
                hit = (s.max(1) > 0) & (s.min(1) < 0)
                if not hit.any():
                    continue
                seg = chords(V[hit], n[hit], s[hit])
                Ah, ch = A[hit], c[hit]
                # classes i and j tie along the segment; keep the part where they beat every
                # other class k: g_k(t) = out_i - out_k >= 0, linear in t along the segment
                lo, hi = np.zeros(len(seg)), np.ones(len(seg))
                for k in set(range(n_out)) - {i, j}:
                    g0, g1 = (
                        np.einsum("rt,rt->r", Ah[:, i] - Ah[:, k], seg[:, e]) + ch[:, i] - ch[:, k]
                        for e in (0, 1)
                    )
                    with np.errstate(divide="ignore", invalid="ignore"):
                        t = g0 / (g0 - g1)
                    lo = np.where(g1 > g0, np.maximum(lo, t), lo)
                    hi = np.where(g1 < g0, np.minimum(hi, t), hi)
                    hi = np.where((g1 == g0) & (g0 < 0), -1.0, hi)
                d = seg[:, 1] - seg[:, 0]
                piece = np.stack([seg[:, 0] + lo[:, None] * d, seg[:, 0] + hi[:, None] * d], axis=1)
                pieces.append(piece[hi - lo > 1e-12])
        return np.concatenate(pieces) if pieces else np.zeros((0, 2, 2))

    def _ends_with_activation(self) -> bool:
        return self.network.ends_with_activation if self.network is not None else self.layers[-1].has_activation

    def predict(self, points) -> np.ndarray:
        """Class of each point (argmax of the outputs; sign for one output), by forward pass."""
        z = check_points(points, 2)
        if self.network is not None:
            z = self.network.forward(z)
        else:
            for layer in self.layers:
                z = layer(z)
        return (z[:, 0] > 0).astype(np.int64) if z.shape[1] == 1 else z.argmax(1)


def _diameter(box) -> float:
    xmin, xmax, ymin, ymax = box
    return float(np.hypot(xmax - xmin, ymax - ymin))


def _cut_segments(V, n, a, o, snap) -> np.ndarray:
    s = line_values(V, a, o, snap)
    hit = (s.max(1) > 0) & (s.min(1) < 0)
    if not hit.any():
        return np.zeros((0, 2, 2))
    return chords(V[hit], n[hit], s[hit])


def distance_to_segments(points, segments: np.ndarray, *, return_foot: bool = False, chunk: int = 4_000_000):
    """Euclidean distance from each point (n, 2) to the nearest of ``segments`` (k, 2, 2).

    With ``return_foot=True`` also the nearest point of the segments, ``(distance, foot)`` with
    ``foot`` of shape (n, 2) (NaN where there is no segment). Points are processed in chunks of
    about ``chunk`` point-segment pairs, so memory stays bounded.

    Examples
    --------
    >>> d, foot = distance_to_segments([[0.0, 1.0], [3.0, 0.0]], np.array([[[-1.0, 0.0], [1.0, 0.0]]]),
    ...                                return_foot=True)
    >>> d.tolist(), foot.tolist()
    ([1.0, 2.0], [[0.0, 0.0], [1.0, 0.0]])
    """
    pts = check_points(points, 2)
    segments = np.asarray(segments, dtype=np.float64).reshape(-1, 2, 2)
    out = np.full(len(pts), np.inf)
    foot = np.full((len(pts), 2), np.nan)
    if len(segments) == 0 or len(pts) == 0:
        return (out, foot) if return_foot else out
    p0 = segments[:, 0]
    d = segments[:, 1] - p0
    dd = np.maximum((d * d).sum(1), 1e-300)
    step = max(1, chunk // len(segments))
    for start in range(0, len(pts), step):
        q = pts[start : start + step, None, :] - p0[None]
        t = np.clip((q * d[None]).sum(2) / dd[None], 0.0, 1.0)
        diff = q - t[..., None] * d[None]
        dist2 = (diff * diff).sum(2)
        best = dist2.argmin(1)
        rows = np.arange(len(best))
        out[start : start + step] = np.sqrt(dist2[rows, best])
        if return_foot:
            foot[start : start + step] = p0[best] + t[rows, best][:, None] * d[best]
    return (out, foot) if return_foot else out


@dataclass(frozen=True)
class Plane:
    """A 2-D plane through a network's input space: ``x = origin + basis @ ab``.

    ``basis`` (d, 2) has orthonormal columns, so a distance between plane coordinates ``ab`` is
    the Euclidean distance between the inputs they stand for. Make one with :meth:`through`.

    Attributes
    ----------
    origin : ndarray (d,)
        The input at plane coordinates (0, 0) (for :meth:`through`, the three points' centroid).
    basis : ndarray (d, 2)
        Orthonormal directions of the two plane axes, on flattened inputs.
    shape : tuple
        The shape of one input, e.g. ``(64,)`` or ``(1, 8, 8)``.
    anchors : ndarray (3, 2) or None
        The plane coordinates of the points the plane was made through.

    Examples
    --------
    >>> P = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    >>> plane = Plane.through(P)
    >>> np.round(plane.anchors, 3).tolist()
    [[-0.667, -0.667], [1.333, -0.667], [-0.667, 1.333]]
    >>> bool(np.allclose(plane.to_input(plane.anchors), P)), np.round(plane.default_box(), 3).tolist()
    (True, [-1.667, 2.333, -1.667, 2.333])
    """

    origin: np.ndarray
    basis: np.ndarray
    shape: tuple
    anchors: np.ndarray | None = None

    def __post_init__(self):
        origin = check_points(np.asarray(self.origin, dtype=np.float64).reshape(1, -1), None, "origin", "Plane")[0]
        d = len(origin)
        basis = np.asarray(self.basis, dtype=np.float64)
        if basis.shape != (d, 2) or not np.all(np.isfinite(basis)):
            raise ValueError(f"The 'basis' parameter of Plane must be a finite array of shape ({d}, 2); "
                             f"got shape {basis.shape}.")
        if not np.allclose(basis.T @ basis, np.eye(2), atol=1e-9):
            raise ValueError("The 'basis' parameter of Plane must have orthonormal columns (basis.T @ basis = I); "
                             f"got basis.T @ basis = {np.round(basis.T @ basis, 6).tolist()}.")
        shape = (d,) if self.shape is None else tuple(int(s) for s in self.shape)
        if int(np.prod(shape)) != d:
            raise ValueError(f"The 'shape' parameter of Plane must hold {d} values in all; got {shape}.")
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "basis", basis)
        object.__setattr__(self, "shape", shape)
        if self.anchors is not None:
            object.__setattr__(self, "anchors", check_points(self.anchors, 2, "anchors", "Plane"))

    @classmethod
    def through(cls, points) -> "Plane":
        """The plane through three inputs, with its origin at their centroid.

        Parameters
        ----------
        points
            Three inputs of any shape: a (3, d) array, a (3, C, H, W) tensor, ...

        Returns
        -------
        Plane
            Its first axis points from the first input to the second, its second axis towards
            the third (Gram-Schmidt); ``anchors`` are the three inputs' plane coordinates.

        Raises
        ------
        ValueError
            If the points are not three finite inputs, or do not span a plane (they coincide or
            lie on one line: the second singular value of their differences is below 1e-9 of
            the first).
        """
        if hasattr(points, "detach"):
            points = points.detach().cpu().numpy()
        try:
            P = np.asarray(points, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("The 'points' parameter of Plane.through must be three inputs of one shape, "
                             f"e.g. an array of shape (3, d) or (3, C, H, W); got {type(points).__name__}.") from None
        if P.ndim < 2 or len(P) != 3:
            raise ValueError("The 'points' parameter of Plane.through must be three inputs of one shape, "
                             f"e.g. an array of shape (3, d) or (3, C, H, W); got shape {P.shape}.")
        if not np.all(np.isfinite(P)):
            raise ValueError("The 'points' parameter of Plane.through must be finite; "
                             f"got {int(np.sum(~np.isfinite(P)))} NaN or infinite values.")
        shape = P.shape[1:]
        flat = P.reshape(3, -1)
        D = np.stack([flat[1] - flat[0], flat[2] - flat[0]], axis=1)
        sv = np.linalg.svd(D, compute_uv=False)
        if sv[0] == 0 or sv[1] <= 1e-9 * sv[0]:
            raise ValueError("The 'points' parameter of Plane.through must be three points that span a plane; "
                             f"got points that {'coincide' if sv[0] == 0 else 'lie on one line'} "
                             f"(singular values of their differences: {sv[0]:.3g}, {sv[1]:.3g}).")
        Q, R = np.linalg.qr(D)
        Q = Q * np.where(np.diag(R) < 0, -1.0, 1.0)  # axis 1 along p1 - p0, axis 2 towards p2
        origin = flat.mean(0)
        return cls(origin, Q, shape, (flat - origin) @ Q)

    @property
    def dim(self) -> int:
        """The dimension ``d`` of the (flattened) input space."""
        return len(self.origin)

    def to_input(self, ab) -> np.ndarray:
        """Inputs ``(n, *shape)`` at plane coordinates ``ab`` (n, 2), float64."""
        ab = check_points(ab, 2, "ab", "Plane.to_input")
        return (self.origin + ab @ self.basis.T).reshape((len(ab),) + self.shape)

    def coordinates(self, x) -> np.ndarray:
        """Plane coordinates (n, 2) of inputs ``x`` ``(n, d)`` or ``(n, *shape)``: their orthogonal projection."""
        if hasattr(x, "detach"):
            x = x.detach().cpu().numpy()
        x = np.asarray(x, dtype=np.float64)
        if x.ndim >= 1 and x.shape[1:] == self.shape:
            x = x.reshape(len(x), -1)
        x = check_points(x, self.dim, "x", "Plane.coordinates")
        return (x - self.origin) @ self.basis

    def default_box(self) -> tuple[float, float, float, float]:
        """The anchors' bounding box, widened on every side by half its width (height)."""
        if self.anchors is None:
            raise ValueError("this Plane has no anchors: give partition a box")
        lo, hi = self.anchors.min(0), self.anchors.max(0)
        m = 0.5 * (hi - lo)
        return (float(lo[0] - m[0]), float(hi[0] + m[0]), float(lo[1] - m[1]), float(hi[1] + m[1]))


_MLP_MODULES = (nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.LeakyReLU)


def _is_mlp(model: nn.Module) -> bool:
    """Whether the original 2-D reader (affine_layers) reads ``model``: Linear/BN1d/activations."""
    def leaves(m):
        if isinstance(m, nn.Sequential):
            return [x for child in m for x in leaves(child)]
        return [m]
    return all(isinstance(m, _MLP_MODULES) or _is_identity(m) for m in leaves(model))


def _ops_of(layers: Sequence[AffineLayer]) -> list:
    ops = []
    for layer in layers:
        ops.append(Dense(layer.W, layer.b))
        if layer.has_activation:
            ops.append(Activation(layer.slope))
    return ops


def _matmul(W: np.ndarray, X: np.ndarray) -> np.ndarray:
    # a convolution's matrix is mostly zeros: on many regions a sparse product is far cheaper
    if W.size >= 65536 and X.shape[1] >= 64 and np.count_nonzero(W) < 0.25 * W.size:
        from scipy import sparse

        return np.asarray(sparse.csr_matrix(W) @ X)
    return W @ X


def partition(model: nn.Module | Sequence[AffineLayer], box=None, *, plane: Plane | None = None, batch=None,
              method: str = "compiled", max_regions: int = MAX_REGIONS) -> Partition:
    """The exact partition of a 2-D box into the linear regions of a network.

    Without ``plane`` the network has 2 inputs and ``box`` lies in its input space. With
    ``plane`` the network takes inputs of any shape and the box lies in the plane (in plane
    coordinates): the partition is that of the network restricted to the plane.

    Parameters
    ----------
    model
        A torch model: ``Linear``, ``Conv2d``, ``BatchNorm1d``, ``BatchNorm2d``, ``ReLU``,
        ``LeakyReLU``, ``Identity``, ``Dropout`` (the identity), ``Flatten``, ``AvgPool2d``,
        ``AdaptiveAvgPool2d``, ``MaxPool2d``, nested ``Sequential`` and
        :class:`bnlib.nets.Residual` (any such model, not only :func:`bnlib.MLP`); or a list of
        :class:`bnlib.nets.AffineLayer`. A module that is not continuous piecewise-affine
        (``LayerNorm``, ``GELU``, ``Softmax``, ...) raises ``ValueError``.
    box
        ``(xmin, xmax, ymin, ymax)``. Required without ``plane``; with it, the default is the
        plane's :meth:`Plane.default_box` (the anchors' bounding box and half its size around).
    plane
        A :class:`Plane` through the input space (:meth:`Plane.through` three inputs).
    batch
        If given (a batch of inputs ``(N, d)`` or ``(N, *input_shape)``, N >= 2), every BN layer uses
        the statistics of its input over this batch, as in training mode (``BatchNorm2d``: per
        channel over the batch and the positions; the biased variance, the layer's eps); the
        model's running statistics are not touched. If None, the running statistics are used
        (eval mode).
    method
        ``"compiled"`` (numba) or ``"numpy"`` (the reference engine; networks of affine layers
        and activations only).
    max_regions
        The region budget: a partition that would exceed it raises
        :class:`RegionBudgetExceeded` (a ``ValueError``) as soon as it does, before memory runs
        out. A wide layer lowers the budget further so that its per-region affine maps (24 bytes
        per region and unit) stay under :data:`MAP_BYTES` (4 GiB).

    Returns
    -------
    Partition
        Everything in box coordinates (plane coordinates with a plane).

    Notes
    -----
    Computed in float64. A vertex within ``TOLERANCE`` (1e-9) times the box diagonal of a
    unit's line counts as lying on it, so lines that meet in one point in exact arithmetic
    (as BN's first-layer lines do, through the batch mean) create no sliver regions. The same
    tolerance holds with a plane and for the lines where a max-pool window's maximum changes.
    A max-pool splits a region only where the argmax of a window changes (each cell where one
    position wins is the region clipped by that position's half-planes), so every region still
    carries one affine map.

    Examples
    --------
    >>> from bnlib import MLP
    >>> part = partition(MLP([2, 6, 6, 6, 6], seed=0), (-3, 3, -3, 3))
    >>> part.n_regions > 1, bool(np.isclose(part.areas().sum(), 36.0))
    (True, True)

    A plane through three 8x8 images, for a convolutional net:

    >>> from bnlib.nets import ConvNet
    >>> images = np.random.default_rng(0).uniform(size=(3, 1, 8, 8))
    >>> part = partition(ConvNet(seed=0), plane=Plane.through(images))
    >>> part.n_regions > 1, bool(np.isclose(part.areas().sum(), np.ptp(part.box[:2]) * np.ptp(part.box[2:])))
    (True, True)
    """
    if plane is not None and not isinstance(plane, Plane):
        raise ValueError(f"The 'plane' parameter of partition must be a bnlib.Plane or None; got {type(plane).__name__}.")
    if method not in ("compiled", "numpy"):
        raise ValueError(f"method must be 'compiled' or 'numpy'; got {method!r}")
    max_regions = check_int(max_regions, "max_regions", "partition", at_least=1)
    network = layers = None
    if isinstance(model, nn.Module):
        if plane is None and _is_mlp(model):
            layers = affine_layers(model, batch=batch)
        else:
            network = read_network(model, (2,) if plane is None else plane.shape, batch=batch)
            layers = network.affine_layers()
    else:
        layers = list(model) if isinstance(model, (list, tuple)) else None
        if not layers or not all(isinstance(layer, AffineLayer) for layer in layers):
            raise ValueError(
                "model must be a torch.nn.Sequential (Linear, BatchNorm1d, ReLU, LeakyReLU, Identity) "
                f"or a non-empty list of bnlib AffineLayer; got {type(model).__name__}"
            )
        if batch is not None:
            raise ValueError("batch= only applies to a torch model, not to already-read affine layers")
        network = Network(tuple(_ops_of(layers)), (layers[0].W.shape[1],))
    if plane is None:
        if box is None:
            raise ValueError("The 'box' parameter of partition must be (xmin, xmax, ymin, ymax); got None "
                             "(only a partition of a plane, plane=..., has a default box).")
        d_in = layers[0].W.shape[1] if layers else network.input_dim
        if d_in != 2:
            raise ValueError(f"partition works in a 2-D input space; the model takes {d_in} inputs "
                             "(for more, partition a plane through the inputs: plane=bnlib.Plane.through(...))")
        box = check_box(box)
        origin, basis = np.zeros(2), np.eye(2)
    else:
        if network.input_dim != plane.dim:
            raise ValueError(f"the plane lies in a {plane.dim}-dimensional input space; the model takes "
                             f"{network.input_dim} inputs")
        box = plane.default_box() if box is None else check_box(box)
        origin, basis = plane.origin, plane.basis
    ops = _ops_of(layers) if layers is not None and plane is None else list(network.ops)
    if method == "numpy" and any(isinstance(op, MaxPool) for op in ops):
        raise ValueError("method='numpy' handles networks without max-pooling; use method='compiled'")
    V, n, codes, unit_layer, A, c, segments, stages = _run(ops, box, origin, basis, method, max_regions)
    if plane is not None:
        network = network.on_plane(origin, basis)
        layers = network.affine_layers()
    affine_A, affine_c = A.transpose(1, 0, 2), c.T
    return Partition(box, V, n, codes, np.array(unit_layer, dtype=int), affine_A, affine_c, layers, segments, stages,
                     network if layers is None else None, plane)


def _budget(max_regions: int, width: int) -> int:
    return int(min(max_regions, max(1, MAP_BYTES // (24 * max(width, 1)))))


def _run(ops, box, origin, basis, method, max_regions):
    """The engine: regions of the box and, on each, the affine map of the current vector."""
    compiled = method == "compiled"
    cut = cut_by_lines if compiled else cut_sequential
    snap = TOLERANCE * _diameter(box)
    V, n = _box_polygon(box), np.array([4])
    # unit-major affine maps: on region r, unit i of the current vector is A[i, r] . x + c[i, r]
    A = np.ascontiguousarray(basis, dtype=np.float64)[:, None, :]
    c = np.asarray(origin, dtype=np.float64)[:, None]
    codes = np.zeros((1, 0), dtype=bool)
    unit_layer: list[int] = []
    seg_pts, seg_layer, seg_unit = [], [], []
    stages = []
    saved: list[tuple[np.ndarray, np.ndarray]] = []  # the skips of the residual blocks we are in
    depth = 0
    for op in ops:
        if isinstance(op, Dense):
            k, d = op.W.shape
            A = _matmul(op.W, A.reshape(d, -1)).reshape(k, -1, 2)
            c = _matmul(op.W, c) + op.b[:, None]
            continue
        if isinstance(op, ResidualBegin):
            saved.append((A, c))
            continue
        if isinstance(op, ResidualEnd):
            sA, sc = saved.pop()
            A, c = A + sA, c + sc
            continue
        depth += 1
        limit = _budget(max_regions, A.shape[0])
        try:
            if isinstance(op, Activation):
                # inside each region of the layers before (a root), every unit is a straight line
                V, n, root, seg, unit = cut(V, n, A, c, snap, limit)
            else:
                V, n, root, win, seg, unit = cut_by_maxpool(V, n, A, c, op.index, snap, limit)
        except RegionBudgetExceeded:
            why = (f"max_regions={max_regions}" if limit == max_regions else
                   f"{limit} regions, where this layer's {A.shape[0]} units' affine maps would fill MAP_BYTES "
                   f"({MAP_BYTES / 2**30:.0f} GiB)")
            raise RegionBudgetExceeded(
                f"the partition exceeds its budget at layer {depth}: more than {why}. Partition a smaller box, "
                "or raise max_regions (memory grows with regions x units)") from None
        if isinstance(op, Activation):
            positive, A, c = layer_maps(V, n, root, A, c, op.slope, compiled=compiled)
            new_codes = positive
            unit_layer += [depth] * A.shape[0]
        else:
            from ._cutkernel import maxpool_maps

            A, c, onehot = maxpool_maps(np.ascontiguousarray(A), np.ascontiguousarray(c), op.index, win, root)
            new_codes = onehot.T
            unit_layer += [depth] * op.index.size
        codes = np.concatenate([codes[root], new_codes], axis=1)  # C order, whatever new_codes' layout
        saved = [(sA[:, root], sc[:, root]) for sA, sc in saved]
        seg_pts.append(seg)
        seg_layer.append(np.full(len(seg), depth))
        seg_unit.append(unit)
        stages.append((V, n))
    segments = Segments(
        np.concatenate(seg_pts) if seg_pts else np.zeros((0, 2, 2)),
        np.concatenate(seg_layer) if seg_layer else np.zeros(0, dtype=int),
        np.concatenate(seg_unit) if seg_unit else np.zeros(0, dtype=int),
    )
    return V, n, codes, unit_layer, A, c, segments, stages
