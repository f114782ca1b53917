"""Unit tests of bnlib.nets: MLP, and the float64 affine layers read from a torch model.

Every expected value comes from torch itself (float64 deep copies, train/eval mode, forward
hooks; see tests/unit/_oracles.py), never from bnlib.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import bnlib
from bnlib.nets import (MLP, activation_patterns, affine_layers, forward, has_batchnorm, read_batchnorm,
                        to_sequential)
from _oracles import TorchOracle, cluster, randomize_batchnorm, train_mode_preactivations, uniform

# ----------------------------------------------------------------------------------------
# MLP


def test_mlp_same_seed_same_weights_different_seed_different():
    a = bnlib.MLP([2, 6, 6, 6, 6], batchnorm=True, n_classes=3, seed=7)
    b = bnlib.MLP([2, 6, 6, 6, 6], batchnorm=True, n_classes=3, seed=7)
    c = bnlib.MLP([2, 6, 6, 6, 6], batchnorm=True, n_classes=3, seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys() == sc.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    linear_keys = [k for k in sa if k.endswith("weight") and sa[k].ndim == 2]
    assert all(not torch.equal(sa[k], sc[k]) for k in linear_keys)


def test_mlp_seed_matches_torch_default_init():
    """The seed is torch's: the same seed and layer order give torch's default initialization."""
    net = bnlib.MLP([2, 5, 3], seed=11)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        ref = [nn.Linear(2, 5), nn.Linear(5, 3)]
    for got, want in zip([m for m in net if isinstance(m, nn.Linear)], ref):
        assert torch.equal(got.weight, want.weight) and torch.equal(got.bias, want.bias)


def test_mlp_leaves_global_rng_untouched():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    expected_next = torch.rand(5)
    torch.set_rng_state(state)
    bnlib.MLP([2, 16, 16, 16], batchnorm=True, n_classes=2, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(torch.rand(5), expected_next)


@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize("n_classes", [None, 1, 3])
def test_mlp_structure(batchnorm, n_classes):
    widths = [2, 6, 4, 5]
    net = bnlib.MLP(widths, batchnorm=batchnorm, n_classes=n_classes, negative_slope=0.2, seed=0)
    assert isinstance(net, nn.Sequential)
    block = ["Linear", "BatchNorm1d", "LeakyReLU"] if batchnorm else ["Linear", "LeakyReLU"]
    expected = block * (len(widths) - 1) + (["Linear"] if n_classes is not None else [])
    assert [type(m).__name__ for m in net] == expected
    linears = [m for m in net if isinstance(m, nn.Linear)]
    dims = widths + ([n_classes] if n_classes is not None else [])
    assert [(m.in_features, m.out_features) for m in linears] == list(zip(dims[:-1], dims[1:]))
    assert all(m.bias is not None for m in linears)
    for m in net:
        if isinstance(m, nn.LeakyReLU):
            assert m.negative_slope == 0.2
        if isinstance(m, nn.BatchNorm1d):
            assert torch.equal(m.weight, torch.ones_like(m.weight))
            assert torch.equal(m.bias, torch.zeros_like(m.bias))
    assert net.training
    assert all(p.dtype == torch.float32 for p in net.parameters())
    out = net(torch.randn(8, 2))
    assert out.shape == (8, n_classes if n_classes is not None else widths[-1])


def test_mlp_default_slope_and_relu():
    assert all(m.negative_slope == 0.1 for m in bnlib.MLP([2, 3, 3]) if isinstance(m, nn.LeakyReLU))
    net = bnlib.MLP([2, 3, 3], negative_slope=0)
    acts = [m for m in net if not isinstance(m, nn.Linear)]
    assert len(acts) == 2 and all(type(m) is nn.ReLU for m in acts)
    (layer, _) = bnlib.affine_layers(net)
    assert layer.slope == 0.0 and layer.has_activation


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(widths=[2]), "widths"),
        (dict(widths=[]), "widths"),
        (dict(widths=[2, 0, 3]), "widths"),
        (dict(widths=[2, -4]), "widths"),
        (dict(widths=[2, 4], negative_slope=-0.1), "negative_slope"),
        (dict(widths=[2, 4], negative_slope=float("nan")), "negative_slope"),
        (dict(widths=[2, 4], negative_slope=float("inf")), "negative_slope"),
        (dict(widths=[2, 4], n_classes=0), "n_classes"),
        (dict(widths=[2, 4], n_classes=-2), "n_classes"),
    ],
)
def test_mlp_bad_arguments(kwargs, match):
    widths = kwargs.pop("widths")
    with pytest.raises(ValueError, match=match):
        bnlib.MLP(widths, **kwargs)


# ----------------------------------------------------------------------------------------
# affine_layers against torch


def _hand_nets():
    """Hand-built Sequentials (not bnlib.MLP), with randomized BN parameters and statistics."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        nets = {
            "relu-widths-ends-in-activation": nn.Sequential(
                nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 3), nn.LeakyReLU(0.2), nn.Linear(3, 7), nn.ReLU()
            ),
            "nested-identity-nobias-bn-affine-false-1-out": nn.Sequential(
                nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4)),
                nn.ReLU(),
                nn.Identity(),
                nn.Sequential(nn.Linear(4, 6, bias=False), nn.BatchNorm1d(6, affine=False), nn.LeakyReLU(0.05)),
                nn.Linear(6, 1),
            ),
            "two-linears-in-a-row-inplace-relu-3-out": nn.Sequential(
                nn.Linear(2, 5), nn.Linear(5, 4), nn.ReLU(inplace=True), nn.Linear(4, 3)
            ),
            "bn-on-inputs": nn.Sequential(
                nn.BatchNorm1d(2), nn.Linear(2, 6), nn.LeakyReLU(0.3), nn.Linear(6, 6), nn.BatchNorm1d(6, eps=1e-3),
                nn.ReLU(), nn.Linear(6, 3), nn.Identity(),
            ),
        }
        for net in nets.values():
            randomize_batchnorm(net)
    return nets


