"""Unit tests of bnlib.geometry.

Expected values come from independent oracles: torch's own BatchNorm1d in training mode and
autograd (float64 deep copies, tests/unit/_oracles.py), scipy's optimisers for projections and
least-squares offsets, the exact partition's segment geometry (Partition.crossings, locate,
areas) and Monte Carlo sampling. No expected value is copied from bnlib.geometry.
"""

from __future__ import annotations

import copy

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from scipy import optimize, stats  # noqa: E402
from scipy.linalg import null_space  # noqa: E402
from torch import nn  # noqa: E402

import bnlib  # noqa: E402
from bnlib import geometry as g  # noqa: E402
from _oracles import TorchOracle, cluster, uniform  # noqa: E402


def _bn_net(widths, seed, *, random_affine=True):
    """A BN MLP whose gamma/beta are random (so that the tests do not lean on gamma=1, beta=0)."""
    net = bnlib.MLP(widths, batchnorm=True, seed=seed)
    if random_affine:
        gen = torch.Generator().manual_seed(1000 + seed)
        with torch.no_grad():
            for m in net:
                if isinstance(m, nn.BatchNorm1d):
                    m.weight.copy_(torch.rand(m.num_features, generator=gen) * 1.5 + 0.5)
                    m.bias.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
    return net


def _linear_bn_pairs(model):
    mods = list(model)
    return [(mods[i], mods[i + 1]) for i in range(len(mods) - 1)
            if isinstance(mods[i], nn.Linear) and isinstance(mods[i + 1], nn.BatchNorm1d)]


def _train_mode_bn_io(model, X):
    """(input, output) of every BatchNorm1d in a float64 train-mode torch forward pass of X."""
    m = copy.deepcopy(model).double().train()
    io = []
    for bn in m.modules():
        if isinstance(bn, nn.BatchNorm1d):
            bn.register_forward_hook(lambda mod, inp, out: io.append((inp[0].detach().numpy(), out.detach().numpy())))
    with torch.no_grad():
        m(torch.as_tensor(X, dtype=torch.float64))
    return io


# ----------------------------------------------------------------------------------------
# Hyperplanes


@pytest.mark.parametrize("d", [2, 3, 5])
def test_distance_matches_brute_force_projection(d):
    rng = np.random.default_rng(d)
    normal, offset = rng.normal(size=(3, d)), rng.normal(size=3)
    H = g.Hyperplanes(normal, offset)
    Z = rng.normal(size=(6, d)) * 2
    got = H.distance(Z)
    for k in range(3):
        p0 = normal[k] * offset[k] / (normal[k] @ normal[k])  # one point of the hyperplane
        basis = null_space(normal[k][None])               # directions inside it
        for i, z in enumerate(Z):
            res = optimize.minimize(lambda s: np.sum((p0 + basis @ s - z) ** 2), np.zeros(d - 1), tol=1e-14)
            assert got[i, k] == pytest.approx(np.sqrt(res.fun), abs=1e-6)


def test_signed_distance_sign_and_projection():
    rng = np.random.default_rng(0)
    H = g.Hyperplanes(rng.normal(size=(4, 3)), rng.normal(size=4))
    Z = rng.normal(size=(10, 3))
    P = H.project(Z)  # (n, k, d)
    on_plane = np.einsum("nkd,kd->nk", P, H.normal) - H.offset
    assert np.allclose(on_plane, 0, atol=1e-12)
    assert np.allclose(np.linalg.norm(P - Z[:, None], axis=2), H.distance(Z))
    side = np.sign(Z @ H.normal.T - H.offset)
    assert np.array_equal(np.sign(H.signed_distance(Z)), side)


def test_hyperplanes_zero_preactivation_in_torch_for_every_layer():
    X = cluster(128, seed=3)
    net = _bn_net([2, 5, 4, 3], seed=3)
    oracle = TorchOracle(net, batch=X)  # frozen at the batch statistics torch's train mode computes
    layers = list(oracle.model)
    for layer in (1, 2, 3):
        H = g.hyperplanes(net, layer, batch=X)
        Z = g.layer_inputs(net, X[:7], layer, batch=X)
        P = H.project(Z).reshape(-1, Z.shape[1])  # feet of the perpendiculars, every unit
        sub = nn.Sequential(*layers[3 * (layer - 1): 3 * (layer - 1) + 2])  # Linear, BN (eval)
        with torch.no_grad():
            h = sub(torch.as_tensor(P)).numpy().reshape(len(Z), len(H), -1)
        k = np.arange(len(H))
        assert np.allclose(h[:, k, k], 0, atol=1e-9), f"layer {layer}"


