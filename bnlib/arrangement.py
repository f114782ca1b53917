"""Cutting convex polygons by lines: the engine under :func:`bnlib.partition`.

A layer of the network cuts each region of the partition before it (a *root*) by one
straight line per unit. :func:`cut_by_lines` does this for all roots and all lines at
once, as the arrangement of the lines inside each root polygon:

1. the vertices of every arrangement are collected (root corners, the two points where
   each crossing line meets the root's boundary, and pairwise crossings of lines inside
   the root), and merged when they lie on the same set of lines and edges;
2. around each vertex, the lines and edges through it split the plane into sectors; the
   sign pattern of the lines in a sector names the face (cell) that the sector opens into;
3. each face collects the vertices whose sectors name it, ordered by angle.

Every root is then checked: its faces must have at least three vertices and their areas
must add up to the root's area. A root that fails (a numerically delicate configuration)
is cut again by :func:`cut_sequential`, the simple reference algorithm that splits by
one unit at a time. Both work on padded arrays (roots, vertices, 2) with a count per
root, vectorised over roots; there is no Python loop over regions.

Signed distances closer to zero than ``snap`` are taken as zero: see
:data:`bnlib.partition.TOLERANCE`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cut_by_lines", "cut_sequential", "chords", "polygon_areas", "vertex_mean", "line_values"]

_ANGLE_TOL = 1e-9
_HASH = np.random.default_rng(20221010)  # Zobrist keys: any fixed random bits will do


def _hash_keys(size: int) -> np.ndarray:
    return np.random.default_rng(_HASH.bit_generator.state["state"]["state"] % 2**63 + size).integers(
        0, 2**63, size=size, dtype=np.int64
    ).astype(np.uint64)


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


def cut_sequential(V, n, a, o, snap):
    """Cut each root polygon by its lines, one line (unit) at a time.

    Parameters: root polygons ``V`` (R, M, 2) with counts ``n``; lines ``a`` (R, k, 2),
    ``o`` (R, k). Returns the pieces ``(V, n)``, the root of each piece, and the boundary
    segments (S, 2, 2) with the unit (line index) of each.
    """
    regions = _Regions(V, n)
    root = np.arange(len(V))
    a_unit = np.ascontiguousarray(a.transpose(1, 0, 2))  # (unit, root, 2): cheap gathers
    o_unit = np.ascontiguousarray(o.T)
    segs, units = [], []
    for j in range(a.shape[1]):
        cut = regions.split(a_unit[j][root], o_unit[j][root], snap)
        if cut is not None:
            rows, seg = cut
            root = np.concatenate([root, root[rows]])
            segs.append(seg)
            units.append(np.full(len(seg), j))
    seg, unit = (np.concatenate(segs), np.concatenate(units)) if segs else _empty_segments()
    return regions.V[: regions.size].copy(), regions.n[: regions.size].copy(), root, seg, unit


def _sort_within(group, value):
    """Order that sorts by ``group`` (ints), then by ``value`` within each group."""
    first = np.argsort(value, kind="stable")
    return first[np.argsort(group[first], kind="stable")]


def _group_rows(group_of_item, group_start, group_size):
    """For items each in a group, list (item, member) for every member of the item's group."""
    count = group_size[group_of_item]
    item = np.repeat(np.arange(len(group_of_item)), count)
    offset = np.arange(len(item)) - np.repeat(np.cumsum(count) - count, count)
    return item, group_start[group_of_item][item] + offset, np.cumsum(count) - count


