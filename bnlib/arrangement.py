"""Cutting convex polygons by lines: the engine under :func:`bnlib.partition`.

A layer of the network cuts each region of the partition before it (a *root*) by one
straight line per unit. Cutting is done one line at a time: every piece of the root that
the line crosses is split in two (Sutherland-Hodgman clipping on both sides), and the
chord where the line crosses it is kept as a piece of the unit's folded hyperplane.

Two implementations of the same algorithm:

- :func:`cut_by_lines`, the default: a compiled (numba) loop, :mod:`bnlib._cutkernel`;
- :func:`cut_sequential`, the reference: numpy, vectorised over all regions for each line
  (the regions the line can meet are found with bounding circles), short enough to read.

Both snap signed distances closer to zero than ``snap`` to zero: see
:data:`bnlib.partition.TOLERANCE`. The tests check both against torch.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cut_by_lines", "cut_sequential", "cut_by_maxpool", "layer_maps", "chords", "polygon_areas", "vertex_mean",
           "line_values", "RegionBudgetExceeded"]

_NO_LIMIT = np.iinfo(np.int64).max


class RegionBudgetExceeded(ValueError):
    """A partition would hold more regions than its budget (``max_regions`` of :func:`bnlib.partition`)."""


def vertex_mean(V: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Mean of the vertices of each padded polygon: a point strictly inside a convex one."""
    valid = np.arange(V.shape[1]) < n[:, None]
    return (V * valid[..., None]).sum(1) / n[:, None]


