"""bnlib.noise against oracles: simulation against the exact laws, geometry against the partition,
the noise layer against a plain layer and against the law it claims to draw from."""

import copy

import numpy as np
import pytest
import torch
from scipy import integrate

from bnlib import MLP, data, partition
from bnlib import noise as nz

# ----------------------------------------------------------------------------------------
# the noise model: simulation vs formula (fixed seeds; tolerances stated per test)


@pytest.mark.parametrize("N", [2, 5, 32])
def test_gaussian_batch_statistics_match_the_exact_laws(N):
    m, v = nz.gaussian_batch_statistics(N, 20000, mean=1.5, std=2.0, seed=N)
    # moments within 4 % (20000 batches: the standard error is about 1 %)
    assert m.mean() == pytest.approx(1.5, abs=4 * 2 / np.sqrt(N * 20000))
    assert m.var() == pytest.approx(4.0 / N, rel=0.04)
    assert v.mean() == pytest.approx(4.0 * (N - 1) / N, rel=0.04)
    fit = nz.goodness_of_fit(m, v, mean=1.5, std=2.0, batch_size=N)
    # KS distance of 20000 draws from the true law is below 0.015 with overwhelming probability
    assert fit["ks_mean"] < 0.015 and fit["ks_variance"] < 0.015
    assert abs(fit["correlation"]) < 0.03  # mean and variance independent (Gaussian data)


def test_goodness_of_fit_rejects_the_wrong_law():
    m, v = nz.gaussian_batch_statistics(8, 5000, std=1.0, seed=0)
    wrong = nz.goodness_of_fit(m, v, mean=0.0, std=1.0, batch_size=4)  # claims N = 4
    assert wrong["p_mean"] < 1e-6 and wrong["p_variance"] < 1e-6


def test_densities_integrate_to_one_and_have_the_right_mean():
    for N in (2, 7, 50):
        total = integrate.quad(lambda v: nz.variance_density(v, std=3.0, batch_size=N), 0, np.inf)[0]
        mean = integrate.quad(lambda v: v * nz.variance_density(v, std=3.0, batch_size=N), 0, np.inf)[0]
        assert total == pytest.approx(1, abs=1e-7)
        assert mean == pytest.approx(9.0 * (N - 1) / N, rel=1e-6)
        area = integrate.quad(lambda x: nz.mean_density(x, mean=1.0, std=3.0, batch_size=N), -np.inf, np.inf)[0]
        assert area == pytest.approx(1, abs=1e-7)


def test_sampling_without_replacement_has_the_finite_population_variance():
    pop = np.random.default_rng(0).normal(size=60)
    N = 15
    m, _ = nz.sample_batch_statistics(pop, N, 40000, seed=1, replace=False)
    exact = pop.var() / N * (60 - N) / (60 - 1)  # the textbook finite-population correction
    assert m.var() == pytest.approx(exact, rel=0.04)
    m2, _ = nz.sample_batch_statistics(pop, N, 40000, seed=1, replace=True)
    assert m2.var() == pytest.approx(pop.var() / N, rel=0.04)


def test_sample_batch_statistics_columns_are_units():
    V = np.random.default_rng(0).normal(size=(100, 3)) * [1.0, 2.0, 3.0]
    m, v = nz.sample_batch_statistics(V, 10, 7, seed=0)
    assert m.shape == v.shape == (7, 3)


# ----------------------------------------------------------------------------------------
# geometry


def test_hyperplane_jitter_matches_its_prediction_at_init():
    X, _ = data.gaussian_mixture(300, centers=[(1.0, -1.0)], std=(1.0, 0.3), angle=0.4, seed=0)
    net = MLP([2, 6, 6], batchnorm=True, seed=2)  # beta = 0: the prediction is exact in law
    t = nz.hyperplane_jitter(net, X, 16, n_batches=2000, seed=0)
    assert set(t["layer"].tolist()) == {1, 2}
    # 2000 batches: the RMS estimates are within about 3 %; allow 8 %
    assert np.allclose(t["measured"], t["predicted"], rtol=0.08)


def test_hyperplane_jitter_with_beta_follows_the_delta_method():
    X, _ = data.gaussian_mixture(400, centers=[(0.0, 0.0)], std=(1.0, 1.0), seed=1)
    net = MLP([2, 5], batchnorm=True, seed=0)
    with torch.no_grad():
        net[1].bias.copy_(torch.tensor([0.5, -1.0, 1.5, 0.0, 2.0]))
    t = nz.hyperplane_jitter(net, X, 32, n_batches=3000, seed=1)
    assert np.allclose(t["measured"], t["predicted"], rtol=0.12)  # first-order formula


