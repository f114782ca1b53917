"""Teaching data: seeded 2-D sets, and scikit-learn's bundled digits (no download).

Every generator returns ``(X, y)``: ``X`` a float64 array (n, 2), ``y`` int64 labels.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn import datasets
from sklearn.model_selection import train_test_split

__all__ = ["gaussian_mixture", "moons", "circles", "spirals", "digits"]


def _check_n(n: int, at_least: int = 1) -> int:
    if int(n) != n or n < at_least:
        raise ValueError(f"n must be an integer >= {at_least}; got {n!r}")
    return int(n)


def gaussian_mixture(
    n: int,
    centers: Sequence[Sequence[float]] = ((0.0, 0.0),),
    std=1.0,
    *,
    angle: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Points from Gaussian clusters placed anywhere, each its own class.

    Parameters
    ----------
    n
        Total number of points, shared as evenly as possible between the clusters.
    centers
        One (x, y) centre per cluster.
    std
        A number (isotropic), a pair ``(sx, sy)`` (axis standard deviations, the same for
        every cluster) or one pair per cluster.
    angle
        Rotation (radians) of every cluster's axes, for clusters that are not axis-aligned.
    seed
        Seed of numpy's random generator.

    Examples
    --------
    >>> X, y = gaussian_mixture(200, centers=[(1.5, 1.0)], std=(0.6, 0.2), seed=0)
    >>> X.shape, set(y.tolist())
    ((200, 2), {0})
    >>> bool(abs(X[:, 0].mean() - 1.5) < 0.1)
    True
    """
    n = _check_n(n)
    centers = np.asarray(centers, dtype=np.float64)
    if centers.ndim != 2 or centers.shape[1] != 2 or len(centers) == 0 or not np.all(np.isfinite(centers)):
        raise ValueError(f"centers must be finite (x, y) pairs, shape (k, 2); got shape {centers.shape}")
    k = len(centers)
    std = np.asarray(std, dtype=np.float64)
    std = np.broadcast_to(std if std.ndim != 1 else std[None], (k, 2)) if std.ndim < 2 else std
    if std.shape != (k, 2) or not np.all(np.isfinite(std)) or np.any(std <= 0):
        raise ValueError(f"std must be positive: a number, a pair, or one pair per cluster; got {std.tolist()}")
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    X = centers[y] + (rng.standard_normal((n, 2)) * std[y]) @ rot.T
    return X, y.astype(np.int64)


def moons(n: int, *, noise: float = 0.1, shift=(0.0, 0.0), scale: float = 1.0, seed: int = 0):
    """Two interleaving half circles (scikit-learn's ``make_moons``), moved and scaled.

    Examples
    --------
    >>> X, y = moons(100, shift=(3, 3), seed=1)
    >>> X.shape, int(y.sum())
    ((100, 2), 50)
    """
    X, y = datasets.make_moons(_check_n(n, 2), noise=noise, random_state=seed)
    return X * float(scale) + np.asarray(shift, dtype=np.float64), y.astype(np.int64)


def circles(n: int, *, noise: float = 0.05, factor: float = 0.5, shift=(0.0, 0.0), scale: float = 1.0, seed: int = 0):
    """A small circle inside a large one (scikit-learn's ``make_circles``), moved and scaled.

    Examples
    --------
    >>> X, y = circles(100, seed=2)
    >>> X.shape
    (100, 2)
    """
    X, y = datasets.make_circles(_check_n(n, 2), noise=noise, factor=factor, random_state=seed)
    return X * float(scale) + np.asarray(shift, dtype=np.float64), y.astype(np.int64)


def spirals(n: int, *, turns: float = 1.5, noise: float = 0.05, shift=(0.0, 0.0), scale: float = 1.0, seed: int = 0):
    """Two interleaved spiral arms, one per class, radius up to ``scale``.

    Examples
    --------
    >>> X, y = spirals(300, seed=0)
    >>> X.shape, sorted(set(y.tolist()))
    ((300, 2), [0, 1])
    """
    n = _check_n(n, 2)
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = np.sqrt(rng.uniform(0.02, 1.0, n))  # uniform along the arm's area
    theta = 2 * np.pi * turns * t + np.pi * y
    X = np.stack([t * np.cos(theta), t * np.sin(theta)], axis=1) + noise * rng.standard_normal((n, 2))
    return X * float(scale) + np.asarray(shift, dtype=np.float64), y.astype(np.int64)


def digits(*, test_fraction: float = 0.25, seed: int = 0):
    """scikit-learn's bundled 8x8 digits (1797 images, 64 features, 10 classes; no download).

    Pixels are scaled to [0, 1]. The split is stratified and seeded.

    Returns
    -------
    X_train, X_test, y_train, y_test

    Examples
    --------
    >>> X_train, X_test, y_train, y_test = digits(seed=0)
    >>> X_train.shape[1], len(X_train) + len(X_test)
    (64, 1797)
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1; got {test_fraction}")
    data = datasets.load_digits()
    X = data.data.astype(np.float64) / 16.0
    return train_test_split(X, data.target.astype(np.int64), test_size=test_fraction, random_state=seed, stratify=data.target)