def cut_by_lines(V, n, a, o, snap):
    """Cut each root polygon by all its lines at once (see the module docstring).

    Same parameters and results as :func:`cut_sequential`; the boundary segments are one
    chord per (root, crossing line).
    """
    R0, M, _ = V.shape
    k = a.shape[1]
    valid = np.arange(M) < n[:, None]
    norm = np.hypot(a[..., 0], a[..., 1])
    # a line can only cross a root if it meets the root's bounding circle
    centre = vertex_mean(V, n)
    radius = np.sqrt(((V - centre[:, None]) ** 2).sum(2).max(1))
    value = np.abs(a[..., 0] * centre[:, :1] + a[..., 1] * centre[:, 1:] + o)
    cr, cj = np.nonzero((value <= (radius[:, None] + snap) * norm) & (norm > 1e-300))
    ca = a[cr, cj]
    s = (V[cr, :, 0] * ca[:, :1] + V[cr, :, 1] * ca[:, 1:] + o[cr, cj][:, None]) / norm[cr, cj][:, None]
    s[np.abs(s) <= snap] = 0.0
    cvalid = valid[cr]
    crossing = (np.where(cvalid, s, -np.inf).max(1) > 0) & (np.where(cvalid, s, np.inf).min(1) < 0)
    pr, pj, s = cr[crossing], cj[crossing], s[crossing]  # crossing (root, line) pairs, by root
    P = len(pr)
    if P == 0:
        return V.copy(), n.copy(), np.arange(R0), *_empty_segments()
    # only roots that some line crosses change; the others are passed through untouched
    V_all, n_all = V, n
    active, pr = np.unique(pr, return_inverse=True)
    pr = pr.reshape(-1)
    V, n, a, o, norm = V[active], n[active], a[active], o[active], norm[active]
    R0, valid = len(active), valid[active]
    pa, po, pnorm = a[pr, pj], o[pr, pj], norm[pr, pj]
    m_r = np.bincount(pr, minlength=R0)
    start = np.cumsum(m_r) - m_r
    seg = chords(V[pr], n[pr], s)

    # edges of the roots: unit inward normals (counter-clockwise polygons: interior on the left)
    Vn = np.take_along_axis(V, ((np.arange(M) + 1) % n[:, None])[..., None], axis=1)
    e = Vn - V
    elen = np.hypot(e[..., 0], e[..., 1])
    evalid = valid & (elen > 1e-300)
    edir = e / np.where(evalid, elen, 1.0)[..., None]
    normal = np.stack([-edir[..., 1], edir[..., 0]], axis=-1)
    offset = np.einsum("rmt,rmt->rm", normal, V)

    # 1. candidate vertices: corners, chord ends, crossings of two lines of the same root
    ra, ma = np.nonzero(valid)
    p, q, _ = _group_rows(pr, start, m_r)  # pair p with every pair q of its root (q > p kept)
    keep = q > p
    p, q = p[keep], q[keep]
    det = pa[p, 0] * pa[q, 1] - pa[p, 1] * pa[q, 0]
    ok = np.abs(det) > 1e-12 * pnorm[p] * pnorm[q]
    p, q, det = p[ok], q[ok], det[ok]
    cx = (-po[p] * pa[q, 1] + po[q] * pa[p, 1]) / det
    cy = (-pa[p, 0] * po[q] + pa[q, 0] * po[p]) / det
    X = np.concatenate([V[ra, ma], seg.reshape(-1, 2), np.stack([cx, cy], axis=1)])
    croot = np.concatenate([ra, np.repeat(pr, 2), pr[p]])
    nrm = normal[croot]
    edist = nrm[..., 0] * X[:, :1] + nrm[..., 1] * X[:, 1:] - offset[croot]
    ev = evalid[croot]
    inside = ~np.any(ev & (edist < -snap), axis=1)
    X, croot, edist, ev = X[inside], croot[inside], edist[inside], ev[inside]
    zero_edge = ev & (np.abs(edist) <= snap)

    # signed distance of every candidate to every crossing line of its root
    cidx, pidx, rowstart = _group_rows(croot, start, m_r)
    sv = (np.einsum("it,it->i", pa[pidx], X[cidx]) + po[pidx]) / pnorm[pidx]
    sv[np.abs(sv) <= snap] = 0.0
    zero_line = sv == 0.0

    # merge candidates on the same lines and edges of the same root (Zobrist hashing)
    h_pair, h_edge, h_root = _hash_keys(P), _hash_keys(M + 1)[1:], _hash_keys(R0 + 7)[7:]
    key = h_root[croot].copy()
    np.add.at(key, cidx[zero_line], h_pair[pidx[zero_line]])
    ce, me = np.nonzero(zero_edge)
    np.add.at(key, ce, h_edge[me] * (np.uint64(2) * h_root[croot[ce]] + np.uint64(1)))
    _, rep, vid = np.unique(key, return_index=True, return_inverse=True)
    U = len(rep)
    Xu, ru = X[rep], croot[rep]

    # 2. rays along every line and edge through each vertex, sorted by angle -> sectors
    is_rep = np.zeros(len(X), dtype=bool)
    is_rep[rep] = True
    zl = zero_line & is_rep[cidx]
    line_vertex = vid.reshape(-1)[cidx[zl]]
    ang_line = np.arctan2(pa[pidx[zl], 0], -pa[pidx[zl], 1])  # direction (-a_y, a_x)
    ue, me = np.nonzero(zero_edge[rep])
    ang_edge = np.arctan2(edir[ru[ue], me, 1], edir[ru[ue], me, 0])
    ray_vertex = np.concatenate([line_vertex, line_vertex, ue, ue])
    ang = np.concatenate([ang_line, ang_line + np.pi, ang_edge, ang_edge + np.pi])
    ang = np.mod(ang, 2 * np.pi)
    order = _sort_within(ray_vertex, ang)
    ray_vertex, ang = ray_vertex[order], ang[order]
    n_rays = np.bincount(ray_vertex, minlength=U)
    first = np.cumsum(n_rays) - n_rays
    pos = np.arange(len(ang)) - first[ray_vertex]
    nxt = first[ray_vertex] + (pos + 1) % n_rays[ray_vertex]
    gap = np.mod(ang[nxt] - ang, 2 * np.pi)
    gap = np.where(n_rays[ray_vertex] == 1, 2 * np.pi, gap)
    good = gap > _ANGLE_TOL
    sect_vertex = ray_vertex[good]
    mid = ang[good] + gap[good] / 2
    d = np.stack([np.cos(mid), np.sin(mid)], axis=1)
    # a sector must open into the root: inward of every edge through its vertex
    nrm = normal[ru[sect_vertex]]
    into = nrm[..., 0] * d[:, :1] + nrm[..., 1] * d[:, 1:] > 0
    inside = ~np.any(zero_edge[rep][sect_vertex] & ~into, axis=1)
    sect_vertex, d = sect_vertex[inside], d[inside]

    # the face a sector opens into: signs of the root's crossing lines just inside it
    sidx, spidx, _ = _group_rows(ru[sect_vertex], start, m_r)
    u = sect_vertex[sidx]
    val = sv[rowstart[rep[u]] + (spidx - start[ru[u]])]
    bit = (val > 0) | ((val == 0) & (np.einsum("it,it->i", pa[spidx], d[sidx]) > 0))
    fkey = h_root[ru[sect_vertex]].copy()
    np.add.at(fkey, sidx[bit], h_pair[spidx[bit]])
    _, frep, fid = np.unique(fkey, return_index=True, return_inverse=True)
    fid = fid.reshape(-1)
    F = len(frep)
    froot = ru[sect_vertex[frep]]

    # 3. each face: its vertices in angular order around their mean
    pts = Xu[sect_vertex]
    count = np.bincount(fid, minlength=F)
    centre = np.stack([np.bincount(fid, pts[:, 0], F), np.bincount(fid, pts[:, 1], F)], axis=1) / count[:, None]
    theta = np.arctan2(pts[:, 1] - centre[fid, 1], pts[:, 0] - centre[fid, 0])
    order = _sort_within(fid, theta)
    width = int(count.max())
    slot = np.arange(len(order)) - (np.cumsum(count) - count)[fid[order]]
    Vf = np.repeat(pts[order][np.cumsum(count) - count][:, None], width, axis=1)
    Vf[fid[order], slot] = pts[order]

    # check every root; cut the doubtful ones again, one line at a time
    farea = polygon_areas(Vf, count)
    rarea = polygon_areas(V, n)
    total = np.bincount(froot, farea, minlength=R0)
    bad = np.abs(total - rarea) > 1e-9 * np.maximum(np.abs(rarea), 1e-300) + 1e-15
    bad |= np.bincount(froot, (count < 3) | (farea <= 0), minlength=R0) > 0
    if bad.any():
        keep_f = ~bad[froot]
        bad_roots = np.flatnonzero(bad)
        Vs, ns, rs, segs, units = cut_sequential(V[bad_roots], n[bad_roots], a[bad_roots], o[bad_roots], snap)
        width = max(Vf.shape[1], Vs.shape[1])
        Vf = np.concatenate([_pad(Vf[keep_f], width), _pad(Vs, width)])
        count = np.concatenate([count[keep_f], ns])
        froot = np.concatenate([froot[keep_f], bad_roots[rs]])
        keep_s = ~bad[pr]
        seg = np.concatenate([seg[keep_s], segs])
        pj = np.concatenate([pj[keep_s], units])
    idle = np.setdiff1d(np.arange(len(V_all)), active)
    width = max(Vf.shape[1], V_all.shape[1])
    Vf = np.concatenate([_pad(V_all[idle], width), _pad(Vf, width)])
    return Vf, np.concatenate([n_all[idle], count]), np.concatenate([idle, active[froot]]), seg, pj