def polygon_areas(V: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Signed areas (shoelace) of padded polygons; positive for counter-clockwise ones.

    Coordinates are taken relative to each polygon's first vertex, so the areas keep their
    precision far from the origin.
    """
    V = V - V[:, :1]
    M = V.shape[1]
    Vn = np.take_along_axis(V, ((np.arange(M) + 1) % n[:, None])[..., None], axis=1)
    valid = np.arange(M) < n[:, None]
    cross = V[..., 0] * Vn[..., 1] - V[..., 1] * Vn[..., 0]
    return 0.5 * np.where(valid, cross, 0.0).sum(1)


def line_values(V, a, o, snap):
    """Signed distance from vertices ``V`` (r, m, 2) to the lines ``a[r].x + o[r] = 0``.

    Values within ``snap`` of zero are set to zero. A line whose normal vanishes (a unit
    constant on the region) gets the constant ``o`` at every vertex, so it never cuts.
    """
    norm = np.linalg.norm(a, axis=1)
    flat = norm < 1e-300
    s = (np.einsum("rmt,rt->rm", V, a) + o[:, None]) / np.where(flat, 1.0, norm)[:, None]
    s = np.where(flat[:, None], o[:, None], s)
    s[np.abs(s) <= snap] = 0.0
    return s


def _edge_values(V, n, s):
    M = V.shape[1]
    idx = np.arange(M)
    valid = idx < n[:, None]
    nxt = (idx + 1) % n[:, None]
    return valid, np.take_along_axis(V, nxt[..., None], axis=1), np.take_along_axis(s, nxt, axis=1)


def _compact(cand, mask):
    """Move the masked candidates of each row to its front, keeping their order.

    Padded slots repeat the row's first vertex, so a max/min over a row only sees real ones.
    """
    order = np.argsort(~mask, axis=1, kind="stable")
    counts = mask.sum(1)
    width = int(counts.max()) if len(counts) else 0
    out = np.take_along_axis(cand, order[:, :width, None], axis=1)
    valid = np.arange(width) < counts[:, None]
    return np.where(valid[..., None], out, out[:, :1]), counts


def _split_candidates(V, n, s):
    valid, Vn, sn = _edge_values(V, n, s)
    cross = valid & (s * sn < 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(cross, s / np.where(cross, s - sn, 1.0), 0.0)
    P = V + t[..., None] * (Vn - V)
    R, M = s.shape
    return valid, cross, np.stack([V, P], axis=2).reshape(R, 2 * M, 2)


def chords(V, n, s) -> np.ndarray:
    """The segment (r, 2, 2) where each convex polygon meets the zero line of ``s``.

    Every row must straddle its line (some ``s > 0`` and some ``s < 0``); a convex polygon
    then meets the line in exactly two boundary points.
    """
    valid, cross, cand = _split_candidates(V, n, s)
    on_line = np.stack([valid & (s == 0), cross], axis=2).reshape(len(s), -1)
    return _compact(cand, on_line)[0][:, :2]


def split(V, n, s):
    """Cut straddling convex polygons by the zero line of ``s``: positive piece, negative piece, chord."""
    valid, cross, cand = _split_candidates(V, n, s)
    R, M = s.shape
    pos, n_pos = _compact(cand, np.stack([valid & (s >= 0), cross], axis=2).reshape(R, 2 * M))
    neg, n_neg = _compact(cand, np.stack([valid & (s <= 0), cross], axis=2).reshape(R, 2 * M))
    on_line = np.stack([valid & (s == 0), cross], axis=2).reshape(R, 2 * M)
    return pos, n_pos, neg, n_neg, _compact(cand, on_line)[0][:, :2]


def _pad(V, width):
    if V.shape[1] >= width:
        return V
    return np.concatenate([V, np.repeat(V[:, -1:], width - V.shape[1], axis=1)], axis=1)


class _Regions:
    """Growable padded storage of convex polygons, each with a bounding circle.

    A cut overwrites the parent's row with its positive piece and appends the negative
    piece, so one line costs O(regions) cheap work (the circle test) plus O(cut regions).
    """

    def __init__(self, V, n):
        self.V, self.n, self.size = V.copy(), n.copy(), len(V)
        self.centre, self.radius = np.zeros((len(V), 2)), np.zeros(len(V))
        self._update_circles(np.arange(self.size))

    def _update_circles(self, rows):
        V, n = self.V[rows], self.n[rows]
        centre = vertex_mean(V, n)
        self.centre[rows] = centre
        self.radius[rows] = np.linalg.norm(V - centre[:, None], axis=2).max(1)

    def _reserve(self, rows, width):
        cap, w = self.V.shape[:2]
        if width > w:
            self.V = np.concatenate([self.V, np.repeat(self.V[:, :1], width - w, axis=1)], axis=1)
        if rows > cap:
            extra = max(rows, 2 * cap) - cap
            self.V = np.concatenate([self.V, np.zeros((extra,) + self.V.shape[1:])])
            self.n = np.concatenate([self.n, np.zeros(extra, dtype=self.n.dtype)])
            self.centre = np.concatenate([self.centre, np.zeros((extra, 2))])
            self.radius = np.concatenate([self.radius, np.zeros(extra)])

    def split(self, a, o, snap):
        R = self.size
        norm = np.sqrt(a[:, 0] ** 2 + a[:, 1] ** 2)
        centre = self.centre[:R]
        value = np.abs(centre[:, 0] * a[:, 0] + centre[:, 1] * a[:, 1] + o)
        # the line can only meet the polygon if it meets its bounding circle
        near = np.flatnonzero((value <= (self.radius[:R] + snap) * norm) & (norm > 1e-300))
        if len(near) == 0:
            return None
        s = line_values(self.V[near], a[near], o[near], snap)
        hit = (s.max(1) > 0) & (s.min(1) < 0)
        if not hit.any():
            return None
        rows = near[hit]
        pos, n_pos, neg, n_neg, seg = split(self.V[rows], self.n[rows], s[hit])
        self._reserve(R + len(rows), max(pos.shape[1], neg.shape[1]))
        new = np.arange(R, R + len(rows))
        self.V[rows], self.n[rows] = _pad(pos, self.V.shape[1]), n_pos
        self.V[new], self.n[new] = _pad(neg, self.V.shape[1]), n_neg
        self.size = R + len(rows)
        self._update_circles(np.concatenate([rows, new]))
        return rows, seg


def _empty_segments():
    return np.zeros((0, 2, 2)), np.zeros(0, dtype=np.int64)


def cut_sequential(V, n, a, o, snap, limit=None):
    """Cut each root polygon by its lines, one line (unit) at a time.

    Parameters: root polygons ``V`` (R, M, 2) with counts ``n``; the lines of each root,
    unit-major: ``a`` (k, R, 2), ``o`` (k, R) (line j of root r: ``a[j, r] . x + o[j, r] = 0``). Returns the pieces ``(V, n)``, the root of each piece, and the boundary
    segments (S, 2, 2) with the unit (line index) of each. More than ``limit`` pieces raise
    :class:`RegionBudgetExceeded`.
    """
    regions = _Regions(V, n)
    root = np.arange(len(V))
    segs, units = [], []
    for j in range(a.shape[0]):
        cut = regions.split(a[j][root], o[j][root], snap)
        if cut is not None:
            rows, seg = cut
            root = np.concatenate([root, root[rows]])
            segs.append(seg)
            units.append(np.full(len(seg), j))
            if limit is not None and regions.size > limit:
                raise RegionBudgetExceeded(f"more than {limit} regions")
    seg, unit = (np.concatenate(segs), np.concatenate(units)) if segs else _empty_segments()
    return regions.V[: regions.size].copy(), regions.n[: regions.size].copy(), root, seg, unit


def cut_by_lines(V, n, a, o, snap, limit=None):
    """Cut each root polygon by its lines, one line at a time, in compiled code.

    The same algorithm as :func:`cut_sequential` (same parameters and results), run by the
    numba kernel in :mod:`bnlib._cutkernel`; the inputs are copied to contiguous float64
    so the kernel is compiled for one signature only.
    """
    from ._cutkernel import cut_layer

    xy, start, count, root, seg, unit, overflow = cut_layer(
        np.ascontiguousarray(V, dtype=np.float64),
        np.ascontiguousarray(n, dtype=np.int64),
        np.ascontiguousarray(a, dtype=np.float64),
        np.ascontiguousarray(o, dtype=np.float64),
        float(snap),
        _NO_LIMIT if limit is None else int(limit),
    )
    if overflow:
        raise RegionBudgetExceeded(f"more than {limit} regions")
    slot = np.minimum(np.arange(int(count.max())), count[:, None] - 1)
    return xy[start[:, None] + slot], count, root, seg, unit


def layer_maps(V, n, root, a, o, slope, compiled: bool = True):
    """Pattern of each piece (pre-activation > 0 at its vertex mean) and its output map.

    ``a`` (k, R0, 2), ``o`` (k, R0): the units' maps on the roots; ``root`` (R,): the root of
    each piece. Returns ``positive`` (R, k), ``A`` (k, R, 2), ``c`` (k, R): on piece r the
    layer's output is ``A[:, r] @ x + c[:, r]``.
    """
    if compiled:
        from ._cutkernel import layer_maps as kernel

        positive, A, c = kernel(V, n.astype(np.int64), root.astype(np.int64), np.ascontiguousarray(a),
                                np.ascontiguousarray(o), float(slope))
        return positive.T, A, c
    x = vertex_mean(V, n)
    ar, orr = a[:, root], o[:, root]
    h = ar[..., 0] * x[:, 0] + ar[..., 1] * x[:, 1] + orr
    gain = np.where(h > 0, 1.0, slope)
    return (h > 0).T, gain[..., None] * ar, gain * orr


def cut_by_maxpool(V, n, a, o, index, snap, limit=None):
    """Split root polygons where the argmax of max-pool windows changes (compiled).

    ``a`` (k, R, 2), ``o`` (k, R): the pooled units' maps on the roots; ``index`` (windows, p).
    Returns the pieces ``(V, n)``, the ``root`` of each, the winning position ``win`` (pieces,
    windows) of every window, and the boundary segments with their window. See
    :func:`bnlib._cutkernel.maxpool_layer`.
    """
    from ._cutkernel import maxpool_layer

    if index.shape[1] > 127:
        raise ValueError(f"a max-pool window of {index.shape[1]} inputs; bnlib handles windows of at most 127")
    xy, start, count, root, win, seg, unit, overflow = maxpool_layer(
        np.ascontiguousarray(V, dtype=np.float64),
        np.ascontiguousarray(n, dtype=np.int64),
        np.ascontiguousarray(a, dtype=np.float64),
        np.ascontiguousarray(o, dtype=np.float64),
        np.ascontiguousarray(index, dtype=np.int64),
        float(snap),
        _NO_LIMIT if limit is None else int(limit),
    )
    if overflow:
        raise RegionBudgetExceeded(f"more than {limit} regions")
    slot = np.minimum(np.arange(int(count.max())), count[:, None] - 1)
    return xy[start[:, None] + slot], count, root, win, seg, unit
