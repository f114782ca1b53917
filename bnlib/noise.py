"""Mini-batch noise: how BN's batch statistics jitter the partition, and the margin it buys.

Four kinds of things live here:

* **The noise model.** :func:`gaussian_batch_statistics` and :func:`sample_batch_statistics`
  draw the batch mean and the biased batch variance of a unit's pre-activation over many
  batches; :func:`mean_density` / :func:`mean_cdf` (normal, variance ``s^2 / N``) and
  :func:`variance_density` / :func:`variance_cdf` (``N sigma_B^2 / s^2 ~ chi^2_{N-1}``) are
  the exact laws for Gaussian pre-activations; :func:`goodness_of_fit` compares the two;
  :func:`batch_moments` gives the exact finite-``N`` moments for any distribution.
* **From statistics to geometry.** :func:`hyperplane_jitter` measures, per layer and unit, how
  far a BN unit's hyperplane moves from batch to batch and predicts it from the data's spread;
  :func:`decision_jitter` measures the band the decision boundary sweeps in the input plane.
* **The loss under jitter.** :func:`zero_one_under_jitter`, :func:`logistic_under_jitter` and
  :func:`gaussian_hinge`: the expected loss of a point at signed margin ``m`` when the boundary
  moves by a Gaussian offset of standard deviation ``tau`` along its normal.
* **Margins.** :func:`exact_margin` (2-D, from the exact partition's decision boundary) and
  :func:`local_margin` (any dimension, ``|f_y - f_j| / ||grad (f_y - f_j)||``).
* **Noise without BN.** :class:`BatchNoise` applies to each unit the random offset and scale
  that BN's batch statistics would cause, drawn from the law above, at every training step, and
  nothing at evaluation (so :mod:`bnlib.nets` reads it as the identity).

Chapter 4's margin experiment, which trains networks with these pieces, is
:mod:`bnlib.experiments.ch4_noise`.
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
from scipy import stats
from torch import nn

from ._validation import check_int, check_number
from .geometry import batch_statistics
from .nets import MLP, check_points
from .partition import distance_to_segments, partition

__all__ = [
    "gaussian_batch_statistics",
    "sample_batch_statistics",
    "mean_density",
    "mean_cdf",
    "variance_density",
    "variance_cdf",
    "goodness_of_fit",
    "batch_moments",
    "zero_one_under_jitter",
    "gaussian_hinge",
    "logistic_under_jitter",
    "hyperplane_jitter",
    "decision_jitter",
    "exact_margin",
    "local_margin",
    "BatchNoise",
]

# ----------------------------------------------------------------------------------------
# the noise model


def gaussian_batch_statistics(
    batch_size: int, n_batches: int, *, mean: float = 0.0, std: float = 1.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Batch means and biased batch variances of ``n_batches`` Gaussian batches of ``batch_size``.

    Returns
    -------
    means, variances : ndarray (n_batches,)

    Examples
    --------
    >>> m, v = gaussian_batch_statistics(16, 20000, std=2.0, seed=0)
    >>> round(float(m.var() * 16 / 4), 1), round(float(v.mean() / 4 * 16 / 15), 2)
    (1.0, 1.0)
    """
    N = check_int(batch_size, "batch_size", "gaussian_batch_statistics", at_least=2)
    n = check_int(n_batches, "n_batches", "gaussian_batch_statistics", at_least=1)
    std = check_number(std, "std", "gaussian_batch_statistics", low=0, low_open=True)
    Z = np.random.default_rng(seed).normal(mean, std, size=(n, N))
    return Z.mean(1), Z.var(1)


