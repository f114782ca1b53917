"""The compiled inner loop of the partition engine (numba).

One call cuts every root polygon of a layer by every unit's line, one line at a time
(exactly the reference algorithm :func:`bnlib.arrangement.cut_sequential`, which does the
same with numpy), so the hot loop over regions and vertices runs as machine code instead
of as thousands of small numpy calls. ``cache=True`` keeps the compiled code on disk: it is
compiled once per machine, in a few seconds.

The cache lives in the user's cache folder (:func:`cache_dir`), never inside the installed
package: numba's default, ``__pycache__`` beside this file, would outlive ``pip uninstall bnlib``
and leave an empty ``bnlib`` folder that imports as a namespace package. A ``NUMBA_CACHE_DIR``
set by the user wins.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import numba.core.config
from numba import njit


def cache_dir() -> Path:
    """Where the compiled kernels are kept: ``NUMBA_CACHE_DIR`` if set, else the user's cache folder.

    ``$XDG_CACHE_HOME/bnlib/numba`` (default ``~/.cache/bnlib/numba``) on Linux,
    ``~/Library/Caches/bnlib/numba`` on macOS, ``%LOCALAPPDATA%\\bnlib\\numba`` on Windows.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "bnlib" / "numba"


# numba picks a function's cache folder when ``@njit(cache=True)`` decorates it, from this
# setting (``NUMBA_CACHE_DIR``, read when numba was imported): set it before the kernels below.
if not numba.core.config.CACHE_DIR:
    numba.core.config.CACHE_DIR = str(cache_dir())


@njit(cache=True)
def _grow(arr, size):
    if size <= arr.shape[0]:
        return arr
    out = np.empty((max(size, 2 * arr.shape[0]),) + arr.shape[1:], dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


@njit(cache=True)
def _circle(xy, st, c, cx, cy, rad, p):
    x = 0.0
    y = 0.0
    for i in range(c):
        x += xy[st + i, 0]
        y += xy[st + i, 1]
    x /= c
    y /= c
    r2 = 0.0
    for i in range(c):
        dx = xy[st + i, 0] - x
        dy = xy[st + i, 1] - y
        r2 = max(r2, dx * dx + dy * dy)
    cx[p] = x
    cy[p] = y
    # a little slack: the test must never skip a piece the exact vertex test would cut
    rad[p] = np.sqrt(r2) * (1.0 + 1e-9) + 1e-300


@njit(cache=True)
def cut_layer(V, n, a, o, snap, limit):
    """Cut root polygons ``V`` (R, M, 2) with counts ``n`` by lines ``a`` (k, R, 2), ``o`` (k, R).

    Returns flat pieces: vertices ``xy`` (total, 2), ``start`` and ``count`` of each piece,
    its ``root``, and the chords ``seg`` (S, 2, 2) with their ``unit``; and whether the pieces
    would exceed ``limit`` (the kernel then stops at once, before memory runs out).
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
    # a bounding circle of each piece: a line farther than its radius from the centre misses it
    scx = np.empty(64)
    scy = np.empty(64)
    srad = np.empty(64)
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
        _circle(sxy, 0, m, scx, scy, srad, 0)
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
                if abs(scx[p] * ax + scy[p] * ay + oc) > srad[p] + snap:
                    continue
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
                scx = _grow(scx, n_pieces + 1)
                scy = _grow(scy, n_pieces + 1)
                srad = _grow(srad, n_pieces + 1)
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
                _circle(sxy, sstart[p], scount[p], scx, scy, srad, p)
                _circle(sxy, sstart[n_pieces], scount[n_pieces], scx, scy, srad, n_pieces)
                unit[n_seg] = j
                n_seg += 1
                n_pieces += 1
                if n_out + n_pieces > limit:
                    return xy[:0], start[:0], count[:0], root[:0], seg[:0], unit[:0], True
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
    return xy[:n_xy], start[:n_out], count[:n_out], root[:n_out], seg[:n_seg], unit[:n_seg], False


@njit(cache=True)
def layer_maps(V, n, root, a, o, slope):
    """Activation pattern of each piece and the affine map of its layer output.

    ``a`` (k, R0, 2), ``o`` (k, R0) are the units' pre-activation maps on the roots; each
    piece's pattern is read at its vertex mean. Returns ``positive`` (k, R) (its transpose is
    the (R, k) pattern) and the maps ``A`` (k, R, 2), ``c`` (k, R) of the activation's output,
    unit-major like ``a``.
    """
    k = a.shape[0]
    R = V.shape[0]
    positive = np.empty((k, R), dtype=np.bool_)
    A = np.empty((k, R, 2))
    c = np.empty((k, R))
    xm = np.empty(R)
    ym = np.empty(R)
    for r in range(R):
        x = 0.0
        y = 0.0
        for i in range(n[r]):
            x += V[r, i, 0]
            y += V[r, i, 1]
        xm[r] = x / n[r]
        ym[r] = y / n[r]
    # unit-major loops: the (k, R, 2) outputs are written in memory order
    for j in range(k):
        for r in range(R):
            q = root[r]
            h = a[j, q, 0] * xm[r] + a[j, q, 1] * ym[r] + o[j, q]
            g = 1.0 if h > 0.0 else slope
            positive[j, r] = h > 0.0
            A[j, r, 0] = g * a[j, q, 0]
            A[j, r, 1] = g * a[j, q, 1]
            c[j, r] = g * o[j, q]
    return positive, A, c


@njit(cache=True)
def maxpool_maps(a, o, index, win, root):
    """The maps of a max-pool's outputs on each piece (the winning unit's map on its root), and the
    one-hot codes: ``A`` (windows, R, 2), ``c`` (windows, R), ``onehot`` (windows * p, R), the
    transpose of the codes' columns."""
    n_win = index.shape[0]
    p = index.shape[1]
    R = root.shape[0]
    A = np.empty((n_win, R, 2))
    c = np.empty((n_win, R))
    onehot = np.zeros((n_win * p, R), dtype=np.bool_)
    for w in range(n_win):
        for r in range(R):
            j = win[r, w]
            u = index[w, j]
            q = root[r]
            A[w, r, 0] = a[u, q, 0]
            A[w, r, 1] = a[u, q, 1]
            c[w, r] = o[u, q]
            onehot[w * p + j, r] = True
    return A, c, onehot