def test_hyperplanes_bad_input():
    with pytest.raises(ValueError, match="non-zero normal"):
        g.Hyperplanes(np.zeros((1, 2)), np.zeros(1))
    with pytest.raises(ValueError, match="between 1 and 2"):
        g.hyperplanes(bnlib.MLP([2, 3, 3], seed=0), 3)
    with pytest.raises(ValueError, match="shape"):
        g.Hyperplanes(np.ones((1, 2)), np.zeros(1)).distance(np.ones((3, 3)))


# ----------------------------------------------------------------------------------------
# batch statistics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_statistics_match_torch_batchnorm_training_mode(seed):
    X = cluster(50, seed=seed) * 3 - 1
    net = _bn_net([2, 6, 5, 4], seed=seed)
    stats_ = g.batch_statistics(net, X)
    io = _train_mode_bn_io(net, X)
    assert len(stats_) == len(io) == 3
    for s, (bn_in, bn_out), (lin, bn) in zip(stats_, io, _linear_bn_pairs(net)):
        c = lin.bias.detach().double().numpy()
        assert np.allclose(s.mu + c, bn_in.mean(0), atol=1e-10)
        assert np.allclose(s.var, bn_in.var(0), atol=1e-10)          # numpy's var is biased
        assert np.allclose(s.sigma, np.sqrt(bn_in.var(0) + bn.eps))
        assert np.allclose(s.output(s.inputs), bn_out, atol=1e-9)
        assert np.allclose(s.bias, c) and s.eps == bn.eps
        # torch's running_var (momentum 1) is the unbiased variance: ours is the biased one
        n = len(X)
        assert np.allclose(s.var * n / (n - 1), np.var(bn_in, axis=0, ddof=1))


def test_batch_statistics_bias_drops_out():
    X = cluster(40, seed=5)
    net = _bn_net([2, 4, 4], seed=5)
    other = copy.deepcopy(net)
    with torch.no_grad():
        for m in other:
            if isinstance(m, nn.Linear):
                m.bias.add_(3.0)
    for a, b in zip(g.batch_statistics(net, X), g.batch_statistics(other, X)):
        assert np.allclose(a.output(a.inputs), b.output(b.inputs), atol=1e-10)
        assert np.allclose(a.mu, b.mu) and not np.allclose(a.bias, b.bias)


def test_least_squares_facts_against_scipy():
    X = cluster(80, seed=7)
    for s in g.batch_statistics(_bn_net([2, 5, 5], seed=7), X):
        norms = np.linalg.norm(s.weight, axis=1)
        for k in range(len(s.mu)):
            w = s.weight[k]
            cost = lambda m: np.sum(((s.inputs @ w - m) / norms[k]) ** 2)  # noqa: E731
            best = optimize.minimize_scalar(cost, tol=1e-12).x
            assert best == pytest.approx(s.mu[k], rel=1e-6, abs=1e-8)
        H0 = g.Hyperplanes(s.weight, s.mu)  # beta = 0: through the centroid
        assert np.allclose(H0.signed_distance([s.inputs.mean(0)]), 0, atol=1e-10)
        rms = np.sqrt((H0.distance(s.inputs) ** 2).mean(0))
        assert np.allclose(np.sqrt(s.var), norms * rms)
        # the BN hyperplane sits -beta/gamma data-spread units (sigma / ||w||) from the centroid
        shift = s.hyperplanes().signed_distance([s.inputs.mean(0)])[0]
        assert np.allclose(shift, s.beta / s.gamma * s.sigma / norms)


def test_batch_statistics_bad_input():
    with pytest.raises(ValueError, match="BatchNorm1d"):
        g.batch_statistics(bnlib.MLP([2, 3], seed=0), cluster(10))
    with pytest.raises(ValueError, match="at least 2"):
        g.batch_statistics(bnlib.MLP([2, 3], batchnorm=True, seed=0), cluster(1))
    with pytest.raises(ValueError, match="torch.nn.Module"):
        g.batch_statistics([1, 2], cluster(10))
    with pytest.raises(ValueError, match="NaN"):
        g.batch_statistics(bnlib.MLP([2, 3], batchnorm=True, seed=0), np.full((4, 2), np.nan))