def sample_batch_statistics(
    values, batch_size: int, n_batches: int, *, seed: int = 0, replace: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Batch means and biased variances of batches drawn from ``values`` (one column per unit).

    Parameters
    ----------
    values
        (n,) or (n, k): the pre-activations of ``k`` units over a population of ``n`` samples.
    batch_size, n_batches
    replace
        True: every batch holds ``batch_size`` independent draws (the i.i.d. setting of the
        theory). False: a batch is ``batch_size`` distinct samples, as in a training epoch.

    Returns
    -------
    means, variances : ndarray (n_batches, k), or (n_batches,) for 1-D ``values``

    Examples
    --------
    >>> m, v = sample_batch_statistics(np.arange(10.0), 10, 3, replace=False)
    >>> m.tolist(), v.round(2).tolist()
    ([4.5, 4.5, 4.5], [8.25, 8.25, 8.25])
    """
    V = np.asarray(values, dtype=np.float64)
    flat = V.ndim == 1
    V = V[:, None] if flat else V
    if V.ndim != 2 or len(V) < 2 or not np.all(np.isfinite(V)):
        raise ValueError(f"values must be a finite (n,) or (n, k) array with n >= 2; got shape {np.shape(values)}")
    N = check_int(batch_size, "batch_size", "sample_batch_statistics", at_least=2)
    n = check_int(n_batches, "n_batches", "sample_batch_statistics", at_least=1)
    if not replace and N > len(V):
        raise ValueError(f"batch_size {N} is larger than the population ({len(V)}) without replacement")
    rng = np.random.default_rng(seed)
    if replace:
        idx = rng.integers(0, len(V), size=(n, N))
    else:
        idx = np.argsort(rng.random((n, len(V))), axis=1)[:, :N]
    B = V[idx]  # (n, N, k)
    means, variances = B.mean(1), B.var(1)
    return (means[:, 0], variances[:, 0]) if flat else (means, variances)


def mean_density(x, *, mean: float, std: float, batch_size: int) -> np.ndarray:
    """Density of the batch mean of ``batch_size`` Gaussian samples: normal(mean, std^2 / N)."""
    N = check_int(batch_size, "batch_size", "mean_density", at_least=1)
    return stats.norm.pdf(np.asarray(x, dtype=np.float64), mean, check_number(std, "std", "mean_density", low=0, low_open=True) / np.sqrt(N))


def mean_cdf(x, *, mean: float, std: float, batch_size: int) -> np.ndarray:
    """Distribution function of the batch mean (see :func:`mean_density`)."""
    N = check_int(batch_size, "batch_size", "mean_cdf", at_least=1)
    return stats.norm.cdf(np.asarray(x, dtype=np.float64), mean, check_number(std, "std", "mean_cdf", low=0, low_open=True) / np.sqrt(N))


def variance_density(v, *, std: float, batch_size: int) -> np.ndarray:
    """Density of the biased batch variance: ``N v / s^2`` is chi-square with ``N - 1`` dof.

    Examples
    --------
    >>> from scipy import integrate
    >>> round(integrate.quad(lambda v: v * variance_density(v, std=1.0, batch_size=5), 0, 50)[0], 6)
    0.8
    """
    N = check_int(batch_size, "batch_size", "variance_density", at_least=2)
    s2 = check_number(std, "std", "variance_density", low=0, low_open=True) ** 2
    return stats.chi2.pdf(N * np.asarray(v, dtype=np.float64) / s2, N - 1) * N / s2


def variance_cdf(v, *, std: float, batch_size: int) -> np.ndarray:
    """Distribution function of the biased batch variance (see :func:`variance_density`)."""
    N = check_int(batch_size, "batch_size", "variance_cdf", at_least=2)
    s2 = check_number(std, "std", "variance_cdf", low=0, low_open=True) ** 2
    return stats.chi2.cdf(N * np.asarray(v, dtype=np.float64) / s2, N - 1)


def goodness_of_fit(means, variances, *, mean: float, std: float, batch_size: int) -> dict[str, float]:
    """Kolmogorov-Smirnov distance and p-value of simulated statistics against the exact laws.

    Returns
    -------
    dict
        ``ks_mean``, ``p_mean``, ``ks_variance``, ``p_variance``, and ``correlation`` (the sample
        correlation of the means and variances, 0 in theory for Gaussian data).
    """
    means = np.asarray(means, dtype=np.float64).ravel()
    variances = np.asarray(variances, dtype=np.float64).ravel()
    if len(means) != len(variances) or len(means) < 3:
        raise ValueError(f"need as many means as variances, at least 3; got {len(means)} and {len(variances)}")
    km = stats.kstest(means, lambda x: mean_cdf(x, mean=mean, std=std, batch_size=batch_size))
    kv = stats.kstest(variances, lambda v: variance_cdf(v, std=std, batch_size=batch_size))
    return {
        "ks_mean": float(km.statistic),
        "p_mean": float(km.pvalue),
        "ks_variance": float(kv.statistic),
        "p_variance": float(kv.pvalue),
        "correlation": float(np.corrcoef(means, variances)[0, 1]),
    }


def batch_moments(batch_size: int, *, std: float = 1.0, skewness: float = 0.0, kurtosis: float = 3.0) -> dict[str, float]:
    """Exact moments of the batch mean and the biased batch variance of ``N`` i.i.d. draws.

    For draws with variance ``s^2``, skewness ``E(u - m)^3 / s^3`` and kurtosis
    ``E(u - m)^4 / s^4`` (finite), with ``N >= 2``:

    * ``var_mean`` = ``s^2 / N``;
    * ``mean_variance`` = ``(N - 1) / N * s^2``;
    * ``var_variance`` = ``((N - 1) / N)^2 * s^4 * (kurtosis - (N - 3) / (N - 1)) / N``;
    * ``covariance`` (of the batch mean and the biased batch variance) =
      ``(N - 1) / N^2 * skewness * s^3``.

    For large ``N`` the last two are ``(kurtosis - 1) s^4 / N`` and ``skewness s^3 / N``. Chapter 4
    proves the formulas (``prop-ch4-law``).

    Parameters
    ----------
    batch_size
        ``N``, at least 2.
    std, skewness, kurtosis
        ``s`` and the standardised third and fourth central moments of one draw (Gaussian: 0, 3).

    Returns
    -------
    dict of float
        ``var_mean``, ``mean_variance``, ``var_variance``, ``covariance``.

    Examples
    --------
    >>> m = batch_moments(4)  # Gaussian: Var sigma_B^2 = 2 (N - 1) s^4 / N^2
    >>> m["var_variance"], 2 * 3 / 16
    (0.375, 0.375)
    """
    N = check_int(batch_size, "batch_size", "batch_moments", at_least=2)
    s = check_number(std, "std", "batch_moments", low=0, low_open=True)
    skew = check_number(skewness, "skewness", "batch_moments")
    kappa = check_number(kurtosis, "kurtosis", "batch_moments", low=1)
    return {
        "var_mean": s**2 / N,
        "mean_variance": (N - 1) / N * s**2,
        "var_variance": ((N - 1) / N) ** 2 * s**4 * (kappa - (N - 3) / (N - 1)) / N,
        "covariance": (N - 1) / N**2 * skew * s**3,
    }


# ----------------------------------------------------------------------------------------
# the loss of a point when the boundary jitters


def _margin_and_tau(margin, tau, func: str) -> tuple[np.ndarray, float]:
    m = np.asarray(margin, dtype=np.float64)
    if not np.all(np.isfinite(m)):
        raise ValueError(f"{func}: margin must be finite; got {margin!r}")
    return m, check_number(tau, "tau", func, low=0, low_open=True)


def zero_one_under_jitter(margin, tau: float) -> np.ndarray:
    """Expected 0-1 loss ``P(m + delta < 0) = Phi(-m / tau)`` for ``delta ~ N(0, tau^2)``.

    ``margin`` is the point's signed distance to the boundary (positive: correctly classified);
    the boundary moves by ``delta`` along its normal.

    Parameters
    ----------
    margin
        Signed margins (any shape), in the units of ``tau``.
    tau
        The standard deviation of the boundary's shift, > 0.

    Returns
    -------
    ndarray
        The expected 0-1 loss of each margin.

    Examples
    --------
    >>> zero_one_under_jitter([0.0, 1.0, 2.0], 1.0).round(4).tolist()
    [0.5, 0.1587, 0.0228]
    """
    m, tau = _margin_and_tau(margin, tau, "zero_one_under_jitter")
    return stats.norm.cdf(-m / tau)


def gaussian_hinge(margin, tau: float) -> np.ndarray:
    """``E max(0, -(m + tau Z))`` for ``Z ~ N(0, 1)``: ``tau phi(m / tau) - m Phi(-m / tau)``.

    The hinge loss of a jittered margin; with a logit slope ``lambda``, ``lambda`` times it
    bounds the smoothed logistic loss from below, and plus ``log 2`` from above.

    Parameters
    ----------
    margin
        Signed margins (any shape).
    tau
        The standard deviation of the boundary's shift, > 0.

    Returns
    -------
    ndarray

    Examples
    --------
    >>> gaussian_hinge([0.0], 1.0).round(4).tolist()  # 1 / sqrt(2 pi)
    [0.3989]
    """
    m, tau = _margin_and_tau(margin, tau, "gaussian_hinge")
    c = m / tau
    return tau * stats.norm.pdf(c) - m * stats.norm.cdf(-c)


def logistic_under_jitter(margin, tau: float, *, slope: float = 1.0) -> np.ndarray:
    """Expected logistic loss ``E log(1 + exp(-slope (m + delta)))``, ``delta ~ N(0, tau^2)``.

    The logit of a point at signed distance ``m`` from the boundary is ``slope * m`` (``slope``:
    the norm of the logit's gradient); the result is the softplus smoothed by a Gaussian,
    computed by adaptive quadrature (:func:`scipy.integrate.quad`, the kink of the integrand
    given as a break point).

    Parameters
    ----------
    margin
        Signed margins (any shape).
    tau
        The standard deviation of the boundary's shift, > 0.
    slope
        The logit's slope ``lambda`` > 0: the logit of a point at margin ``m`` is ``lambda m``.

    Returns
    -------
    ndarray
        The expected logistic loss of each margin.

    Examples
    --------
    >>> bool(logistic_under_jitter([0.0], 1.0)[0] > np.log(2))  # Jensen: noise adds loss
    True
    """
    from scipy import integrate

    m, tau = _margin_and_tau(margin, tau, "logistic_under_jitter")
    g = check_number(slope, "slope", "logistic_under_jitter", low=0, low_open=True)

    def one(mi: float) -> float:
        def integrand(z: float) -> float:
            t = -g * (mi + tau * z)
            return (max(t, 0.0) + np.log1p(np.exp(-abs(t)))) * stats.norm.pdf(z)

        kink = -mi / tau
        return integrate.quad(integrand, -40.0, 40.0, points=[kink] if abs(kink) < 40 else None,
                              limit=200, epsabs=1e-12, epsrel=1e-10)[0]

    return np.vectorize(one, otypes=[np.float64])(m)


# ----------------------------------------------------------------------------------------
# from statistics to geometry


def hyperplane_jitter(model: nn.Module, X, batch_size: int, *, n_batches: int = 200, seed: int = 0) -> dict:
    """How far each BN unit's hyperplane moves between mini-batches, measured and predicted.

    Layer ``l``'s inputs are computed from ``X`` with every BN using the statistics of all of
    ``X`` (the population); then, for ``n_batches`` batches of ``batch_size`` distinct rows of
    ``X``, each unit's hyperplane ``<w, z> = mu_B - (beta / gamma) sigma_B`` is recomputed with
    the batch's statistics, and its displacement, in distance units of the layer's input space,
    is recorded. The prediction is the delta-method standard deviation

    ``rho * sqrt(eta / N * (1 + nu^2 (kappa - 1) / 4 - nu skew))``,

    with ``rho`` the data's RMS distance to the unit's ``beta = 0`` hyperplane, ``nu = beta/gamma``,
    ``skew``/``kappa`` the skewness/kurtosis of the unit's pre-activation over ``X`` and
    ``eta = (n - N) / (n - 1)`` the finite-population correction of sampling without replacement
    (the book's notation, chapter 4). For ``nu = 0`` it is exact: ``rho sqrt(eta / N)``.

    Returns
    -------
    dict of numpy arrays, one row per (layer, unit)
        ``layer``, ``unit``, ``rho``, ``ratio`` (beta/gamma), ``measured``, ``predicted``.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) < 3 or not np.all(np.isfinite(X)):
        raise ValueError(f"X must be a finite (n, d) array with n >= 3; got shape {X.shape}")
    N = check_int(batch_size, "batch_size", "hyperplane_jitter", at_least=2)
    if N > len(X):
        raise ValueError(f"batch_size {N} exceeds the number of samples {len(X)}")
    nb = check_int(n_batches, "n_batches", "hyperplane_jitter", at_least=2)
    rng = np.random.default_rng(seed)
    idx = np.argsort(rng.random((nb, len(X))), axis=1)[:, :N]
    f = (len(X) - N) / (len(X) - 1)
    cols: dict[str, list] = {k: [] for k in ("layer", "unit", "rho", "ratio", "measured", "predicted")}
    for s in batch_statistics(model, X):
        norm = np.linalg.norm(s.weight, axis=1)
        u = s.inputs @ s.weight.T  # (n, k)
        r = s.beta / s.gamma
        full = s.mu - r * np.sqrt(s.var + s.eps)
        uB = u[idx]  # (nb, N, k)
        shift = (uB.mean(1) - r * np.sqrt(uB.var(1) + s.eps) - full) / norm
        c = u - s.mu
        skew = (c**3).mean(0) / s.var**1.5
        kappa = (c**4).mean(0) / s.var**2
        rho = np.sqrt(s.var) / norm
        pred = rho * np.sqrt(f / N * np.maximum(1 + r**2 * (kappa - 1) / 4 - r * skew, 0))
        for k in range(len(norm)):
            cols["layer"].append(s.layer)
            cols["unit"].append(k)
            cols["rho"].append(rho[k])
            cols["ratio"].append(r[k])
            cols["measured"].append(float(np.sqrt(np.mean(shift[:, k] ** 2))))
            cols["predicted"].append(float(pred[k]))
    return {k: np.asarray(v) for k, v in cols.items()}


def _box_around(X, pad: float = 0.5) -> tuple[float, float, float, float]:
    lo, hi = X.min(0), X.max(0)
    w = pad * (hi - lo).max()
    return (lo[0] - w, hi[0] + w, lo[1] - w, hi[1] + w)


def decision_jitter(
    model: nn.Module, X, batch_size: int, *, n_batches: int = 30, seed: int = 0, box=None
) -> dict:
    """The band the decision boundary of a 2-D BN classifier sweeps as the batch changes.

    The reference boundary uses the statistics of all of ``X``. Probes are the points of it
    nearest to the training points (the part of the boundary that sets the margins). For each
    of ``n_batches`` batches of ``batch_size`` distinct rows of ``X``, the boundary is recomputed
    exactly with that batch's statistics (``bnlib.partition(..., batch=B)``) and the distance
    from every probe to it is recorded.

    Returns
    -------
    dict
        ``distance`` (n_batches, n_probes), ``median`` (per batch), ``width`` (the median of all
        distances: half the typical width of the band), ``segments`` (list of each batch's
        boundary segments), ``reference`` (the reference segments).
    """
    X = check_points(X, 2, "X")
    N = check_int(batch_size, "batch_size", "decision_jitter", at_least=2)
    if N > len(X):
        raise ValueError(f"batch_size {N} exceeds the number of samples {len(X)}")
    nb = check_int(n_batches, "n_batches", "decision_jitter", at_least=1)
    box = _box_around(X) if box is None else box
    ref = partition(model, box, batch=X).decision_boundary()
    if len(ref) == 0:
        raise ValueError("the model has no decision boundary in the box: there is nothing to jitter")
    _, probes = distance_to_segments(X, ref, return_foot=True)
    probes = np.unique(probes.round(9), axis=0)
    rng = np.random.default_rng(seed)
    dist, segs = [], []
    for _ in range(nb):
        B = X[rng.choice(len(X), N, replace=False)]
        s = partition(model, box, batch=B).decision_boundary()
        segs.append(s)
        dist.append(distance_to_segments(probes, s))
    dist = np.asarray(dist)
    return {"distance": dist, "median": np.median(dist, axis=1), "width": float(np.median(dist)),
            "segments": segs, "reference": ref}


# ----------------------------------------------------------------------------------------
# margins


def _labels(y, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"y must hold one label per point, shape ({n},); got {y.shape}")
    return y.astype(np.int64)


def exact_margin(model: nn.Module, X, y, *, box=None) -> np.ndarray:
    """Signed exact distance from each 2-D point to the decision boundary (eval mode).

    Positive where the point is classified as its label ``y``, negative otherwise; ``inf`` if no
    boundary crosses the box (default: the data's bounding box, padded by half its size).

    Examples
    --------
    >>> net = MLP([2, 1], n_classes=1, seed=0)
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.tensor([[1.0, 0.0]])); _ = net[0].bias.zero_()
    ...     _ = net[2].weight.fill_(1.0); _ = net[2].bias.fill_(0.1)
    >>> exact_margin(net, [[2.0, 0.0], [-0.5, 1.0]], [1, 0]).tolist()   # boundary: 0.1 x = -0.1
    [3.0, -0.5]
    """
    X = check_points(X, 2, "X")
    y = _labels(y, len(X))
    part = partition(model, _box_around(X) if box is None else box)  # running statistics: eval mode
    d = distance_to_segments(X, part.decision_boundary())
    return np.where(part.predict(X) == y, d, -d)


def local_margin(model: nn.Module, X, y) -> np.ndarray:
    """Signed local-linear distance to the decision boundary between the label and its rival.

    For a point ``x`` with label ``y`` and runner-up class ``j`` (the highest other output),
    ``(f_y(x) - f_j(x)) / ||grad (f_y - f_j)(x)||``: the exact distance to where ``f_y = f_j``
    on the piece of the network that holds ``x``, extended linearly. Negative when ``x`` is
    misclassified. For one output, ``f`` read as the logit of class 1. Any input dimension.
    """
    net = copy.deepcopy(model).eval().double()  # dropout and BatchNoise are the identity in eval
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or not np.all(np.isfinite(X)):
        raise ValueError(f"X must be a finite (n, d) array; got shape {X.shape}")
    y = _labels(y, len(X))
    x = torch.tensor(X, requires_grad=True)
    out = net(x)
    if out.shape[1] == 1:
        gap = torch.where(torch.as_tensor(y) == 1, out[:, 0], -out[:, 0])
    else:
        yt = torch.as_tensor(y)
        own = out.gather(1, yt[:, None])[:, 0]
        others = out.clone()
        others[torch.arange(len(X)), yt] = -torch.inf
        gap = own - others.max(1).values
    (grad,) = torch.autograd.grad(gap.sum(), x)  # rows are independent: one backward pass
    norm = grad.norm(dim=1).detach().numpy()
    g = gap.detach().numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norm > 0, g / np.where(norm > 0, norm, 1.0), np.sign(g) * np.inf)


# ----------------------------------------------------------------------------------------
# noise without BN


class BatchNoise(nn.Module):
    """BN's mini-batch noise without BN: a random shift and scale per unit at every training step.

    BN with a batch of ``N`` computes ``(u - mu_B) / sigma_B``; written with the population's
    mean ``m`` and spread ``s`` of the unit's pre-activation ``u``, that is
    ``(u_hat - mu_hat) / sigma_hat`` with ``u_hat = (u - m) / s``, ``mu_hat = (mu_B - m) / s`` and
    ``sigma_hat = sigma_B / s`` (chapter 4's notation). For Gaussian ``u``,
    ``mu_hat ~ normal(0, 1 / N)`` and ``N sigma_hat^2 ~ chi^2_{N-1}``, independent. This layer does
    the same to an un-normalised pre-activation ``h``: in training it returns
    ``m + (h - m - mu_hat s) / sigma_hat`` with fresh ``mu_hat, sigma_hat`` per unit and per step (one draw for the
    whole batch, as BN's statistics are shared by the batch), ``m`` and ``s`` tracked as running
    averages like BN's running statistics; in eval mode it is the identity.

    Parameters
    ----------
    num_features
        Units of the layer.
    batch_size
        The ``N`` whose batch-statistics noise is imitated; ``None`` for no noise (identity).
    momentum
        Of the running mean and spread (as ``BatchNorm1d``'s).
    seed
        Seed of the layer's own ``torch.Generator``.

    Examples
    --------
    >>> layer = BatchNoise(3, batch_size=None)
    >>> h = torch.randn(5, 3)
    >>> bool(torch.equal(layer(h), h))
    True
    """

    identity_in_eval = True  # bnlib.nets reads the layer as the identity (what it is in eval mode)

    def __init__(self, num_features: int, batch_size: int | None, *, momentum: float = 0.1, seed: int = 0):
        super().__init__()
        self.num_features = check_int(num_features, "num_features", "BatchNoise", at_least=1)
        self.batch_size = None if batch_size is None else check_int(batch_size, "batch_size", "BatchNoise", at_least=2)
        if not 0 < momentum <= 1:
            raise ValueError(f"momentum must be in (0, 1]; got {momentum}")
        self.momentum = float(momentum)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.register_buffer("running_mean", torch.zeros(self.num_features))
        self.register_buffer("running_std", torch.ones(self.num_features))
        self.register_buffer("started", torch.zeros((), dtype=torch.bool))

    def extra_repr(self) -> str:
        return f"{self.num_features}, batch_size={self.batch_size}"

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if h.ndim != 2 or h.shape[1] != self.num_features:
            raise ValueError(f"BatchNoise expects (n, {self.num_features}) inputs; got {tuple(h.shape)}")
        if not self.training or self.batch_size is None:
            return h
        with torch.no_grad():
            dtype = self.running_mean.dtype
            mean, std = h.mean(0).to(dtype), h.std(0, unbiased=False).to(dtype)
            if len(h) < 2:
                std = self.running_std
            if not bool(self.started):
                self.running_mean.copy_(mean)
                self.running_std.copy_(std)
                self.started.fill_(True)
            else:
                self.running_mean.lerp_(mean, self.momentum)
                self.running_std.lerp_(std, self.momentum)
            N = self.batch_size
            a = torch.randn(self.num_features, generator=self.generator, dtype=torch.float64) / N**0.5
            # torch's Chi2 sampler takes no generator: sum squared normals from our own
            b = (_chi2(N - 1, self.num_features, self.generator) / N).sqrt()
            m = self.running_mean.to(h.dtype)
            shift = m + a.to(h.dtype) * self.running_std.to(h.dtype)
        return m + (h - shift) / b.to(h.dtype)


def _chi2(dof: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Chi-square variates with ``dof`` degrees of freedom: sums of squared standard normals."""
    z = torch.randn(size, dof, generator=generator, dtype=torch.float64)
    return (z * z).sum(1)