def test_decision_jitter_vanishes_with_the_whole_data_as_batch():
    X, y = data.moons(40, seed=0)
    net = MLP([2, 8, 8], batchnorm=True, n_classes=1, seed=0)
    full = nz.decision_jitter(net, X, 40, n_batches=2, seed=0)
    assert full["width"] < 1e-9
    small = nz.decision_jitter(net, X, 4, n_batches=5, seed=0)
    assert small["distance"].shape[0] == 5 and small["width"] > 1e-3


# ----------------------------------------------------------------------------------------
# margins


def _one_unit_classifier(seed, c=0.05):
    """A net whose decision boundary is one line: output leaky(h) + c is 0 where h = -c / slope."""
    net = MLP([2, 1], n_classes=1, seed=seed)
    with torch.no_grad():
        net[2].weight.fill_(1.0)
        net[2].bias.fill_(c)
    twin = MLP([2, 1], seed=seed)  # its hidden line is that decision boundary
    with torch.no_grad():
        twin[0].bias += c / net[1].negative_slope
    return net, twin


def test_exact_margin_is_partition_distance_to_boundary_for_a_one_unit_net():
    for seed in range(5):
        net, twin = _one_unit_classifier(seed)
        X = np.random.default_rng(seed).normal(size=(200, 2))
        y = (np.random.default_rng(seed + 1).random(200) > 0.5).astype(int)
        m = nz.exact_margin(net, X, y, box=(-6, 6, -6, 6))
        exact = partition(twin, (-6, 6, -6, 6)).distance_to_boundary(X)
        assert np.allclose(np.abs(m), exact, atol=1e-6)
        local = nz.local_margin(net, X, y)  # affine on each side of the unit's own line
        near = np.abs(m) < partition(MLP([2, 1], seed=seed), (-6, 6, -6, 6)).distance_to_boundary(X)
        assert np.allclose(local[near], m[near], atol=1e-5)


def test_exact_margin_against_a_brute_force_grid():
    X, y = data.moons(30, seed=3)
    net = MLP([2, 8, 8], n_classes=1, seed=4)
    box = (-2.0, 3.0, -1.5, 2.0)
    m = nz.exact_margin(net, X, y, box=box)
    h = 0.01
    gx, gy = np.meshgrid(np.arange(box[0], box[1], h), np.arange(box[2], box[3], h))
    G = np.column_stack([gx.ravel(), gy.ravel()])
    with torch.no_grad():
        cls = (net(torch.as_tensor(G, dtype=torch.float32))[:, 0] > 0).numpy()
        own = (net(torch.as_tensor(X, dtype=torch.float32))[:, 0] > 0).numpy()
    assert np.array_equal(own == y.astype(bool), m > 0)
    for x, c, d in zip(X, own, np.abs(m)):
        other = G[cls != c]
        nearest = np.linalg.norm(other - x, axis=1).min()
        # the boundary is at distance d: other-class grid points lie beyond it, one within a cell
        assert d - 1e-6 <= nearest <= d + h * np.sqrt(2) + 1e-3


def test_local_margin_multiclass_sign_and_value():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 5)), rng.integers(0, 3, size=40)
    net = MLP([5, 7], n_classes=3, seed=0)
    m = nz.local_margin(net, X, y)
    with torch.no_grad():
        pred = net.eval()(torch.as_tensor(X, dtype=torch.float32)).argmax(1).numpy()
    assert np.array_equal(m > 0, pred == y)
    # oracle: the runner-up class and the gradient, from torch autograd one point at a time
    net64 = copy.deepcopy(net).eval().double()
    for i in range(5):
        x = torch.tensor(X[i : i + 1], requires_grad=True)
        out = net64(x)[0]
        rival = [c for c in range(3) if c != y[i]]
        j = rival[int(out[rival].argmax())]
        gap = out[int(y[i])] - out[j]
        (g,) = torch.autograd.grad(gap, x)
        assert m[i] == pytest.approx(gap.item() / g.norm().item(), rel=1e-9)


# ----------------------------------------------------------------------------------------
# the noise layer


def test_noise_layer_draws_bn_shift_and_scale():
    N, k, calls = 8, 4, 3000
    layer = nz.BatchNoise(k, N, seed=0).train()
    h = torch.as_tensor(np.random.default_rng(0).normal(size=(64, k)) * 2 + 1, dtype=torch.float64)
    m, s = h.mean(0), h.std(0, unbiased=False)
    A, Bs = [], []
    for _ in range(calls):
        out = layer(h)  # running statistics stay at (m, s): the same batch every call
        b = s / out.std(0, unbiased=False)
        A.append(((m - out.mean(0)) * b / s).numpy())
        Bs.append(b.numpy())
    A, Bs = np.concatenate(A), np.concatenate(Bs)
    # a ~ normal(0, 1/N) and N b^2 ~ chi2(N-1): 12000 draws, KS distance below 0.02
    fit = nz.goodness_of_fit(A, Bs**2, mean=0.0, std=1.0, batch_size=N)
    assert fit["ks_mean"] < 0.02 and fit["ks_variance"] < 0.02