# ----------------------------------------------------------------------------------------
# distances in input space


def _autograd_local(model, batch, X, layer):
    """Pre-activations and their input gradients for hidden layer ``layer``, by torch autograd."""
    oracle = TorchOracle(model, batch=batch)
    x = torch.as_tensor(X, dtype=torch.float64).requires_grad_(True)
    pre = []
    hooks = [m.register_forward_pre_hook(lambda mod, inp: pre.append(inp[0]))
             for m in oracle.model.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))]
    oracle.model(x)
    for hk in hooks:
        hk.remove()
    h = pre[layer - 1]
    grads = np.zeros(tuple(h.shape) + (x.shape[1],))
    for k in range(h.shape[1]):
        (grad,) = torch.autograd.grad(h[:, k].sum(), x, retain_graph=True)
        grads[:, k] = grad.numpy()
    return h.detach().numpy(), grads


@pytest.mark.parametrize("d, bn", [(2, True), (2, False), (9, True)])
def test_local_distance_matches_autograd(d, bn):
    rng = np.random.default_rng(d)
    X = rng.normal(size=(60, d)) + 1.0
    net = _bn_net([d, 6, 5, 4], seed=d) if bn else bnlib.MLP([d, 6, 5, 4], seed=d)
    batch = X if bn else None
    for layer in (1, 2, 3):
        h_want, grad_want = _autograd_local(net, batch, X[:20], layer)
        h, grad = g.local_affine(net, X[:20], layer, batch=batch)
        assert np.allclose(h, h_want, atol=1e-10) and np.allclose(grad, grad_want, atol=1e-10)
        got = g.local_distance(net, X[:20], layer, batch=batch)
        assert np.allclose(got, np.abs(h_want) / np.linalg.norm(grad_want, axis=2), rtol=1e-8)


def test_local_distance_and_exact_distance():
    """<= where the foot of the perpendicular lies in x's region; == where the ball does too."""
    X = cluster(200, seed=11)
    net = bnlib.MLP([2, 6, 6, 6], batchnorm=True, seed=11)
    box = (-2, 5, -2, 4)
    part = bnlib.partition(net, box, batch=X)
    n_equal = n_below = 0
    for layer in (2, 3):
        loc = g.local_distance(part.layers, X, layer)
        seg = part.boundaries(layer)
        earlier = np.min([part.distance_to_boundary(X, j) for j in range(1, layer)], axis=0)
        to_box = np.min(np.abs(X[:, [0, 0, 1, 1]] - np.array(box)), axis=1)
        own = g.activation_patterns(part.layers, X, layer=layer - 1)
        unit_exact = g.unit_distance(part, X, layer)
        for k in range(loc.shape[1]):
            pts = seg.points[seg.unit == k]
            exact = np.array([_dist(x, pts) for x in X])
            assert np.allclose(unit_exact[:, k], exact)
            ball_inside = loc[:, k] < np.minimum(earlier, to_box)
            assert np.allclose(exact[ball_inside], loc[ball_inside, k], rtol=1e-7, atol=1e-12)
            n_equal += ball_inside.sum()
            # the foot of the perpendicular to the local line, by autograd-free finite geometry
            eps = 1e-6
            grad = np.stack([(g.layer_inputs(part.layers, X + eps * e, layer) @ part.layers[layer - 1].W[k]
                              - g.layer_inputs(part.layers, X - eps * e, layer) @ part.layers[layer - 1].W[k]) / (2 * eps)
                             for e in np.eye(2)], axis=1)
            h = g.layer_inputs(part.layers, X, layer) @ part.layers[layer - 1].W[k] + part.layers[layer - 1].b[k]
            foot = X - (h / (grad**2).sum(1))[:, None] * grad
            same = (g.activation_patterns(part.layers, foot, layer=layer - 1) == own).all(1)
            same &= (foot[:, 0] > box[0]) & (foot[:, 0] < box[1]) & (foot[:, 1] > box[2]) & (foot[:, 1] < box[3])
            assert np.all(exact[same] <= loc[same, k] * (1 + 1e-6) + 1e-9)
            n_below += same.sum()
    assert n_equal > 50 and n_below > n_equal


