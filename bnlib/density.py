"""Region density near the data: how many linear regions of an exact 2-D partition lie close to it.

:class:`Ellipse` is the data's neighbourhood (fitted to its mean and covariance);
:func:`region_density` counts the regions inside and outside it per unit area, with exact areas
(each region polygon intersected with the ellipse in closed form).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arrangement import polygon_areas
from .nets import check_points
from .partition import Partition

__all__ = ["Ellipse", "region_density"]


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


def _padded(polys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The polygons as a padded (r, max vertices, 2) array and their vertex counts."""
    n = np.array([len(p) for p in polys])
    V = np.zeros((len(polys), n.max(), 2))
    for i, p in enumerate(polys):
        V[i, : len(p)] = p
    return V, n


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
    area = polygon_areas(*_padded(polys))  # the one shoelace (bnlib.arrangement)
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