HAND = list(_hand_nets())


def _model(name):
    if name.startswith("mlp"):
        return bnlib.MLP([2, 6, 6, 6, 6], batchnorm="bn" in name, n_classes=2 if "cls" in name else None, seed=1)
    return _hand_nets()[name]


MODELS = ["mlp", "mlp-bn", "mlp-bn-cls"] + HAND


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("with_batch", [False, True])
def test_affine_layers_match_torch_forward(name, with_batch):
    model = _model(name)
    X = cluster(200, seed=1)
    batch = X if with_batch else None
    layers = bnlib.affine_layers(model, batch=batch)
    oracle = TorchOracle(model, batch=batch)
    pts = uniform((-3, 3, -3, 3), 500, seed=2)
    pre_torch, out_torch = oracle(pts)
    pre_bnlib = bnlib.preactivations(layers, pts)
    hidden = [p for p, L in zip(pre_bnlib, layers) if L.has_activation]
    assert len(hidden) == len(pre_torch)
    for got, want in zip(hidden, pre_torch):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max())
    out = bnlib.forward(layers, pts)
    np.testing.assert_allclose(out, out_torch, rtol=1e-10, atol=1e-10 * np.abs(out_torch).max())
    assert all(L.W.dtype == np.float64 and L.b.dtype == np.float64 for L in layers)
    # only the last layer may lack an activation
    assert all(L.has_activation for L in layers[:-1])
    ends_in_linear = not isinstance([m for m in model.modules() if not isinstance(m, (nn.Sequential, nn.Identity))][-1], (nn.ReLU, nn.LeakyReLU))
    assert layers[-1].has_activation == (not ends_in_linear)


@pytest.mark.parametrize("name", ["mlp-bn", "mlp-bn-cls", "nested-identity-nobias-bn-affine-false-1-out", "bn-on-inputs"])
def test_batch_reproduces_torch_training_mode_on_the_batch(name):
    """batch=X: the pre-activations on X equal a pure torch train-mode forward pass of X."""
    model = _model(name)
    X = cluster(256, seed=4)
    layers = bnlib.affine_layers(model, batch=X)
    hidden = [p for p, L in zip(bnlib.preactivations(layers, X), layers) if L.has_activation]
    want64 = train_mode_preactivations(model, X, double=True)
    want32 = train_mode_preactivations(model, X, double=False)
    assert len(hidden) == len(want64) == len(want32)
    for got, w64, w32 in zip(hidden, want64, want32):
        scale = np.abs(w64).max()
        np.testing.assert_allclose(got, w64, rtol=0, atol=1e-9 * scale)
        np.testing.assert_allclose(got, w32, rtol=0, atol=2e-5 * scale)


