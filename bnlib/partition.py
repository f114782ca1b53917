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

from .arrangement import chords, cut_by_lines, cut_sequential, layer_maps, line_values, polygon_areas, vertex_mean
from ._validation import check_box as _check_box
from .nets import AffineLayer, activation_patterns, affine_layers, check_points

__all__ = ["TOLERANCE", "Partition", "Segments", "partition", "check_box"]

TOLERANCE = 1e-9
"""Relative snapping tolerance of :func:`partition` (times the box diagonal)."""


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
    layers : list of AffineLayer
        The float64 network the partition was computed from (BN folded in).
    """

    box: tuple
    vertices: np.ndarray = field(repr=False)
    counts: np.ndarray = field(repr=False)
    codes: np.ndarray = field(repr=False)
    unit_layer: np.ndarray = field(repr=False)
    affine_A: np.ndarray = field(repr=False)
    affine_c: np.ndarray = field(repr=False)
    layers: list = field(repr=False)
    _segments: Segments = field(repr=False)
    _stages: list = field(repr=False)

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

        The same function as :func:`bnlib.nets.activation_patterns` on the partition's layers;
        with ``layer=None`` its columns match those of ``codes``.
        """
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
        if self.layers[-1].has_activation:
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

    def predict(self, points) -> np.ndarray:
        """Class of each point (argmax of the outputs; sign for one output), by forward pass."""
        z = check_points(points, 2)
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


def partition(model: nn.Module | Sequence[AffineLayer], box, *, batch=None, method: str = "compiled") -> Partition:
    """The exact partition of ``box`` into the linear regions of a 2-input network.

    Parameters
    ----------
    model
        A ``torch.nn.Sequential`` of ``Linear``, ``BatchNorm1d``, ``ReLU``, ``LeakyReLU`` and
        ``Identity`` modules with 2 inputs (any such model, not only :func:`bnlib.MLP`), or a
        list of :class:`bnlib.nets.AffineLayer`.
    box
        ``(xmin, xmax, ymin, ymax)``.
    batch
        If given (an (N, 2) array, N >= 2), every ``BatchNorm1d`` uses the statistics of this
        batch, as in training mode (biased variance, the layer's eps); the model's running
        statistics are not touched. If None, the running statistics are used (eval mode).

    Returns
    -------
    Partition

    Notes
    -----
    Computed in float64. A vertex within ``TOLERANCE`` (1e-9) times the box diagonal of a
    unit's line counts as lying on it, so lines that meet in one point in exact arithmetic
    (as BN's first-layer lines do, through the batch mean) create no sliver regions.

    Examples
    --------
    >>> from bnlib import MLP
    >>> part = partition(MLP([2, 6, 6, 6, 6], seed=0), (-3, 3, -3, 3))
    >>> part.n_regions > 1, bool(np.isclose(part.areas().sum(), 36.0))
    (True, True)
    """
    box = check_box(box)
    if isinstance(model, nn.Module):
        layers = affine_layers(model, batch=batch)
    else:
        layers = list(model) if isinstance(model, (list, tuple)) else None
        if not layers or not all(isinstance(layer, AffineLayer) for layer in layers):
            raise ValueError(
                "model must be a torch.nn.Sequential (Linear, BatchNorm1d, ReLU, LeakyReLU, Identity) "
                f"or a non-empty list of bnlib AffineLayer; got {type(model).__name__}"
            )
        if batch is not None:
            raise ValueError("batch= only applies to a torch model, not to already-read affine layers")
    if layers[0].W.shape[1] != 2:
        raise ValueError(f"partition works in a 2-D input space; the model takes {layers[0].W.shape[1]} inputs")
    if method not in ("compiled", "numpy"):
        raise ValueError(f"method must be 'compiled' or 'numpy'; got {method!r}")
    cut = cut_by_lines if method == "compiled" else cut_sequential
    snap = TOLERANCE * _diameter(box)

    V, n = _box_polygon(box), np.array([4])
    # unit-major affine maps: on region r, unit i of the current layer input is A[i, r] . x + c[i, r]
    A = np.eye(2)[:, None, :]
    c = np.zeros((2, 1))
    codes = np.zeros((1, 0), dtype=bool)
    unit_layer: list[int] = []
    seg_pts, seg_layer, seg_unit = [], [], []
    stages = []
    for depth, layer in enumerate(layers, start=1):
        # pre-activation maps h = a x + o of this layer's units on every region: one GEMM
        k, d = layer.W.shape
        a = (layer.W @ A.reshape(d, -1)).reshape(k, -1, 2)
        o = layer.W @ c + layer.b[:, None]
        if not layer.has_activation:
            A, c = a, o
            break
        # inside each region of the layers before (a root), every unit is a straight line
        V, n, root, seg, unit = cut(V, n, a, o, snap)
        seg_pts.append(seg)
        seg_layer.append(np.full(len(seg), depth))
        seg_unit.append(unit)
        positive, A, c = layer_maps(V, n, root, a, o, layer.slope, compiled=method == "compiled")
        codes = np.concatenate([codes[root], positive], axis=1)
        unit_layer += [depth] * k
        stages.append((V, n))
    segments = Segments(
        np.concatenate(seg_pts) if seg_pts else np.zeros((0, 2, 2)),
        np.concatenate(seg_layer) if seg_layer else np.zeros(0, dtype=int),
        np.concatenate(seg_unit) if seg_unit else np.zeros(0, dtype=int),
    )
    affine_A, affine_c = A.transpose(1, 0, 2), c.T
    return Partition(box, V, n, codes, np.array(unit_layer, dtype=int), affine_A, affine_c, layers, segments, stages)