def test_noise_layer_matches_bn_training_output_in_law():
    """BN on a batch, written in population terms, is (u_hat - a)/b: same law as the layer's."""
    pop = np.random.default_rng(1).normal(size=(20000, 1))
    N = 6
    mB, vB = nz.sample_batch_statistics(pop, N, 20000, seed=2)
    a, b2 = (mB - pop.mean()) / pop.std(), vB / pop.var()
    fit = nz.goodness_of_fit(a, b2, mean=0.0, std=1.0, batch_size=N)
    assert fit["ks_mean"] < 0.02 and fit["ks_variance"] < 0.02


# ----------------------------------------------------------------------------------------
# the experiment, seeds, validation


@pytest.mark.parametrize(
    "call",
    [
        lambda: nz.gaussian_batch_statistics(1, 10),
        lambda: nz.gaussian_batch_statistics(4, 10, std=0.0),
        lambda: nz.sample_batch_statistics([1.0], 2, 3),
        lambda: nz.sample_batch_statistics([1.0, np.nan, 2.0], 2, 3),
        lambda: nz.sample_batch_statistics(np.arange(5.0), 6, 3, replace=False),
        lambda: nz.variance_density(1.0, std=1.0, batch_size=1),
        lambda: nz.goodness_of_fit([1.0], [1.0], mean=0, std=1, batch_size=2),
        lambda: nz.hyperplane_jitter(MLP([2, 3], batchnorm=True), np.zeros((10, 2)), 20),
        lambda: nz.hyperplane_jitter(MLP([2, 3], batchnorm=False), np.random.default_rng(0).normal(size=(10, 2)), 4),
        lambda: nz.decision_jitter(MLP([2, 3], batchnorm=True, n_classes=1), np.zeros((10, 3)), 4),
        lambda: nz.exact_margin(MLP([2, 3], n_classes=1), np.zeros((4, 2)), [0, 1]),
        lambda: nz.local_margin(MLP([2, 3], n_classes=1), np.full((2, 2), np.inf), [0, 1]),
        lambda: nz.BatchNoise(3, 1),
        lambda: nz.BatchNoise(3, 4)(torch.zeros(5, 2)),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()


# ----------------------------------------------------------------------------------------
# exact finite-N moments and the loss under jitter, against simulation


@pytest.mark.parametrize("N", [2, 4, 16])
def test_batch_moments_match_simulated_skewed_batches(N):
    # exponential draws: s = 1, skewness 2, kurtosis 9 (far from Gaussian, so every term counts)
    U = np.random.default_rng(N).exponential(size=(200_000, N))
    mu, var = U.mean(1), U.var(1)
    exact = nz.batch_moments(N, std=1.0, skewness=2.0, kurtosis=9.0)
    assert mu.var() == pytest.approx(exact["var_mean"], rel=0.02)
    assert var.mean() == pytest.approx(exact["mean_variance"], rel=0.02)
    assert var.var() == pytest.approx(exact["var_variance"], rel=0.06)  # heavy tails: wider
    assert np.cov(mu, var)[0, 1] == pytest.approx(exact["covariance"], rel=0.05)


def test_zero_one_and_logistic_under_jitter_match_simulation():
    tau, slope = 0.3, 4.0
    margins = np.array([-0.2, 0.0, 0.15, 0.3, 0.6, 1.0])
    delta = np.random.default_rng(0).normal(0, tau, size=400_000)
    hits = (margins[:, None] + delta < 0).mean(1)
    se = np.sqrt(hits * (1 - hits) / len(delta)) + 1e-6
    assert np.all(np.abs(hits - nz.zero_one_under_jitter(margins, tau)) < 5 * se)
    loss = np.logaddexp(0, -slope * (margins[:, None] + delta))
    exact = nz.logistic_under_jitter(margins, tau, slope=slope)
    assert np.all(np.abs(loss.mean(1) - exact) < 5 * loss.std(1) / np.sqrt(len(delta)))
    hinge = slope * nz.gaussian_hinge(margins, tau)
    assert np.all(hinge < exact) and np.all(exact < hinge + np.log(2))  # the proposition's bounds
    assert np.all(exact >= np.logaddexp(0, -slope * margins))  # Jensen


def test_loss_under_jitter_rejects_bad_input():
    with pytest.raises(ValueError):
        nz.zero_one_under_jitter([0.1], 0.0)
    with pytest.raises(ValueError):
        nz.logistic_under_jitter([np.nan], 1.0)
    with pytest.raises(ValueError):
        nz.batch_moments(1)