@pytest.mark.parametrize("name", ["mlp-bn", "nested-identity-nobias-bn-affine-false-1-out", "bn-on-inputs"])
def test_batch_does_not_touch_the_model(name):
    model = _model(name)
    model.train()
    before = copy.deepcopy(model.state_dict())
    bnlib.affine_layers(model, batch=cluster(100))
    bnlib.partition(model, (-3, 3, -3, 3), batch=cluster(100))
    bnlib.partition(model, (-3, 3, -3, 3))
    after = model.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k
    assert model.training and all(m.training for m in model.modules())
    model.eval()
    bnlib.partition(model, (-3, 3, -3, 3), batch=cluster(100))
    assert not any(m.training for m in model.modules())


def test_batch_statistics_are_not_running_statistics():
    """With a batch, BN must not use the running statistics (they differ here by design)."""
    model = _model("mlp-bn")
    X = cluster(100, seed=9)
    pts = uniform((-3, 3, -3, 3), 200)
    with_batch = bnlib.forward(bnlib.affine_layers(model, batch=X), pts)
    running = bnlib.forward(bnlib.affine_layers(model), pts)
    assert not np.allclose(with_batch, running)
    np.testing.assert_allclose(running, TorchOracle(model).output(pts), rtol=1e-10, atol=1e-12)


def test_eval_mode_after_training_passes():
    """Running statistics changed by train-mode passes are what batch=None reads (torch eval)."""
    model = bnlib.MLP([2, 6, 6, 6, 6], batchnorm=True, n_classes=1, seed=2)
    model.train()
    init = [m.running_mean.clone() for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    with torch.no_grad():
        for s in range(5):
            model(torch.as_tensor(cluster(64, seed=s), dtype=torch.float32))
    now = [m.running_mean for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    assert all(not torch.equal(a, b) for a, b in zip(init, now))  # the statistics did move
    pts = uniform((-1, 4, -1, 3), 1000, seed=3)
    oracle = TorchOracle(model)  # float64 eval-mode copy
    layers = bnlib.affine_layers(model)
    np.testing.assert_allclose(bnlib.forward(layers, pts), oracle.output(pts), rtol=1e-10, atol=1e-10)
    part = bnlib.partition(model, (-1, 4, -1, 3))
    pattern = oracle.pattern(pts)
    idx = part.locate(pts)
    assert (idx >= 0).all()
    np.testing.assert_array_equal(part.codes[idx], pattern)
    np.testing.assert_array_equal(part.codes, oracle.pattern(part.interior_points()))
    # and the float32 model in eval mode agrees on the predicted class
    model.eval()
    with torch.no_grad():
        out32 = model(torch.as_tensor(pts, dtype=torch.float32)).numpy()[:, 0]
    far = np.abs(out32) > 1e-4
    np.testing.assert_array_equal(part.predict(pts)[far], (out32[far] > 0).astype(int))


def test_bn_without_running_stats_needs_a_batch():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3, track_running_stats=False), nn.ReLU())
    with pytest.raises(ValueError, match="batch"):
        bnlib.affine_layers(model)
    X = cluster(50)
    layers = bnlib.affine_layers(model, batch=X)
    (want,) = train_mode_preactivations(model, X)
    np.testing.assert_allclose(bnlib.preactivations(layers, X)[0], want, atol=1e-10)


def test_negative_slope_is_read_from_the_module():
    model = nn.Sequential(nn.Linear(2, 3), nn.LeakyReLU(0.37), nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2))
    layers = bnlib.affine_layers(model)
    assert [(L.slope, L.has_activation) for L in layers] == [(0.37, True), (0.0, True), (1.0, False)]


# ----------------------------------------------------------------------------------------
# errors


def _nan_weight():
    net = bnlib.MLP([2, 4, 4], seed=0)
    with torch.no_grad():
        net[2].weight[1, 3] = float("nan")
    return net