def _dist(x, pts):
    """Brute-force distance from x to segments (k, 2, 2): nearest of perpendicular foot / ends."""
    best = np.inf
    for a, b in pts:
        d = b - a
        t = min(1.0, max(0.0, float(np.dot(x - a, d) / np.dot(d, d))))
        best = min(best, float(np.hypot(*(x - a - t * d))))
    return best


def test_ray_distance_matches_partition_crossings():
    X = cluster(100, seed=2)
    rng = np.random.default_rng(2)
    for bn in (False, True):
        net = bnlib.MLP([2, 6, 6, 6], batchnorm=bn, seed=4)
        box = (-30, 30, -30, 30)
        part = bnlib.partition(net, box, batch=X if bn else None)
        U = rng.normal(size=(40, 2))
        U /= np.linalg.norm(U, axis=1, keepdims=True)
        P = X[:40]
        for layer in (1, 2, 3):
            got = g.ray_distance(net, P, U, layer=layer, batch=X if bn else None)
            for i in range(40):
                end = P[i] + 20 * U[i]  # stays inside the box
                ts = np.concatenate([part.crossings(P[i], end, layer=j) for j in range(1, layer + 1)])
                if len(ts):
                    assert got[i] == pytest.approx(20 * ts.min(), rel=1e-7, abs=1e-9), (bn, layer, i)
                else:
                    assert got[i] >= 20 * (1 - 1e-9), (bn, layer, i)


def test_ray_distance_high_dimension_pattern_changes_there():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(30, 12))
    net = _bn_net([12, 8, 8], seed=0)
    oracle = TorchOracle(net, batch=X)
    U = rng.normal(size=X.shape)
    t = g.ray_distance(net, X, U, batch=X)
    V = U / np.linalg.norm(U, axis=1, keepdims=True)
    for i in range(len(X)):
        ts = np.linspace(0, t[i] * (1 - 1e-7), 50)
        before = oracle.pattern(X[i] + ts[:, None] * V[i])
        assert (before == before[0]).all(), "a boundary before the reported one"
        after = oracle.pattern((X[i] + t[i] * (1 + 1e-6) * V[i])[None])
        assert not (after[0] == before[0]).all(), "no boundary at the reported distance"