@njit(cache=True)
def _clip(src, m, s, dst):
    """Keep the part of polygon ``src[:m]`` where the signed distances ``s`` are >= 0."""
    k = 0
    for i in range(m):
        i2 = i + 1 if i + 1 < m else 0
        if s[i] >= 0.0:
            dst[k, 0] = src[i, 0]
            dst[k, 1] = src[i, 1]
            k += 1
        if s[i] * s[i2] < 0.0:
            t = s[i] / (s[i] - s[i2])
            dst[k, 0] = src[i, 0] + t * (src[i2, 0] - src[i, 0])
            dst[k, 1] = src[i, 1] + t * (src[i2, 1] - src[i, 1])
            k += 1
    return k


@njit(cache=True)
def maxpool_layer(V, n, a, o, index, snap, limit):
    """Split root polygons by the argmax of max-pool windows: every piece gets one winner per window.

    ``a`` (k, R, 2), ``o`` (k, R): the pooled units' affine maps on each root; ``index``
    (windows, p): the units of each window. Inside a convex piece the cell where position ``j``
    of a window wins, ``{h_j >= h_l for every l}``, is convex: it is the piece clipped by the
    ``p - 1`` half-planes ``h_j - h_l >= 0`` (no split along lines where neither unit is the
    maximum, so no over-splitting). A tie between identical maps goes to the lower position, as
    in torch. Index -1 marks a padded position (torch pads with -inf): it never wins. Returns flat pieces (``xy``, ``start``, ``count``, ``root``), the winner of every
    window on every piece ``win`` (pieces, windows) int8, the boundary segments ``seg`` with
    their window ``unit``, and the overflow flag (see :func:`cut_layer`).
    """
    R0 = V.shape[0]
    n_win = index.shape[0]
    p = index.shape[1]
    xy = np.empty((16 * R0 + 64, 2))
    start = np.empty(4 * R0 + 16, dtype=np.int64)
    count = np.empty(4 * R0 + 16, dtype=np.int64)
    root = np.empty(4 * R0 + 16, dtype=np.int64)
    win = np.empty((4 * R0 + 16, n_win), dtype=np.int8)
    seg = np.empty((4 * R0 + 16, 2, 2))
    unit = np.empty(4 * R0 + 16, dtype=np.int64)
    n_xy = 0
    n_out = 0
    n_seg = 0
    sxy = np.empty((256, 2))
    sstart = np.empty(64, dtype=np.int64)
    scount = np.empty(64, dtype=np.int64)
    swin = np.empty((64, n_win), dtype=np.int8)
    cur = np.empty((64, 2))
    nxt = np.empty((64, 2))
    s = np.empty(64)
    for r in range(R0):
        m0 = n[r]
        sxy = _grow(sxy, m0)
        for i in range(m0):
            sxy[i, 0] = V[r, i, 0]
            sxy[i, 1] = V[r, i, 1]
        n_sxy = m0
        sstart[0] = 0
        scount[0] = m0
        n_pieces = 1
        for w in range(n_win):
            before = n_pieces
            for q in range(before):
                st = sstart[q]
                c = scount[q]
                # the usual case: one position is the maximum at every vertex, so on the whole piece
                best = -1
                same = True
                for i in range(c):
                    bj = 0
                    bv = -np.inf
                    for j in range(p):
                        u = index[w, j]
                        if u < 0:
                            continue  # a padded position: it never wins
                        v = a[u, r, 0] * sxy[st + i, 0] + a[u, r, 1] * sxy[st + i, 1] + o[u, r]
                        if v > bv:
                            bv = v
                            bj = j
                    if i == 0:
                        best = bj
                    elif bj != best:
                        same = False
                        break
                if same:
                    swin[q, w] = best
                    continue
                first = True
                for j in range(p):
                    if index[w, j] < 0:
                        continue
                    cur = _grow(cur, c)
                    for i in range(c):
                        cur[i, 0] = sxy[st + i, 0]
                        cur[i, 1] = sxy[st + i, 1]
                    m = c
                    empty = False
                    uj = index[w, j]
                    for l in range(p):
                        ul = index[w, l]
                        if ul < 0:
                            continue
                        if l == j or ul == uj:
                            if ul == uj and l < j:
                                empty = True  # the same unit twice (a short window): the first copy wins
                                break
                            continue
                        gx = a[uj, r, 0] - a[ul, r, 0]
                        gy = a[uj, r, 1] - a[ul, r, 1]
                        go = o[uj, r] - o[ul, r]
                        norm = np.sqrt(gx * gx + gy * gy)
                        if norm < 1e-300:
                            # identical slopes: a constant difference, or a tie (lower position wins)
                            tie = 1e-12 * (abs(o[uj, r]) + abs(o[ul, r]))
                            if go > tie or (go >= -tie and l > j):
                                continue
                            empty = True
                            break
                        gx /= norm
                        gy /= norm
                        go /= norm
                        s = _grow(s, m)
                        hi = -np.inf
                        lo = np.inf
                        for i in range(m):
                            v = cur[i, 0] * gx + cur[i, 1] * gy + go
                            if abs(v) <= snap:
                                v = 0.0
                            s[i] = v
                            hi = max(hi, v)
                            lo = min(lo, v)
                        if hi <= 0.0:
                            if lo == 0.0 and l > j:
                                continue  # the piece lies on the line (within snap): a tie
                            empty = True
                            break
                        if lo >= 0.0:
                            continue
                        nxt = _grow(nxt, 2 * m + 2)
                        m = _clip(cur, m, s, nxt)
                        cur, nxt = nxt, cur
                    if empty:
                        continue
                    # boundary segments: cell edges on a line h_j = h_l with l > j (each edge once),
                    # not on the piece's own boundary
                    for i in range(m):
                        i2 = i + 1 if i + 1 < m else 0
                        x0 = cur[i, 0]
                        y0 = cur[i, 1]
                        x1 = cur[i2, 0]
                        y1 = cur[i2, 1]
                        if x0 == x1 and y0 == y1:
                            continue
                        on_parent = False
                        for e in range(c):
                            e2 = e + 1 if e + 1 < c else 0
                            ex = sxy[st + e2, 0] - sxy[st + e, 0]
                            ey = sxy[st + e2, 1] - sxy[st + e, 1]
                            el = np.sqrt(ex * ex + ey * ey)
                            if el == 0.0:
                                continue
                            d0 = abs((x0 - sxy[st + e, 0]) * ey - (y0 - sxy[st + e, 1]) * ex) / el
                            d1 = abs((x1 - sxy[st + e, 0]) * ey - (y1 - sxy[st + e, 1]) * ex) / el
                            if d0 <= snap and d1 <= snap:
                                on_parent = True
                                break
                        if on_parent:
                            continue
                        for l in range(j + 1, p):
                            ul = index[w, l]
                            if ul == uj or ul < 0:
                                continue
                            gx = a[uj, r, 0] - a[ul, r, 0]
                            gy = a[uj, r, 1] - a[ul, r, 1]
                            norm = np.sqrt(gx * gx + gy * gy)
                            if norm < 1e-300:
                                continue
                            go = o[uj, r] - o[ul, r]
                            if abs(x0 * gx + y0 * gy + go) <= snap * norm and abs(x1 * gx + y1 * gy + go) <= snap * norm:
                                seg = _grow(seg, n_seg + 1)
                                unit = _grow(unit, n_seg + 1)
                                seg[n_seg, 0, 0] = x0
                                seg[n_seg, 0, 1] = y0
                                seg[n_seg, 1, 0] = x1
                                seg[n_seg, 1, 1] = y1
                                unit[n_seg] = w
                                n_seg += 1
                                break
                    # the cell: the first one takes the piece's slot, the others are appended
                    sxy = _grow(sxy, n_sxy + m)
                    for i in range(m):
                        sxy[n_sxy + i, 0] = cur[i, 0]
                        sxy[n_sxy + i, 1] = cur[i, 1]
                    if first:
                        target = q
                        first = False
                    else:
                        sstart = _grow(sstart, n_pieces + 1)
                        scount = _grow(scount, n_pieces + 1)
                        swin = _grow(swin, n_pieces + 1)
                        target = n_pieces
                        for t in range(w):
                            swin[target, t] = swin[q, t]
                        n_pieces += 1
                        if n_out + n_pieces > limit:
                            return (xy[:0], start[:0], count[:0], root[:0], win[:0], seg[:0], unit[:0], True)
                    sstart[target] = n_sxy
                    scount[target] = m
                    swin[target, w] = j
                    n_sxy += m
        total = 0
        for q in range(n_pieces):
            total += scount[q]
        xy = _grow(xy, n_xy + total)
        start = _grow(start, n_out + n_pieces)
        count = _grow(count, n_out + n_pieces)
        root = _grow(root, n_out + n_pieces)
        win = _grow(win, n_out + n_pieces)
        for q in range(n_pieces):
            start[n_out] = n_xy
            count[n_out] = scount[q]
            root[n_out] = r
            for t in range(n_win):
                win[n_out, t] = swin[q, t]
            for i in range(scount[q]):
                xy[n_xy, 0] = sxy[sstart[q] + i, 0]
                xy[n_xy, 1] = sxy[sstart[q] + i, 1]
                n_xy += 1
            n_out += 1
    return xy[:n_xy], start[:n_out], count[:n_out], root[:n_out], win[:n_out], seg[:n_seg], unit[:n_seg], False
