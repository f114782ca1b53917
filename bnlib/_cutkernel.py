"""The compiled inner loop of the partition engine (numba).

One call cuts every root polygon of a layer by every unit's line, one line at a time
(exactly the reference algorithm :func:`bnlib.arrangement.cut_sequential`, which does the
same with numpy), so the hot loop over regions and vertices runs as machine code instead
of as thousands of small numpy calls. ``cache=True`` keeps the compiled code on disk
(``__pycache__``): it is compiled once per machine, in a few seconds.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _grow(arr, size):
    if size <= arr.shape[0]:
        return arr
    out = np.empty((max(size, 2 * arr.shape[0]),) + arr.shape[1:], dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


@njit(cache=True)
def cut_layer(V, n, a, o, snap):
    """Cut root polygons ``V`` (R, M, 2) with counts ``n`` by lines ``a`` (k, R, 2), ``o`` (k, R).

    Returns flat pieces: vertices ``xy`` (total, 2), ``start`` and ``count`` of each piece,
    its ``root``, and the chords ``seg`` (S, 2, 2) with their ``unit``.
    """
    R0 = V.shape[0]
    k = a.shape[0]
    xy = np.empty((16 * R0 + 64, 2))
    start = np.empty(4 * R0 + 16, dtype=np.int64)
    count = np.empty(4 * R0 + 16, dtype=np.int64)
    root = np.empty(4 * R0 + 16, dtype=np.int64)
    seg = np.empty((4 * R0 + 16, 2, 2))
    unit = np.empty(4 * R0 + 16, dtype=np.int64)
    n_xy = 0
    n_out = 0
    n_seg = 0
    # scratch for the pieces of one root
    sxy = np.empty((256, 2))
    sstart = np.empty(64, dtype=np.int64)
    scount = np.empty(64, dtype=np.int64)
    s = np.empty(64)
    for r in range(R0):
        m = n[r]
        sxy = _grow(sxy, m)
        for i in range(m):
            sxy[i, 0] = V[r, i, 0]
            sxy[i, 1] = V[r, i, 1]
        n_sxy = m
        sstart[0] = 0
        scount[0] = m
        n_pieces = 1
        for j in range(k):
            ax = a[j, r, 0]
            ay = a[j, r, 1]
            norm = np.sqrt(ax * ax + ay * ay)
            if norm < 1e-300:
                continue  # a unit constant on the root never cuts it
            ax /= norm
            ay /= norm
            oc = o[j, r] / norm
            # a line that misses the root misses all its pieces
            hi = -np.inf
            lo = np.inf
            for i in range(m):
                v = V[r, i, 0] * ax + V[r, i, 1] * ay + oc
                if abs(v) <= snap:
                    v = 0.0
                hi = max(hi, v)
                lo = min(lo, v)
            if not (hi > 0.0 and lo < 0.0):
                continue
            for p in range(n_pieces):
                st = sstart[p]
                c = scount[p]
                s = _grow(s, c)
                hi = -np.inf
                lo = np.inf
                for i in range(c):
                    v = sxy[st + i, 0] * ax + sxy[st + i, 1] * ay + oc
                    if abs(v) <= snap:
                        v = 0.0
                    s[i] = v
                    hi = max(hi, v)
                    lo = min(lo, v)
                if not (hi > 0.0 and lo < 0.0):
                    continue
                # positive piece, then negative piece, appended to the scratch vertices
                sxy = _grow(sxy, n_sxy + 2 * c + 4)
                sstart = _grow(sstart, n_pieces + 1)
                scount = _grow(scount, n_pieces + 1)
                seg = _grow(seg, n_seg + 1)
                unit = _grow(unit, n_seg + 1)
                n_chord = 0
                for side in range(2):
                    first = n_sxy
                    for i in range(c):
                        i2 = i + 1 if i + 1 < c else 0
                        si = s[i]
                        s2 = s[i2]
                        if (side == 0 and si >= 0.0) or (side == 1 and si <= 0.0):
                            sxy[n_sxy, 0] = sxy[st + i, 0]
                            sxy[n_sxy, 1] = sxy[st + i, 1]
                            n_sxy += 1
                            if side == 0 and si == 0.0 and n_chord < 2:
                                seg[n_seg, n_chord, 0] = sxy[st + i, 0]
                                seg[n_seg, n_chord, 1] = sxy[st + i, 1]
                                n_chord += 1
                        if si * s2 < 0.0:
                            t = si / (si - s2)
                            x = sxy[st + i, 0] + t * (sxy[st + i2, 0] - sxy[st + i, 0])
                            y = sxy[st + i, 1] + t * (sxy[st + i2, 1] - sxy[st + i, 1])
                            sxy[n_sxy, 0] = x
                            sxy[n_sxy, 1] = y
                            n_sxy += 1
                            if side == 0 and n_chord < 2:
                                seg[n_seg, n_chord, 0] = x
                                seg[n_seg, n_chord, 1] = y
                                n_chord += 1
                    if side == 0:
                        sstart[p] = first
                        scount[p] = n_sxy - first
                    else:
                        sstart[n_pieces] = first
                        scount[n_pieces] = n_sxy - first
                unit[n_seg] = j
                n_seg += 1
                n_pieces += 1
        # emit the root's pieces
        total = 0
        for p in range(n_pieces):
            total += scount[p]
        xy = _grow(xy, n_xy + total)
        start = _grow(start, n_out + n_pieces)
        count = _grow(count, n_out + n_pieces)
        root = _grow(root, n_out + n_pieces)
        for p in range(n_pieces):
            start[n_out] = n_xy
            count[n_out] = scount[p]
            root[n_out] = r
            for i in range(scount[p]):
                xy[n_xy, 0] = sxy[sstart[p] + i, 0]
                xy[n_xy, 1] = sxy[sstart[p] + i, 1]
                n_xy += 1
            n_out += 1
    return xy[:n_xy], start[:n_out], count[:n_out], root[:n_out], seg[:n_seg], unit[:n_seg]


@njit(cache=True)
def layer_maps(V, n, root, a, o, slope):
    """Activation pattern of each piece and the affine map of its layer output.

    ``a`` (k, R0, 2), ``o`` (k, R0) are the units' pre-activation maps on the roots; each
    piece's pattern is read at its vertex mean. Returns ``positive`` (R, k) and the maps
    ``A`` (k, R, 2), ``c`` (k, R) of the activation's output, unit-major like ``a``.
    """
    k = a.shape[0]
    R = V.shape[0]
    positive = np.empty((R, k), dtype=np.bool_)
    A = np.empty((k, R, 2))
    c = np.empty((k, R))
    for r in range(R):
        x = 0.0
        y = 0.0
        for i in range(n[r]):
            x += V[r, i, 0]
            y += V[r, i, 1]
        x /= n[r]
        y /= n[r]
        q = root[r]
        for j in range(k):
            h = a[j, q, 0] * x + a[j, q, 1] * y + o[j, q]
            g = 1.0 if h > 0.0 else slope
            positive[r, j] = h > 0.0
            A[j, r, 0] = g * a[j, q, 0]
            A[j, r, 1] = g * a[j, q, 1]
            c[j, r] = g * o[j, q]
    return positive, A, c