def test_ray_distance_bad_input():
    net = bnlib.MLP([2, 3], seed=0)
    with pytest.raises(ValueError, match="one direction per point"):
        g.ray_distance(net, np.zeros((3, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="non-zero"):
        g.ray_distance(net, np.zeros((1, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="shape"):
        g.ray_distance(net, np.zeros((1, 3)), np.ones((1, 3)))


def test_regions_hit_matches_locate():
    X = cluster(300, seed=9)
    net = bnlib.MLP([2, 5, 5], batchnorm=True, seed=9)
    box = (-2, 5, -2, 4)
    part = bnlib.partition(net, box, batch=X)
    P = uniform(box, 2000, seed=1)
    assert g.regions_hit(net, P, batch=X) == len(np.unique(part.locate(P)))
    assert g.regions_hit(part.layers, P) == len({row.tobytes() for row in TorchOracle(net, X).pattern(P)})


def test_quantization_error_against_kmeans_objective():
    X = cluster(150, seed=4)
    net = bnlib.MLP([2, 4, 4], batchnorm=True, seed=4)
    part = bnlib.partition(net, (-3, 6, -3, 5), batch=X)
    cell = part.locate(X)
    within = sum(((X[cell == c] - X[cell == c].mean(0)) ** 2).sum() for c in np.unique(cell))
    want = within / ((X - X.mean(0)) ** 2).sum()
    assert g.quantization_error(net, X, batch=X) == pytest.approx(want)
    assert g.quantization_error(net, X, batch=X, layer=1) >= g.quantization_error(net, X, batch=X) - 1e-12


# ----------------------------------------------------------------------------------------
# chapter 2's propositions on random layers and data: the numerical checks that were cells of
# the chapter (chapters/02_bn_partition.ipynb names each test where it states the proposition)


def _random_data(rng, n=64):
    """A cloud with a random centre, scale and shear: chapter 2's random data."""
    shear = rng.uniform(0.1, 3) * rng.normal(size=(2, 2))
    return rng.uniform(-5, 5, size=2) + rng.normal(size=(n, 2)) @ shear


def test_ch2_centroid_lies_on_every_bn_hyperplane():
    """With beta = 0, every hyperplane of a BN layer passes through the centroid of its inputs."""
    rng = np.random.default_rng(0)
    gaps = {True: [], False: []}  # centroid-to-hyperplane distances, in data radii
    for trial in range(50):
        X = _random_data(rng)
        for bn in (True, False):
            net = bnlib.MLP([2, 6, 6, 6], batchnorm=bn, seed=trial)
            batch = X if bn else None
            for layer in (1, 2, 3):
                Z = g.layer_inputs(net, X, layer, batch=batch)
                H = g.hyperplanes(net, layer, batch=batch)
                gaps[bn].extend(H.distance(Z.mean(0, keepdims=True)).ravel() / g.rms_radius(Z))
    assert max(gaps[True]) < 1e-9
    assert np.median(gaps[False]) > 0.1  # without BN the centroid is nowhere in particular


def test_ch2_bn_mean_is_the_least_squares_offset():
    """mu_k minimises the total squared distance from the batch to {<w_k, z> = m}: found by scipy."""
    rng = np.random.default_rng(1)
    worst = 0.0
    for trial in range(30):
        X = _random_data(rng)
        for s in g.batch_statistics(bnlib.MLP([2, 5, 5], batchnorm=True, seed=trial), X):
            for w, mu, var in zip(s.weight, s.mu, s.var):
                cost = lambda m: np.sum(((s.inputs @ w - m) / np.linalg.norm(w)) ** 2)  # noqa: E731
                best = optimize.minimize_scalar(cost, tol=1e-12).x
                worst = max(worst, abs(best - mu) / np.sqrt(var))
    assert worst < 1e-6


def test_ch2_bn_scale_is_the_spread_across_the_hyperplane():
    """sigma = ||w|| rho; the normalised pre-activation is sd / rho; H_k lies -beta/gamma rho from H_k^0."""
    rng = np.random.default_rng(2)
    err = {"part 1": 0.0, "part 2": 0.0, "part 3": 0.0}
    for trial in range(30):
        X = _random_data(rng)
        net = bnlib.MLP([2, 5, 5], batchnorm=True, seed=trial)
        with torch.no_grad():  # random gamma (either sign) and beta
            for bn in (net[1], net[4]):
                gamma = rng.uniform(0.5, 2, size=5) * rng.choice([-1, 1], size=5)
                bn.weight.copy_(torch.as_tensor(gamma))
                bn.bias.copy_(torch.as_tensor(rng.uniform(-2, 2, size=5)))
        for s in g.batch_statistics(net, X):
            Z, w_norm = s.inputs, np.linalg.norm(s.weight, axis=1)
            H0 = g.Hyperplanes(s.weight, s.mu)  # beta = 0
            sd0 = H0.signed_distance(Z)  # (points, units)
            rho = np.sqrt((sd0**2).mean(0))
            normalised = (Z @ s.weight.T - s.mu) / np.sqrt(s.var)  # epsilon = 0
            foot = s.hyperplanes().project(Z[:1])[0]  # a point of each H_k
            offset = H0.signed_distance(foot).diagonal()  # H_k relative to H_k^0
            shift = -s.beta / s.gamma * s.sigma / w_norm
            err["part 1"] = max(err["part 1"], np.abs(np.sqrt(s.var) / (w_norm * rho) - 1).max())
            err["part 2"] = max(err["part 2"], np.abs(normalised - sd0 / rho).max())
            err["part 3"] = max(err["part 3"], np.abs(offset - shift).max())
    assert max(err.values()) < 1e-9, err


def test_ch2_local_distance_on_the_figure_network():
    """The local distance r, parts 2 (r bounds the exact distance) and 3 (equals it), on the BN
    network of chapter 2's Figure 1, against the exact partition's segments."""
    X, _ = bnlib.data.gaussian_mixture(300, centers=[(1.5, 1.0)], std=(0.6, 0.2), angle=0.5, seed=0)
    box = (-3.0, 3.0, -3.0, 3.0)
    part = bnlib.partition(bnlib.MLP([2, 6, 6, 6, 6], batchnorm=True, seed=0), box, batch=X)
    layers = part.layers
    lo, hi = np.array(box[::2]), np.array(box[1::2])
    to_edge = np.minimum(X - lo, hi - X).min(1)
    count = {"part 2": 0, "part 3": 0}
    worst = {"part 2": 0.0, "part 3": 0.0}
    for layer in (2, 3, 4):
        h, grad = g.local_affine(layers, X, layer)  # (points, units, ...)
        r = np.abs(h) / np.linalg.norm(grad, axis=2)  # part 1
        foot = X[:, None] - (h / (grad**2).sum(2))[..., None] * grad
        exact = g.unit_distance(part, X, layer)  # from the segments of the partition
        own = g.activation_patterns(layers, X, layer=layer - 1)
        at_foot = g.activation_patterns(layers, foot.reshape(-1, 2), layer=layer - 1).reshape(*r.shape, -1)
        in_region = (at_foot == own[:, None]).all(2) & ((foot > lo) & (foot < hi)).all(2)
        earlier = np.min([part.distance_to_boundary(X, j) for j in range(1, layer)], axis=0)
        in_ball = r < np.minimum(earlier, to_edge)[:, None]
        gap = exact - r
        worst["part 2"] = max(worst["part 2"], gap[in_region].max(initial=0))
        worst["part 3"] = max(worst["part 3"], np.abs(gap[in_ball]).max(initial=0))
        count["part 2"] += in_region.sum()
        count["part 3"] += in_ball.sum()
    assert count["part 3"] > 100 and count["part 2"] > count["part 3"]
    assert max(worst.values()) < 1e-9, worst


# ----------------------------------------------------------------------------------------
# ellipse and region density


# ----------------------------------------------------------------------------------------
# experiments and summaries


@pytest.mark.parametrize("scale, shift", [(0.3, (5.0, -2.0)), (4.0, (-1.0, 0.5))])
def test_bn_partition_moves_and_scales_with_the_data_without_eps(scale, shift):
    X = cluster(120, seed=2)
    net = bnlib.MLP([2, 6, 6, 6], batchnorm=True, seed=2)
    for m in net:
        if isinstance(m, nn.BatchNorm1d):
            m.eps = 1e-30  # torch refuses 0 in training mode; this is 0 in float64 next to the variances
    box = np.array([-2.0, 5.0, -2.0, 4.0])
    moved_box = np.r_[box[:2] * scale + shift[0], box[2:] * scale + shift[1]]
    Y = X * scale + np.array(shift)
    a = bnlib.partition(net, box, batch=X)
    b = bnlib.partition(net, moved_box, batch=Y)
    assert a.n_regions == b.n_regions
    assert np.allclose(np.sort(b.areas()), np.sort(a.areas()) * scale**2, rtol=1e-6, atol=1e-12)
    P = uniform(tuple(box), 500, seed=3)
    assert np.allclose(b.distance_to_boundary(P * scale + shift), a.distance_to_boundary(P) * scale, rtol=1e-6)
    assert np.array_equal(TorchOracle(net, X).pattern(P), TorchOracle(net, Y).pattern(P * scale + shift))


# ----------------------------------------------------------------------------------------
# the frame function




# --- chapter 5: distances along rays for any network, and between two sets of boundaries ----------

def test_distance_by_bisection_matches_the_exact_partition_along_each_ray():
    net = bnlib.MLP([2, 8, 8], negative_slope=0.0, n_classes=1, seed=3)  # a ReLU network
    part = bnlib.partition(net, (-4, 4, -4, 4))
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (40, 2))
    U = rng.standard_normal((40, 2))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    d = g.distance_by_bisection(net, X, U, max_distance=2.0, n_steps=400, tol=1e-10)
    for x, u, dist in zip(X, U, d):
        t = part.crossings(x, x + 2.0 * u)  # exact crossings of the segment, as fractions of its length
        assert (np.isinf(dist) and not len(t)) or np.isclose(dist, 2.0 * t[0], atol=1e-8)


def test_distance_by_bisection_over_many_rays_approaches_the_euclidean_distance():
    net = bnlib.MLP([2, 6, 6], negative_slope=0.0, seed=1)
    part = bnlib.partition(net, (-5, 5, -5, 5))
    X = np.random.default_rng(1).uniform(-1, 1, (30, 2))
    exact = part.distance_to_boundary(X)
    d = g.distance_by_bisection(net, X, 720, max_distance=3.0, n_steps=300, tol=1e-10)
    assert np.all(d >= exact - 1e-8)  # a ray's distance is never shorter than the Euclidean one
    # the best of 720 evenly spaced rays is within 1/cos(pi/720) of the distance to a line
    assert np.all(d <= exact / np.cos(np.pi / 720) + 1e-6)


def test_distance_by_bisection_decision_boundary_and_other_norms():
    net = bnlib.MLP([2, 8], n_classes=1, seed=0)
    part = bnlib.partition(net, (-6, 6, -6, 6))
    X = np.random.default_rng(2).uniform(-1, 1, (20, 2))
    exact = bnlib.distance_to_segments(X, part.decision_boundary())  # the box holds every nearest point
    d = g.distance_by_bisection(net, X, 720, max_distance=6.0, boundary="decision", n_steps=300, tol=1e-10)
    # never below the Euclidean distance; above it only by the gap between rays (the nearest point of a
    # folded boundary may be a kink, where the best ray overshoots more than for a line)
    assert np.all(d >= exact - 1e-8) and np.all(d <= 1.01 * exact)
    # any network: a LayerNorm layer (one unit's boundary checked by brute force along the ray)
    ln = nn.Sequential(nn.Linear(2, 4), nn.LayerNorm(4), nn.LeakyReLU(0.1))
    with torch.no_grad():
        ln[1].bias.copy_(torch.tensor([0.5, -0.3, 0.2, 0.0]))
    reference = copy.deepcopy(ln[:2]).double()
    t = np.linspace(0, 5.0, 200_001)
    met = 0
    for angle in np.linspace(0, 2 * np.pi, 12, endpoint=False):
        x, u = np.array([[0.2, 0.1]]), np.array([[np.cos(angle), np.sin(angle)]])
        d = g.distance_by_bisection(ln, x, u, max_distance=5.0, n_steps=500, tol=1e-9)[0]
        with torch.no_grad():
            h = reference(torch.as_tensor(x + t[:, None] * u)).numpy()
        changed = np.flatnonzero(np.any(np.sign(h) != np.sign(h[0]), axis=1))
        if len(changed):
            met += 1
            assert abs(d - t[changed[0]]) < 5e-5
        else:
            assert np.isinf(d)
    assert met >= 6


@pytest.mark.parametrize("kwargs, message", [
    (dict(X=np.zeros((3, 3))), "shape"),
    (dict(X=np.array([[np.nan, 0.0]])), "finite"),
    (dict(directions=np.zeros((2, 2))), "non-zero"),
    (dict(directions=np.ones((3, 2))), "shape"),
    (dict(max_distance=0.0), "max_distance"),
    (dict(n_steps=0), "n_steps"),
    (dict(tol=-1.0), "tol"),
    (dict(boundary="margin"), "boundary"),
])
def test_distance_by_bisection_validates(kwargs, message):
    args = dict(X=np.zeros((2, 2)), directions=4, max_distance=1.0)
    args.update(kwargs)
    X, directions = args.pop("X"), args.pop("directions")
    with pytest.raises(ValueError, match=message):
        g.distance_by_bisection(bnlib.MLP([2, 3], seed=0), X, directions, **args)


def test_distance_by_bisection_needs_activations_for_units():
    with pytest.raises(ValueError, match="ReLU"):
        g.distance_by_bisection(nn.Sequential(nn.Linear(2, 1)), np.zeros((1, 2)), 4, max_distance=1.0)


def test_boundary_displacement():
    line = np.array([[[-1.0, 0.0], [1.0, 0.0]]])
    assert g.boundary_displacement(line, line) == 0.0
    assert np.isclose(g.boundary_displacement(line, line + [0.0, 0.3]), 0.3)
    # symmetric, and split segments describe the same set
    split = np.array([[[-1.0, 0.2], [0.0, 0.2]], [[0.0, 0.2], [1.0, 0.2]]])
    assert np.isclose(g.boundary_displacement(line, split), g.boundary_displacement(split, line))
    assert np.isclose(g.boundary_displacement(line, split), 0.2)
    with pytest.raises(ValueError, match="non-empty"):
        g.boundary_displacement(line, np.zeros((0, 2, 2)))