def _inf_bias():
    net = bnlib.MLP([2, 4], seed=0)
    with torch.no_grad():
        net[0].bias[0] = float("inf")
    return net


BAD_MODELS = {
    "tanh": (lambda: nn.Sequential(nn.Linear(2, 3), nn.Tanh()), "Tanh"),
    "conv1d": (lambda: nn.Sequential(nn.Linear(2, 4), nn.Conv1d(1, 1, 1)), "Conv1d"),
    "tanh": (lambda: nn.Sequential(nn.Linear(2, 4), nn.Tanh()), "unsupported layer Tanh"),
    "no-linear": (lambda: nn.Sequential(nn.ReLU()), "Linear"),
    "nan-weight": (_nan_weight, "NaN|finite"),
    "inf-bias": (_inf_bias, "NaN|finite|infinite"),
    "width-mismatch": (lambda: nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(5, 1)), "4|5"),
    "bn-width-mismatch": (lambda: nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(3), nn.ReLU()), "BatchNorm1d"),
}


@pytest.mark.parametrize("name", list(BAD_MODELS))
def test_unsupported_or_broken_models_raise(name):
    make, match = BAD_MODELS[name]
    model = make()
    with pytest.raises(ValueError, match=match):
        bnlib.affine_layers(model)
    with pytest.raises(ValueError, match=match):
        bnlib.partition(model, (-1, 1, -1, 1))


@pytest.mark.parametrize(
    "batch, match",
    [
        (np.array([[0.5, 0.2]]), "at least 2"),
        (np.array([[0.5, np.nan], [0.1, 0.2]]), "NaN|finite"),
        (np.array([[0.5, np.inf], [0.1, 0.2]]), "NaN|finite"),
        (np.zeros((5, 3)), r"\(n, 2\)|shape"),
        (np.zeros(6), r"\(n, 2\)|shape"),
    ],
)
def test_bad_batch_raises(batch, match):
    model = bnlib.MLP([2, 4, 4], batchnorm=True)
    with pytest.raises(ValueError, match=match):
        bnlib.affine_layers(model, batch=batch)
    with pytest.raises(ValueError, match=match):
        bnlib.partition(model, (-1, 1, -1, 1), batch=batch)


def test_batch_of_one_is_fine_without_bn():
    model = bnlib.MLP([2, 4, 4])
    layers = bnlib.affine_layers(model, batch=[[0.1, 0.2]])
    ref = bnlib.affine_layers(model)
    assert all(np.array_equal(a.W, b.W) and np.array_equal(a.b, b.b) for a, b in zip(layers, ref))


def test_batch_accepts_a_torch_tensor():
    model = bnlib.MLP([2, 4, 4], batchnorm=True)
    X = cluster(40)
    a = bnlib.affine_layers(model, batch=X)
    b = bnlib.affine_layers(model, batch=torch.as_tensor(X))
    assert all(np.allclose(p.W, q.W) and np.allclose(p.b, q.b) for p, q in zip(a, b))


# ----------------------------------------------------------------------------------------
# the one BN reader: read_batchnorm, Dropout/BatchNoise as identity, to_sequential


def _bn_net(seed=0):
    net = MLP([2, 5, 4], batchnorm=True, n_classes=3, seed=seed)
    with torch.no_grad():  # non-trivial gamma, beta and running statistics
        g = torch.Generator().manual_seed(seed)
        for m in net:
            if isinstance(m, torch.nn.BatchNorm1d):
                m.weight.uniform_(0.5, 2.0, generator=g)
                m.bias.normal_(generator=g)
                m.running_mean.normal_(generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
    return net


def test_read_batchnorm_batch_statistics_match_torch_training_mode():
    net = _bn_net(1)
    X = np.random.default_rng(0).normal(size=(64, 2)) * [2.0, 0.5] + 3.0
    reads = read_batchnorm(net, batch=X)
    assert [r.layer for r in reads] == [1, 2] and all(r.source == "batch" for r in reads)
    # oracle: torch's own BatchNorm1d in training mode, fed through the float64 network
    net64 = copy.deepcopy(net).double().train()
    z = torch.tensor(X)
    inputs = {}
    for i, m in enumerate(net64):
        if isinstance(m, torch.nn.BatchNorm1d):
            inputs[i] = z.detach().clone()
        z = m(z)
    bn_inputs = list(inputs.values())
    for r, u in zip(reads, bn_inputs):
        assert np.allclose(r.mean, u.mean(0).numpy(), atol=1e-12)
        assert np.allclose(r.var, u.var(0, unbiased=False).numpy(), atol=1e-12)
        assert np.allclose(r.inputs @ r.weight.T + r.bias, u.numpy(), atol=1e-12)


def test_read_batchnorm_running_statistics_are_the_modules_own():
    net = _bn_net(2)
    reads = read_batchnorm(net)
    bns = [m for m in net if isinstance(m, torch.nn.BatchNorm1d)]
    for r, m in zip(reads, bns):
        assert r.source == "running" and r.inputs is None
        assert np.array_equal(r.mean, m.running_mean.double().numpy())
        assert np.array_equal(r.gamma, m.weight.detach().double().numpy())
        assert r.eps == m.eps


def test_dropout_and_batch_noise_read_as_identity_like_eval_mode():
    from bnlib.experiments.ch4_noise import build_network

    X = np.random.default_rng(3).normal(size=(30, 2))
    for arm in ("dropout", "noise"):
        net = build_network(arm, [2, 6, 6], n_classes=1, seed=0, noise_batch_size=8)
        with torch.no_grad():
            ref = copy.deepcopy(net).eval().double()(torch.tensor(X)).numpy()
        assert np.allclose(forward(affine_layers(net), X), ref, atol=1e-12)


def test_to_sequential_of_batch_read_equals_torch_training_mode():
    net = _bn_net(4)
    X = np.random.default_rng(4).normal(size=(50, 2))
    plain = to_sequential(affine_layers(net, batch=X), dtype=torch.float64)
    assert not has_batchnorm(plain)
    with torch.no_grad():
        ref = copy.deepcopy(net).double().train()(torch.tensor(X))
        assert torch.allclose(plain(torch.tensor(X)), ref, atol=1e-10)


def test_to_sequential_leaves_global_random_state_alone():
    state = torch.random.get_rng_state()
    to_sequential(affine_layers(MLP([2, 3, 3], seed=0)))
    assert torch.equal(state, torch.random.get_rng_state())


def test_activation_patterns_match_forward_pass_signs():
    net = MLP([2, 4, 3], seed=5)
    X = np.random.default_rng(5).normal(size=(40, 2))
    codes = activation_patterns(affine_layers(net), X)
    with torch.no_grad():
        h1 = net[0](torch.tensor(X).float())
        h2 = net[2](net[1](h1))
    assert np.array_equal(codes, np.concatenate([(h1 > 0).numpy(), (h2 > 0).numpy()], axis=1))
    assert activation_patterns(affine_layers(net), X, layer=1).shape == (40, 4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_precise_batchnorm_is_torchs_single_batch_pass_with_momentum_none(seed):
    from bnlib.nets import precise_batchnorm

    net = _bn_net(seed)
    X = np.random.default_rng(seed).normal(size=(80, 2)) * [1.0, 3.0] + [4.0, -2.0]
    ref = copy.deepcopy(net).double().train()
    for m in ref.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        ref(torch.tensor(X))
    precise = precise_batchnorm(net, X)
    for a, b in zip([m for m in precise if isinstance(m, torch.nn.BatchNorm1d)],
                    [m for m in ref if isinstance(m, torch.nn.BatchNorm1d)]):
        assert torch.allclose(a.running_mean.double(), b.running_mean, rtol=1e-5, atol=1e-6)
        assert torch.allclose(a.running_var.double(), b.running_var, rtol=1e-5, atol=1e-6)
    # eval with precise statistics = training mode on X (up to the unbiased/biased variance)
    with torch.no_grad():
        out = precise.double().eval()(torch.tensor(X))
        train_out = copy.deepcopy(net).double().train()(torch.tensor(X))
    assert torch.allclose(out, train_out, atol=0.05 * float(train_out.abs().max()))
    assert net[1].running_mean.abs().sum() > 0 and not torch.equal(net[1].running_mean, precise[1].running_mean)
